package ipc

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDeps guards the helper's start-up time: package ipc is linked into
// tapis-token and must stay free of heavy packages.
func TestDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		deps[p] = true
	}
	if !deps["os"] {
		t.Fatalf("go list -deps output does not list os; parsing is broken:\n%s", out)
	}
	// net costs the helper its run-time poller (see conn.go).
	for _, bad := range []string{"net", "net/http", "crypto/tls", "log/slog", "os/user"} {
		if deps[bad] {
			t.Errorf("package ipc depends on %s", bad)
		}
	}
}
