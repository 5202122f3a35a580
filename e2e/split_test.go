package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestTokenRunsCommandsThroughAgent: tapis-token answers the token
// itself and has tapis-agent run every other command under its name: the
// tapis-agent beside it, else the one on PATH. Without either, the token
// still works and the other commands say what is missing.
func TestTokenRunsCommandsThroughAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	e.startAgent()
	if r := e.token("secret\n", "login", "dev", "--password-stdin"); r.code != 0 {
		t.Fatalf("login: %+v", r)
	}
	tok := strings.TrimSpace(e.mustToken("", "dev").stdout)

	alone := filepath.Join(t.TempDir(), "tapis-token")
	data, err := os.ReadFile(filepath.Join(binDir, "tapis-token"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(alone, data, 0o755); err != nil {
		t.Fatal(err)
	}
	env := func(path string) []string {
		var out []string
		for _, kv := range e.environ() {
			if !strings.HasPrefix(kv, "PATH=") {
				out = append(out, kv)
			}
		}
		return append(out, "PATH="+path)
	}

	// Alone, without tapis-agent anywhere.
	noAgent := env("/usr/bin:/bin")
	if r := runCmd(t, alone, noAgent, "", "dev"); r.code != 0 || r.stdout != tok+"\n" {
		t.Errorf("token with no tapis-agent installed = %+v; want the token", r)
	}
	if r := runCmd(t, alone, noAgent, "", "-H", "dev"); r.code != 0 || r.stdout != "X-Tapis-Token: "+tok+"\n" {
		t.Errorf("-H with no tapis-agent installed = %+v; want the header line", r)
	}
	r := runCmd(t, alone, noAgent, "", "status")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "tapis-token: running tapis-agent: ") ||
		!strings.Contains(r.stderr, "tapis-token: hint: install tapis-agent beside tapis-token or on PATH") {
		t.Errorf("status with no tapis-agent installed = %+v; want exit 1 saying tapis-agent is missing, with a hint", r)
	}

	// With tapis-agent on PATH only.
	onPath := env(binDir + ":/usr/bin:/bin")
	r = runCmd(t, alone, onPath, "", "status")
	if r.code != 0 || !strings.Contains(r.stdout, "dev") {
		t.Errorf("status through the tapis-agent on PATH = %+v; want the table", r)
	}
	r = runCmd(t, alone, onPath, "", "--json", "dev")
	if r.code != 0 || !strings.Contains(r.stdout, `"access_token": "`+tok+`"`) {
		t.Errorf("--json through the tapis-agent on PATH = %+v; want the token as JSON", r)
	}
	r = runCmd(t, alone, onPath, "", "version")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "tapis-token ") {
		t.Errorf("version = %+v; want tapis-token and the version", r)
	}
	// A usage error is reported by the full command line, with its hint.
	r = runCmd(t, alone, onPath, "", "--min-valid", "soon")
	if r.code != 2 || !strings.Contains(r.stderr, "tapis-token: hint: tapis-token help") {
		t.Errorf("--min-valid soon = %+v; want exit 2 with a hint", r)
	}
}
