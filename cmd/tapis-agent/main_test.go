package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
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

func TestShellQuote(t *testing.T) {
	cases := []struct{ in, want string }{
		{"/run/user/1000/tapis-agent/agent.sock", "/run/user/1000/tapis-agent/agent.sock"},
		{"/tmp/my dir/agent.sock", "'/tmp/my dir/agent.sock'"},
		{"/tmp/it's/a.sock", `'/tmp/it'\''s/a.sock'`},
		{"/tmp/$HOME/a.sock", "'/tmp/$HOME/a.sock'"},
		{"", "''"},
	}
	for _, tc := range cases {
		if got := shellQuote(tc.in); got != tc.want {
			t.Errorf("shellQuote(%q) = %s; want %s", tc.in, got, tc.want)
		}
	}
}

func TestAgentEnv(t *testing.T) {
	in := []string{"PATH=/bin", "NOTIFY_SOCKET=/run/n", "LISTEN_FDS=1", "LISTEN_PID=4", "LISTEN_FDNAMES=x",
		"WATCHDOG_USEC=1", "WATCHDOG_PID=4", "HOME=/h", "TAPIS_AGENT_CONFIG=/c"}
	got := strings.Join(agentEnv(in), " ")
	if want := "PATH=/bin HOME=/h TAPIS_AGENT_CONFIG=/c"; got != want {
		t.Errorf("agentEnv = %q; want %q", got, want)
	}
	if in[1] != "NOTIFY_SOCKET=/run/n" {
		t.Errorf("agentEnv modified its input")
	}
}

func TestOpenLogTightensMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "agent.log")
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("old line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil { // past the umask
		t.Fatal(err)
	}
	f, err := openLog(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("new line\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode = %v; want 0600", fi.Mode().Perm())
	}
	if b, _ := os.ReadFile(path); string(b) != "old line\nnew line\n" {
		t.Errorf("log = %q; want the old line kept and the new one appended", b)
	}
}

func TestAlive(t *testing.T) {
	if !alive(os.Getpid()) {
		t.Errorf("alive(self) = false")
	}
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	// Until Wait reaps it, the exited child is a zombie: not alive.
	deadline := time.Now().Add(10 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			t.Fatalf("alive(%d) still true 10s after the child exited", pid)
		}
		time.Sleep(10 * time.Millisecond) // a real process exiting: poll
	}
	cmd.Wait()
	if alive(pid) {
		t.Errorf("alive(reaped child) = true")
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
