package e2e

import (
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestImportPromptsWithoutEcho: on a terminal, import asks for the token
// and does not show it as it is pasted.
func TestImportPromptsWithoutEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	e.startAgent()
	access, _ := e.fake.IssueTokens("jdoe", "")
	r := e.tokenTTY("import", "dev")
	r.answer("Paste the access token for dev (not shown): ", 1, access)
	code, out := r.wait()
	if code != 0 || !strings.Contains(out, "imported a token for dev (access_only)") {
		t.Fatalf("import on a terminal: exit %d; want 0 and the import said:\n%s", code, out)
	}
	if strings.Contains(out, access) || strings.Contains(out, access[:20]) {
		t.Errorf("the terminal shows the pasted token:\n%s", out)
	}
	if st := e.status("dev"); st.State != ipc.StateAccessOnly {
		t.Errorf("status = %s; want access_only", st.State)
	}
}

// TestLoginFailureKeepsSession: three wrong passwords on a terminal say
// that the session the agent held stays, and it does.
func TestLoginFailureKeepsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	e.startAgent()
	e.login()
	r := e.tokenTTY("login", "dev")
	for i := 1; i <= 3; i++ {
		r.answer(passwordPrompt, i, "wrong")
	}
	code, out := r.wait()
	const want = "tapis-token: Tapis refused the username or password for dev 3 times; the session the agent held stays as it was"
	if code != 4 || !strings.Contains(out, want) || strings.Contains(out, "not logged in") {
		t.Fatalf("three wrong passwords with a session held: exit %d; want 4 and %q:\n%s", code, want, out)
	}
	if st := e.status("dev"); st.State != ipc.StateReady {
		t.Errorf("status = %s; want the session ready", st.State)
	}
	e.mustToken("", "dev")
}
