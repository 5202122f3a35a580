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
sys.path.insert(0, sys.argv[5])
import tapis_agent
path, rounds, calls = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def via_agent():
    return tapis_agent.token("dev")
client, kept = tapis_agent.Client(), tapis_agent.KeptConnection()
def via_kept():
    return client.token("dev", None, kept)
def via_file():
    with open(path) as f:
        return json.load(f)["access_token"]
assert via_agent() == via_file() == via_kept()

# tapipy calls with no network: every request is answered at once in the
# process, so what differs between the two clients is the agent-backed
# one's hook (its round trip to the agent) and nothing else.
import requests, requests.adapters
from tapipy.tapis import Tapis
class Null(requests.adapters.BaseAdapter):
    def send(self, request, **kw):
        r = requests.Response()
        r.status_code, r.request, r._content = 200, request, b'{"result":{"username":"u"}}'
        r.headers["Content-Type"] = "application/json"
        return r
    def close(self):
        pass
fixed = Tapis(base_url="http://bench.invalid", access_token=str(via_agent()), tenant_id="dev")
backed = tapis_agent.tapipy_client("dev", tenant_id="dev")
for t in (fixed, backed):
    t.requests_session.mount("http://", Null())
    assert t.authenticator.get_userinfo().username == "u"
def fixed_call():
    fixed.authenticator.get_userinfo()
def backed_call():
    backed.authenticator.get_userinfo()

out = {"agent": [], "kept": [], "file": [], "fixed": [], "backed": []}
pairs = ((("agent", via_agent), ("kept", via_kept), ("file", via_file)), (("fixed", fixed_call), ("backed", backed_call)))
for r in range(rounds):
    for pair in pairs:
        for name, f in pair if r % 2 == 0 else pair[::-1]:
            t0 = time.perf_counter()
            for _ in range(calls):
                f()
            out[name].append((time.perf_counter() - t0) / calls)
print(json.dumps(out))
`

// hookFloor is the most an agent-backed tapipy call may add to a call
// with a fixed token, median over the rounds.
const hookFloor = 300 * time.Microsecond

// python compares the Python client's cost per call with reading a token
// file, and a call of an agent-backed tapipy client with one of a client
// holding a fixed token, inside one interpreter.
func python(w *world, p params) ([]bench.Row, error) {
	mod, _ := filepath.Abs("contrib/python/src")
	standin, _ := filepath.Abs("contrib/python/tests/standin")
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
	// Short rounds, many of them, interleaved: a busy machine then slows
	// both sides of a comparison alike.
	rounds, calls := 4*p.pyRounds, max(1, p.pyCalls/4)
	cmd := exec.Command("/usr/bin/python3", "-c", pyScript, mod, file, fmt.Sprint(rounds), fmt.Sprint(calls), standin)
	cmd.Env = w.cur.env
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("python: %w", err)
	}
	var res struct{ Agent, Kept, File, Fixed, Backed bench.Sample }
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("python output %q: %w", out, err)
	}
	// The hook's cost, round by round: the same number of calls of each
	// client, interleaved.
	added := make(bench.Sample, len(res.Backed))
	for i := range res.Backed {
		added[i] = res.Backed[i] - res.Fixed[i]
	}
	floor := "met"
	if time.Duration(added.Median()*float64(time.Second)) >= hookFloor {
		floor = "NOT met"
		fmt.Fprintf(os.Stderr, "benchtable: an agent-backed tapipy call adds %s, over the floor of %v\n", bench.Seconds(added.Median()), hookFloor)
	}
	return []bench.Row{
		{What: "Python client `tapis_agent.token()` per call, one interpreter, token frame, connection per call",
			Measured: bench.MedianRange(res.Agent), Baseline: "`json.load` of a token file " + bench.MedianRange(res.File),
			Ratio: bench.Ratio(res.Agent.Median(), res.File.Median())},
		{What: "Python client `tapis_agent.token()` per call, one interpreter, token frame, on a KeptConnection",
			Measured: bench.MedianRange(res.Kept), Baseline: "`json.load` of a token file " + bench.MedianRange(res.File),
			Ratio: bench.Ratio(res.Kept.Median(), res.File.Median())},
		{What: fmt.Sprintf("agent-backed tapipy call: time added per call by the agent hook (floor %v: %s)", hookFloor, floor),
			Measured: bench.MedianRange(added) + " added; the call " + bench.MedianRange(res.Backed),
			Baseline: "the same call with a fixed token " + bench.MedianRange(res.Fixed),
			Ratio:    bench.Ratio(res.Backed.Median(), res.Fixed.Median())},
	}, nil
}
