package main

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"golang.org/x/sys/unix"
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

func TestStatusLine(t *testing.T) {
	tenants := func(states ...string) []ipc.TenantStatus {
		var ts []ipc.TenantStatus
		for _, s := range states {
			ts = append(ts, ipc.TenantStatus{State: s})
		}
		return ts
	}
	cases := []struct {
		name string
		st   ipc.StatusResponse
		want string
	}{
		{"empty", ipc.StatusResponse{}, "no tenants"},
		{"issue example", ipc.StatusResponse{Tenants: tenants(ipc.StateReady, ipc.StateAccessOnly, ipc.StateLoginRequired)},
			"2 tenants ready, 1 needs login"},
		{"one ready", ipc.StatusResponse{Tenants: tenants(ipc.StateRefreshing)}, "1 tenant ready"},
		{"need login", ipc.StatusResponse{Tenants: tenants(ipc.StateExpired, ipc.StateLoginRequired)}, "2 need login"},
		{"retrying and device", ipc.StatusResponse{Tenants: tenants(ipc.StateRetrying, ipc.StateDevicePending)},
			"1 retrying, 1 awaiting device login"},
		{"config error", ipc.StatusResponse{ConfigError: "bad", Tenants: tenants(ipc.StateReady)},
			"1 tenant ready; config invalid, see tapis-token status"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := statusLine(&tc.st); got != tc.want {
				t.Errorf("statusLine = %q; want %q", got, tc.want)
			}
		})
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

// TestHarden runs harden in a child process, which it changes for good,
// and reads back what the child reports.
func TestHarden(t *testing.T) {
	if os.Getenv("TAPIS_AGENT_HARDEN_CHILD") == "1" {
		warnings := harden()
		dumpable, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var core unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_CORE, &core); err != nil {
			t.Fatal(err)
		}
		umask := unix.Umask(0)
		t.Logf("dumpable=%d core=%d/%d umask=%04o warnings=%q", dumpable, core.Cur, core.Max, umask, warnings)
		if dumpable != 0 {
			t.Errorf("dumpable = %d; want 0", dumpable)
		}
		if core.Cur != 0 || core.Max != 0 {
			t.Errorf("RLIMIT_CORE = %d/%d; want 0/0", core.Cur, core.Max)
		}
		if umask != 0o077 {
			t.Errorf("umask = %04o; want 0077", umask)
		}
		if hasCapIPCLock() && len(warnings) != 0 {
			t.Errorf("harden with CAP_IPC_LOCK warned %q; want nothing (it may lock memory)", warnings)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHarden$", "-test.v")
	cmd.Env = append(os.Environ(), "TAPIS_AGENT_HARDEN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hardened child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "dumpable=0 core=0/0 umask=0077") {
		t.Errorf("hardened child reported:\n%s", out)
	}
}

func TestNotifier(t *testing.T) {
	dir := shortDir(t)
	path := filepath.Join(dir, "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", path)
	t.Setenv("WATCHDOG_USEC", "100000")
	t.Setenv("WATCHDOG_PID", "")
	recv := func() string {
		t.Helper()
		buf := make([]byte, 4096)
		conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatalf("reading notification: %v", err)
		}
		return string(buf[:n])
	}
	n := newNotifier(slog.New(slog.DiscardHandler))
	n.ready("1 tenant ready")
	if got := recv(); got != "READY=1\nSTATUS=1 tenant ready" {
		t.Errorf("ready sent %q", got)
	}
	n.reloading()
	if got := recv(); !strings.HasPrefix(got, "RELOADING=1\nMONOTONIC_USEC=") || len(got) <= len("RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("reloading sent %q; want RELOADING=1 and MONOTONIC_USEC", got)
	}
	n.status("a")
	n.status("a") // unchanged: not sent again
	n.status("b")
	if got := recv(); got != "STATUS=a" {
		t.Errorf("status sent %q; want STATUS=a", got)
	}
	if got := recv(); got != "STATUS=b" {
		t.Errorf("status sent %q; want STATUS=b once the first STATUS=a was deduplicated", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		n.run(ctx, func() (*ipc.StatusResponse, error) { return &ipc.StatusResponse{}, nil })
	}()
	var got []string
	for len(got) < 2 || got[len(got)-1] != "WATCHDOG=1" {
		got = append(got, recv())
	}
	if got[0] != "STATUS=no tenants" {
		t.Errorf("first message of run = %q; want the status line before the ping", got[0])
	}
	cancel()
	<-done
	n.stopping()
	for {
		if m := recv(); m == "STOPPING=1" {
			break
		} else if m != "WATCHDOG=1" {
			t.Fatalf("got %q; want STOPPING=1", m)
		}
	}
}

func TestNotifierWithoutSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	// A nil logger: logging a failed send would panic, so this also proves
	// that nothing is sent.
	n := newNotifier(nil)
	n.ready("x")
	n.reloading()
	n.status("y")
	n.stopping()
	n.run(context.Background(), nil) // returns at once without NOTIFY_SOCKET
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

func TestSetLogLevel(t *testing.T) {
	cases := []struct {
		name     string
		from     slog.Level
		config   string
		want     slog.Level
		wantLine string // "" for no line
	}{
		{"unset is info", slog.LevelWarn, "", slog.LevelInfo, "level=INFO msg=log_level_changed from=WARN to=INFO"},
		{"more verbose shows", slog.LevelInfo, "debug", slog.LevelDebug, "level=DEBUG msg=log_level_changed from=INFO to=DEBUG"},
		{"less verbose shows", slog.LevelDebug, "error", slog.LevelError, "level=DEBUG msg=log_level_changed from=DEBUG to=ERROR"},
		{"same is silent", slog.LevelWarn, "warn", slog.LevelWarn, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var lvl slog.LevelVar
			lvl.Set(tc.from)
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: &lvl}))
			setLogLevel(log, &lvl, tc.config)
			if got := lvl.Level(); got != tc.want {
				t.Errorf("setLogLevel(%v, %q) set %v; want %v", tc.from, tc.config, got, tc.want)
			}
			if got := buf.String(); tc.wantLine == "" && got != "" || !strings.Contains(got, tc.wantLine) {
				t.Errorf("setLogLevel(%v, %q) logged %q; want %q", tc.from, tc.config, got, tc.wantLine)
			}
		})
	}
}
