package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestDeps guards the helper's start-up time: tapis-token talks to the agent
// over raw syscalls, and linking net (its run-time poller), net/http or
// crypto/tls would cost every call about a millisecond of start-up.
func TestDeps(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// "." is this package, the command itself; its tests' imports do not
	// count.
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
	for _, bad := range []string{"net", "net/http", "crypto/tls"} {
		if deps[bad] {
			t.Errorf("tapis-token depends on %s", bad)
		}
	}
}
