package launch

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/daemon"
)

// TestMain plays tapis-agent when Start runs the test binary as
// `serve`: the real daemon, not hardened, so that Start and Stop are
// tested against what they start in production.
func TestMain(m *testing.M) {
	if os.Getenv("LAUNCH_TEST_AGENT") == "1" && len(os.Args) > 1 && os.Args[1] == "serve" {
		os.Exit(serveForTest(os.Args[2:]))
	}
	// The agent these tests start and stop is this test program.
	if exe, err := os.Executable(); err == nil {
		agentNames = append(agentNames, filepath.Base(exe))
	}
	os.Exit(m.Run())
}

func serveForTest(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	socket := fs.String("socket", "", "")
	cfg := fs.String("config", "", "")
	level := fs.String("log-level", "info", "")
	fs.Parse(args)
	var lvl slog.LevelVar
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: &lvl}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, activated, err := daemon.Listen(*socket, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapis-agent:", err)
		return 1
	}
	d, err := daemon.New(daemon.Options{Socket: ln.Addr().String(), Activated: activated, ConfigPath: *cfg, Logger: log, Level: &lvl})
	if err != nil {
		fmt.Fprintln(os.Stderr, "tapis-agent:", err)
		return 1
	}
	if err := d.Serve(ctx, ln); err != nil {
		fmt.Fprintln(os.Stderr, "tapis-agent:", err)
		return 1
	}
	return 0
}

// setup points Start at a socket, a config and a log in a fresh directory,
// and makes sure that every agent started there dies with the test.
func setup(t *testing.T) (opts Options, logPath string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "tl") // short: socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	t.Setenv("LAUNCH_TEST_AGENT", "1")
	t.Setenv("XDG_STATE_HOME", filepath.Join(dir, "state"))
	t.Setenv("NOTIFY_SOCKET", filepath.Join(dir, "notify")) // must not reach the agent
	opts = Options{Socket: filepath.Join(dir, "run", "agent.sock"), ConfigPath: filepath.Join(dir, "config.toml")}
	t.Cleanup(func() {
		if pid, ok := probe(context.Background(), opts.Socket); ok {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	return opts, filepath.Join(dir, "state", "tapis-agent", "agent.log")
}

func TestStartStop(t *testing.T) {
	opts, logPath := setup(t)
	ctx := context.Background()
	a, err := Start(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !a.Started || a.PID <= 0 || a.LogPath != logPath || a.Socket != opts.Socket {
		t.Fatalf("Start = %+v; want a started agent on %s logging to %s", a, opts.Socket, logPath)
	}
	if pid, ok := probe(ctx, opts.Socket); !ok || pid != a.PID {
		t.Fatalf("probe after Start = %d, %v; want pid %d", pid, ok, a.PID)
	}
	// Detached: a session of its own, in /, without systemd's variables.
	if sid, err := getsid(a.PID); err != nil || sid != a.PID {
		t.Errorf("agent session = %d, %v; want its own (%d)", sid, err, a.PID)
	}
	if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", a.PID)); err != nil || cwd != "/" {
		t.Errorf("agent directory = %q, %v; want /", cwd, err)
	}
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", a.PID)); err != nil || strings.Contains(string(env), "NOTIFY_SOCKET=") {
		t.Errorf("agent environment holds NOTIFY_SOCKET (%v)", err)
	}
	log, err := os.ReadFile(logPath)
	if err != nil || !strings.Contains(string(log), "msg=serving") || !strings.Contains(string(log), opts.ConfigPath) {
		t.Errorf("agent log (%v):\n%s\nwant the serving line naming the config", err, log)
	}
	if fi, err := os.Stat(logPath); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("agent log mode: %v, %v; want 0600", fi, err)
	}

	again, err := Start(ctx, opts)
	if err != nil || again.Started || again.PID != a.PID || again.LogPath != "" || again.Socket != opts.Socket {
		t.Errorf("second Start = %+v, %v; want the running agent %d, not started", again, err, a.PID)
	}

	pid, err := Stop(ctx, opts.Socket)
	if err != nil || pid != a.PID {
		t.Fatalf("Stop = %d, %v; want %d, nil", pid, err, a.PID)
	}
	if alive(a.PID) {
		t.Errorf("agent pid %d alive after Stop", a.PID)
	}
	if _, ok := probe(ctx, opts.Socket); ok {
		t.Errorf("an agent answers after Stop")
	}
	if _, err := Stop(ctx, opts.Socket); err == nil || !strings.Contains(err.Error(), "no agent answers on "+opts.Socket) {
		t.Errorf("Stop without agent = %v; want an error saying no agent answers", err)
	}
}

