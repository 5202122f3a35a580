package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/forward"
)

func TestRunUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"launch"}, "unknown command launch"},
		{"serve argument", []string{"serve", "extra"}, `serve takes no arguments, got "extra"`},
		{"serve bad level", []string{"serve", "--log-level", "loud"}, `--log-level "loud": use debug, info, warn or error`},
		{"start argument", []string{"start", "now"}, `start takes no arguments, got "now"`},
		{"start both syntaxes", []string{"start", "-c", "-s"}, "-c and -s exclude each other"},
		{"stop unknown flag", []string{"stop", "--force"}, "unknown flag --force"},
		{"start flag typo", []string{"start", "--sokcet", "x"}, "unknown flag --sokcet; did you mean --socket?"},
		{"command typo", []string{"strat"}, "unknown command strat; did you mean start?"},
		{"help of no command", []string{"help", "strat"}, "no command strat; did you mean start?"},
		{"forward without host", []string{"forward"}, "forward needs a HOST"},
		{"forward flag without host", []string{"forward", "--remote-socket", "/x/a.sock"}, "forward needs a HOST"},
		{"forward relative remote socket", []string{"forward", "--remote-socket", "a.sock", "node"}, "give an absolute path"},
		{"forward unknown flag", []string{"forward", "-A", "node"}, "unknown flag -A"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb)
			var f *cmdline.Failure
			if !errors.As(err, &f) || f.Code != cmdline.ExitUsage || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("run(%q) = %v; want a usage error containing %q", tc.args, err, tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("run(%q) wrote %q on stdout; want nothing", tc.args, out.String())
			}
		})
	}
}

func TestStopWithoutAgent(t *testing.T) {
	sock := filepath.Join(shortDir(t), "agent.sock")
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"stop", "--socket", sock}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "no agent answers on "+sock) {
		t.Fatalf("stop without agent = %v; want an error saying no agent answers on %s", err, sock)
	}
	if out.Len() != 0 {
		t.Errorf("stop printed %q on stdout; want nothing", out.String())
	}
}

// shortDir returns a temp dir whose paths fit a Unix socket name.
func shortDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "tat")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// TestCommandTable: every command of the help table runs, prints its help
// for --help and help CMD, and accepts every flag its help names.
func TestCommandTable(t *testing.T) {
	for _, c := range commands {
		for _, args := range [][]string{{c.Name, "--help"}, {"help", c.Name}, {c.Name, "-h"}} {
			var out, errb bytes.Buffer
			if err := run(t.Context(), args, &out, &errb); err != nil || errb.Len() != 0 {
				t.Errorf("run(%q) = %v, stderr %q; want its help", args, err, errb.String())
			}
			if !strings.HasPrefix(out.String(), "usage: tapis-agent "+c.Name) {
				t.Errorf("run(%q) printed %q; want its usage", args, out.String())
			}
		}
		for _, f := range c.FlagNames() {
			args := []string{c.Name, f, "x", "--no-such-flag"}
			var out, errb bytes.Buffer
			err := run(t.Context(), args, &out, &errb)
			if err == nil || !strings.Contains(err.Error(), "unknown flag --no-such-flag") {
				t.Errorf("run(%q) = %v; want it to refuse only --no-such-flag", args, err)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	defer func(v, c string) { version, commit = v, c }(version, commit)
	version, commit = "1.2.3", "0123456789abcdef0123456789abcdef01234567"
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, &out); err != nil {
		t.Fatalf("version: %v", err)
	}
	want := "tapis-agent 1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, " + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
	if out.String() != want {
		t.Errorf("version printed %q; want %q", out.String(), want)
	}
	// A build without -X main.commit names the commit the go command
	// recorded, or says it is unknown; never nothing.
	if got := buildCommit(""); got == "" {
		t.Error(`buildCommit("") = ""; want a commit or "unknown"`)
	}
}

func TestForwardHost(t *testing.T) {
	cases := []struct {
		args []string
		want int
	}{
		{nil, 0},
		{[]string{"node"}, 0},
		{[]string{"node", "ls", "--help"}, 0},
		{[]string{"--socket", "/s", "node", "-h"}, 2},
		{[]string{"--socket=/s", "node"}, 1},
		{[]string{"--help", "node"}, 1},
		{[]string{"--", "-node"}, 1},
		{[]string{"--remote-socket"}, 1},
	}
	for _, tc := range cases {
		if got := forwardHost(tc.args); got != tc.want {
			t.Errorf("forwardHost(%q) = %d; want %d", tc.args, got, tc.want)
		}
	}
	// The remote command's --help is its own.
	var out, errb bytes.Buffer
	t.Setenv("TAPIS_AGENT_SOCK", filepath.Join(t.TempDir(), "none", "agent.sock"))
	err := run(context.Background(), []string{"forward", "node", "ls", "--help"}, &out, &errb)
	if err == nil || !strings.Contains(err.Error(), "no agent answers") || out.Len() != 0 {
		t.Errorf("forward node ls --help = %v, stdout %q; want the missing agent, not forward's help", err, out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"forward", "--help"}, &out, &errb); err != nil || !strings.Contains(out.String(), "usage: tapis-agent forward") {
		t.Errorf("forward --help = %v, stdout %q; want forward's help", err, out.String())
	}
}

// TestReportSSHStatus: ssh's own failure (255) is named with its step;
// a remote command's status passes through silently.
func TestReportSSHStatus(t *testing.T) {
	cases := []struct {
		code int
		want string
	}{
		{255, "tapis-agent: making the socket's directory on node: ssh exited with status 255\n"},
		{7, ""},
	}
	for _, tc := range cases {
		var errb bytes.Buffer
		got := report(&forward.ExitError{Step: "making the socket's directory on node", Code: tc.code}, &errb)
		if got != tc.code || errb.String() != tc.want {
			t.Errorf("report(status %d) = %d, stderr %q; want %d, %q", tc.code, got, errb.String(), tc.code, tc.want)
		}
	}
}
