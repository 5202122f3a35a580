package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunUsage(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want string // in the error
	}{
		{"no command", nil, "no command given"},
		{"unknown command", []string{"launch"}, `unknown command "launch"`},
		{"serve argument", []string{"serve", "extra"}, `serve takes no arguments, got "extra"`},
		{"serve bad level", []string{"serve", "--log-level", "loud"}, `--log-level "loud": use debug, info, warn or error`},
		{"start argument", []string{"start", "now"}, `start takes no arguments, got "now"`},
		{"start both syntaxes", []string{"start", "-c", "-s"}, "-c and -s exclude each other"},
		{"stop unknown flag", []string{"stop", "--force"}, "flag provided but not defined: -force"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), tc.args, &out, &errb)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
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
