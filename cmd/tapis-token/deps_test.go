package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDeps guards the helper's start-up time: tapis-token talks to the agent
// over raw syscalls, and linking net (its run-time poller), net/http or
// crypto/tls would cost every call about a millisecond of start-up. Every
// package imported is initialised at each start, used or not: the other
// commands' packages (tokencli, os/exec, os/signal, x/term, jwt) stay out,
// and so do encoding/json and the HTTP client of package ipc/ipcclient:
// the token path needs only package ipc and its frame.
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
	for _, bad := range []string{
		"net", "net/http", "crypto/tls", "log/slog", "os/user",
		"github.com/tapis-agent/tapis-agent/internal/tokencli", "github.com/tapis-agent/tapis-agent/tapis/jwt",
		"os/exec", "os/signal", "context", "text/tabwriter", "golang.org/x/term", "golang.org/x/sys/unix",
		"github.com/tapis-agent/tapis-agent/ipc/ipcclient", "github.com/tapis-agent/tapis-agent/ipc/ipcserver", "encoding/json", "encoding/base64", "fmt",
	} {
		if deps[bad] {
			t.Errorf("tapis-token depends on %s", bad)
		}
	}
}

// TestLinkedCode guards what the linker keeps, a second line behind
// TestDeps: no code of the other commands, no reflective JSON decoder, no
// date parsing or formatting.
func TestLinkedCode(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "tapis-token")
	build := exec.CommandContext(ctx, goBin, "build", "-trimpath", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, err := exec.CommandContext(ctx, goBin, "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm: %v", err)
	}
	syms := string(out)
	if !strings.Contains(syms, "internal/cmdline.Run") {
		t.Fatalf("go tool nm lists no internal/cmdline.Run; parsing is broken:\n%.2000s", syms)
	}
	for _, bad := range []string{
		"encoding/json.Unmarshal", "encoding/json.Marshal", "encoding/json.(*decodeState)",
		"golang.org/x/term.", "tapis-agent/tapis/jwt.", "text/tabwriter.",
		"internal/tokencli.dispatch", "internal/tokencli.cmdLogin", "internal/tokencli.cmdStatus",
		" net.", "net/http.", "crypto/tls.",
		// time's parsing, formatting and time zone loading: nothing on the
		// token path reads or prints a date.
		" time.parse", " time.Time.appendFormat", " time.LoadLocation",
	} {
		if strings.Contains(syms, bad) {
			t.Errorf("tapis-token links %s", strings.TrimSpace(bad))
		}
	}
}
