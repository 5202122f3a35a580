package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestAgentOnAnotherNode: two login nodes share the home directory. The
// agent on login2 (a UTS namespace of that name) records where it runs,
// without any secret; tapis-token on this node, which has no agent, names
// login2; the record goes when the agent stops.
func TestAgentOnAnotherNode(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("skipped: a second host name needs a UTS namespace (unshare --uts), which needs root")
	}
	if out, err := exec.Command("unshare", "--uts", "true").CombinedOutput(); err != nil {
		t.Skipf("skipped: unshare --uts cannot run here: %v %s", err, out)
	}
	self, err := os.Hostname()
	if err != nil || self == "login2" {
		t.Skipf("skipped: this host's name (%q, %v) must not be login2", self, err)
	}
	e := newEnv(t, tapistest.Config{})
	e.wrap = []string{"unshare", "--uts", "sh", "-c", `hostname login2 && exec "$0" "$@"`}
	e.startAgent()
	e.login()
	token := strings.TrimSpace(e.mustToken("", "dev").stdout)

	rec := filepath.Join(e.home, ".local", "state", "tapis-agent", "agents", "login2")
	fi, err := os.Stat(rec)
	if err != nil {
		t.Fatalf("no host record: %v\nagent log:\n%s", err, e.agentLog())
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("host record mode %04o; want 0600", fi.Mode().Perm())
	}
	if di, err := os.Stat(filepath.Dir(rec)); err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("host record directory: %v, %v; want mode 0700", di, err)
	}
	want := "host=login2\nsocket=" + e.sock + "\npid=" + strconv.Itoa(e.agent.Process.Pid) + "\n"
	if got := readFile(rec); got != want {
		t.Errorf("host record = %q; want %q", got, want)
	}
	if strings.Contains(readFile(rec), token) {
		t.Errorf("host record holds the access token")
	}

	// This node: the same home, a node-local socket where no agent runs.
	here := append(e.environ(), "TAPIS_AGENT_SOCK="+filepath.Join(e.dir, "here", "agent.sock"))
	r := runCmd(t, filepath.Join(binDir, "tapis-token"), here, "", "dev")
	wantMsg := "your agent runs on login2; log in here with `tapis-token login`, or ssh login2"
	if r.code != 3 || r.stdout != "" || !strings.Contains(r.stderr, wantMsg) || !strings.Contains(r.stderr, "on this host ("+self+")") ||
		!strings.Contains(r.stderr, "tapis-token: hint: tapis-token login, or ssh login2\n") {
		t.Errorf("tapis-token on %s: exit %d, stdout %q, stderr:\n%s\nwant exit 3 naming login2", self, r.code, r.stdout, r.stderr)
	}
	r = runCmd(t, filepath.Join(binDir, "tapis-token"), here, "", "status")
	if r.code != 3 || !strings.Contains(r.stderr, wantMsg) {
		t.Errorf("tapis-token status on %s: exit %d, stderr:\n%s\nwant exit 3 naming login2", self, r.code, r.stderr)
	}

	// A clean stop removes the record, and the hint is the usual one.
	e.stopAgent()
	if _, err := os.Stat(rec); !os.IsNotExist(err) {
		t.Errorf("host record after the agent stopped: %v; want it gone", err)
	}
	r = runCmd(t, filepath.Join(binDir, "tapis-token"), here, "", "dev")
	if r.code != 3 || strings.Contains(r.stderr, "login2") || !strings.Contains(r.stderr, "tapis-agent start") {
		t.Errorf("tapis-token with no record: exit %d, stderr:\n%s\nwant exit 3 with the start hint", r.code, r.stderr)
	}
}
