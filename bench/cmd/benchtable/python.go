package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/tapis-agent/tapis-agent/bench"
)

const pyScript = `
import json, sys, time
sys.path.insert(0, sys.argv[1])
import tapis_agent
path, rounds, calls = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def via_agent():
    return tapis_agent.token("dev")
def via_file():
    with open(path) as f:
        return json.load(f)["access_token"]
assert via_agent() == via_file()
out = {"agent": [], "file": []}
for r in range(rounds):
    for name, f in (("agent", via_agent), ("file", via_file)) if r % 2 == 0 else (("file", via_file), ("agent", via_agent)):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        out[name].append((time.perf_counter() - t0) / calls)
print(json.dumps(out))
`

// python compares the Python client's cost per call with reading a token
// file, inside one interpreter.
func python(w *world, p params) ([]bench.Row, error) {
	mod, _ := filepath.Abs("contrib/python/src")
	if _, err := os.Stat(filepath.Join(mod, "tapis_agent", "__init__.py")); err != nil {
		return []bench.Row{{What: "Python client per call", Measured: "not measured: contrib/python/src/tapis_agent is missing", Baseline: "–", Ratio: "–"}}, nil
	}
	tr, err := frameCall(w.cur.agent.sock)("dev", time.Minute)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(w.dir, "tokens.json")
	b, _ := json.Marshal(map[string]string{"access_token": tr.AccessToken, "expires_at": tr.ExpiresAt.Format(time.RFC3339)})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("/usr/bin/python3", "-c", pyScript, mod, file, fmt.Sprint(p.pyRounds), fmt.Sprint(p.pyCalls))
	cmd.Env = w.cur.env
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("python: %w", err)
	}
	var res struct{ Agent, File bench.Sample }
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("python output %q: %w", out, err)
	}
	return []bench.Row{{What: "Python client `tapis_agent.token()` per call, one interpreter, connection per call",
		Measured: bench.MedianRange(res.Agent), Baseline: "`json.load` of a token file " + bench.MedianRange(res.File),
		Ratio: bench.Ratio(res.Agent.Median(), res.File.Median())}}, nil
}
