package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestBaselineExchange runs the raw frame client and the Go frame client
// against the do-nothing agent: the start-up floor must do the whole
// exchange, or its figure would flatter nothing.
func TestBaselineExchange(t *testing.T) {
	if testing.Short() {
		t.Skip("builds programs")
	}
	w := &world{dir: t.TempDir(), tokenBytes: 900}
	var err error
	if _, w.rawToken, w.nullAgent, err = buildBaselines(filepath.Join(w.dir, "b")); err != nil {
		t.Fatal(err)
	}
	sock, null, err := w.startNullAgent()
	if err != nil {
		t.Fatal(err)
	}
	defer null.stop()

	cmd := exec.Command(w.rawToken, "dev")
	cmd.Env = []string{"TAPIS_AGENT_SOCK=" + sock}
	out, err := cmd.Output()
	if want := strings.Repeat("a", w.tokenBytes) + "\n"; err != nil || string(out) != want {
		t.Errorf("rawtoken = %.20q… (%d bytes), %v; want %d bytes of token and a newline", out, len(out), err, len(want))
	}
	cmd = exec.Command(w.rawToken, "dev")
	cmd.Env = []string{"TAPIS_AGENT_SOCK=" + filepath.Join(w.dir, "none.sock")}
	if out, err := cmd.Output(); err == nil {
		t.Errorf("rawtoken without an agent = %q, nil; want an error", out)
	}

	tr, err := frameCall(sock)("dev", time.Minute)
	if err != nil {
		t.Fatalf("frameCall: %v", err)
	}
	if want := time.Unix(1796112000, 0); len(tr.AccessToken) != w.tokenBytes || !tr.ExpiresAt.Equal(want) {
		t.Errorf("frameCall = token of %d bytes expiring at %v; want %d bytes, %v", len(tr.AccessToken), tr.ExpiresAt, w.tokenBytes, want)
	}
}