func getsid(pid int) (int, error) {
	sid, _, errno := syscall.RawSyscall(syscall.SYS_GETSID, uintptr(pid), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(sid), nil
}

// TestStartRace: starts racing in one process, each with its own lock
// file descriptor as separate processes have, end with one agent.
func TestStartRace(t *testing.T) {
	opts, _ := setup(t)
	const n = 4
	var wg sync.WaitGroup
	agents := make([]*Agent, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { agents[i], errs[i] = Start(context.Background(), opts) })
	}
	wg.Wait()
	started := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Start %d: %v", i, errs[i])
		}
		if agents[i].PID != agents[0].PID {
			t.Errorf("Start %d found pid %d; Start 0 found %d", i, agents[i].PID, agents[0].PID)
		}
		if agents[i].Started {
			started++
		}
	}
	if started != 1 {
		t.Errorf("%d of %d racing Starts started an agent; want 1", started, n)
	}
}

// TestStartFailure: an agent that exits at start is reported with the
// tail of its log, and its log's path.
func TestStartFailure(t *testing.T) {
	opts, logPath := setup(t)
	if err := os.MkdirAll(filepath.Dir(opts.Socket), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(opts.Socket, nil, 0o600); err != nil { // in the way
		t.Fatal(err)
	}
	a, err := Start(context.Background(), opts)
	if err == nil {
		t.Fatalf("Start with a file in the way = %+v; want an error", a)
	}
	if msg := err.Error(); !strings.Contains(msg, "the agent exited at start") || !strings.Contains(msg, "is not a socket") || !strings.Contains(msg, logPath) {
		t.Errorf("Start error = %q; want the exit, the log's reason and the log path", msg)
	}
}

func TestStartBadBinary(t *testing.T) {
	opts, _ := setup(t)
	opts.AgentBinary = filepath.Join(t.TempDir(), "missing")
	if _, err := Start(context.Background(), opts); err == nil || !strings.Contains(err.Error(), "starting the agent") {
		t.Errorf("Start with a missing binary = %v; want starting the agent: …", err)
	}
}

func TestStartCancelled(t *testing.T) {
	opts, _ := setup(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Start(ctx, opts); !errors.Is(err, context.Canceled) {
		t.Errorf("Start with a cancelled context = %v; want context.Canceled", err)
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

func TestLogTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.log")
	old := "old run\n"
	long := strings.Repeat("x", 3000) + "\nlast line\n"
	if err := os.WriteFile(path, []byte(old+long), 0o600); err != nil {
		t.Fatal(err)
	}
	got := logTail(path, int64(len(old)))
	if len(got) != 2048-1 || !strings.HasSuffix(got, "x\nlast line") {
		t.Errorf("logTail = %d bytes ending %q; want the last 2 KiB without the final newline", len(got), got[max(0, len(got)-20):])
	}
	if got := logTail(path, 1<<20); got != "" {
		t.Errorf("logTail past the end = %q; want \"\"", got)
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

// TestIsAgentProcess: stop signals only a tapis-agent of the user's, not
// any process an answer on the socket names.
func TestIsAgentProcess(t *testing.T) {
	if err := isAgentProcess(os.Getpid()); err != nil {
		t.Errorf("isAgentProcess(the test, which stands in for the agent) = %v; want nil", err)
	}
	sleep := exec.Command("sleep", "60")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleep.Process.Kill()
	if err := isAgentProcess(sleep.Process.Pid); err == nil || !strings.Contains(err.Error(), "runs sleep, not tapis-agent") {
		t.Errorf("isAgentProcess(sleep) = %v; want a refusal naming what it runs", err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	if err := isAgentProcess(dead.Process.Pid); err == nil {
		t.Errorf("isAgentProcess(a process gone) = nil; want an error")
	}
}
