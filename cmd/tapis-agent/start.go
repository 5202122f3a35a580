package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

// startTimeout bounds how long start waits for a new agent to answer.
const startTimeout = 10 * time.Second

// stopTimeout bounds how long stop waits for the agent to exit.
const stopTimeout = 15 * time.Second

// shellFlags are the flags start and stop share.
type shellFlags struct {
	csh, sh, quiet bool
	socket         string
}

func (f *shellFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.csh, "c", false, "print csh commands")
	fs.BoolVar(&f.sh, "s", false, "print sh commands (the default unless $SHELL is a csh)")
	fs.BoolVar(&f.quiet, "q", false, "say nothing on stderr unless something fails")
	fs.StringVar(&f.socket, "socket", "", "socket path")
}

// useCsh reports whether to print csh syntax: -c, else $SHELL ending in
// csh (csh, tcsh) unless -s, as ssh-agent decides.
func (f *shellFlags) useCsh() bool {
	if f.csh || f.sh {
		return f.csh
	}
	return strings.HasSuffix(os.Getenv("SHELL"), "csh")
}

func (f *shellFlags) parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("%s takes no arguments, got %q", fs.Name(), fs.Arg(0))}
	}
	if f.csh && f.sh {
		return usageError{"-c and -s exclude each other: choose the syntax of your shell"}
	}
	if f.socket == "" {
		f.socket = ipc.SocketPath()
	}
	abs, err := filepath.Abs(f.socket)
	if err != nil {
		return fmt.Errorf("resolving socket path %s: %w", f.socket, err)
	}
	f.socket = abs
	return nil
}

// start reuses the agent at the socket or starts one detached, then prints
// the shell commands that point TAPIS_AGENT_SOCK at it.
func start(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("start", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f shellFlags
	f.register(fs)
	cfgPath := fs.String("config", "", "config file")
	// No default: a level given here would override the config's log_level.
	level := fs.String("log-level", "", "log level of a new agent")
	if err := f.parse(fs, args); err != nil {
		return err
	}
	if *cfgPath != "" {
		abs, err := filepath.Abs(*cfgPath)
		if err != nil {
			return fmt.Errorf("resolving config path %s: %w", *cfgPath, err)
		}
		*cfgPath = abs
	}
	say := func(format string, a ...any) {
		if !f.quiet {
			fmt.Fprintf(stderr, "tapis-agent: "+format+"\n", a...)
		}
	}

	pid, started, logPath, err := ensureAgent(ctx, f.socket, *cfgPath, *level)
	if err != nil {
		return err
	}
	if started {
		say("started agent pid %d on %s (log: %s)", pid, f.socket, logPath)
	} else {
		say("agent pid %d already runs on %s", pid, f.socket)
	}
	if f.useCsh() {
		fmt.Fprintf(stdout, "setenv TAPIS_AGENT_SOCK %s;\n", shellQuote(f.socket))
	} else {
		fmt.Fprintf(stdout, "TAPIS_AGENT_SOCK=%s; export TAPIS_AGENT_SOCK;\n", shellQuote(f.socket))
	}
	return nil
}

// ensureAgent returns the pid of the agent answering at socket, starting
// one first if none does. It reports whether it started it, and the log
// of a started agent.
func ensureAgent(ctx context.Context, socket, cfgPath, level string) (pid int, started bool, logPath string, err error) {
	if pid, ok := probe(socket); ok {
		return pid, false, "", nil
	}
	dir := filepath.Dir(socket)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return 0, false, "", fmt.Errorf("creating socket directory: %w", err)
	}
	if err := ipc.CheckDir(dir); err != nil {
		return 0, false, "", err
	}
	// Two starts racing (two shells opening at once) must end with one
	// agent: the check and the spawn happen under a lock, and the second
	// start finds the first one's agent answering.
	unlock, err := lockFile(socket + ".lock")
	if err != nil {
		return 0, false, "", err
	}
	defer unlock()
	if pid, ok := probe(socket); ok {
		return pid, false, "", nil
	}
	logPath = cmdline.AgentLogPath()
	pid, err = spawn(ctx, socket, cfgPath, level, logPath)
	return pid, err == nil, logPath, err
}

// probe reports whether an agent answers at socket, and its pid.
func probe(socket string) (int, bool) {
	c := &ipcclient.Client{Path: socket, Timeout: 2 * time.Second}
	st, err := c.Status(context.Background())
	if err != nil {
		return 0, false
	}
	return st.PID, true
}

// lockFile takes an exclusive flock on path, creating it. The lock goes
// with the process if it dies, so it can never be left stale.
func lockFile(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := flockRetry(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

func flockRetry(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// openLog opens the agent log for appending, private to the user.
func openLog(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating log directory: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening agent log: %w", err)
	}
	// A log made by hand, or by an older version, may be readable by others.
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return nil, fmt.Errorf("making agent log private: %w", err)
	}
	return f, nil
}

// spawn starts `tapis-agent serve` detached from the terminal and waits
// until it answers at socket.
func spawn(ctx context.Context, socket, cfgPath, level, logPath string) (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("finding the tapis-agent binary: %w", err)
	}
	logf, err := openLog(logPath)
	if err != nil {
		return 0, err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer devnull.Close()

	args := []string{"serve", "--socket", socket}
	if level != "" {
		args = append(args, "--log-level", level)
	}
	if cfgPath != "" {
		args = append(args, "--config", cfgPath)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	// Its own session: no controlling terminal, so closing the shell that
	// ran start neither hangs it up nor stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Not the shell's directory: the agent must not keep a mount busy.
	cmd.Dir = "/"
	cmd.Env = agentEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("starting the agent: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid := cmd.Process.Pid

	// The agent is another process: poll its socket, with a deadline.
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return 0, fmt.Errorf("the agent exited at start (%v):\n%s\nsee its log %s", err, logTail(logPath, logStart), logPath)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return 0, fmt.Errorf("starting the agent: %w", ctx.Err())
		case <-deadline.C:
			_ = cmd.Process.Kill()
			return 0, fmt.Errorf("the agent (pid %d) did not answer on %s within %s; see its log %s", pid, socket, startTimeout, logPath)
		case <-tick.C:
			if got, ok := probe(socket); ok {
				if got != pid {
					// Another agent won a race outside our lock (a plain
					// `serve`); ours found it and exits.
					return got, nil
				}
				return pid, nil
			}
		}
	}
}

// agentEnv is the environment of a started agent: the caller's, without
// the variables of systemd's protocols, which address the caller.
func agentEnv(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch name {
		case "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC":
			continue
		}
		out = append(out, kv)
	}
	return out
}

// logTail returns what the log got after offset, at most the last 2 KiB.
func logTail(path string, offset int64) string {
	b, err := os.ReadFile(path)
	if err != nil || int64(len(b)) < offset {
		return ""
	}
	b = b[offset:]
	if len(b) > 2048 {
		b = b[len(b)-2048:]
	}
	return strings.TrimRight(string(b), "\n")
}

// stop asks the agent at the socket to exit and waits until it has.
func stop(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f shellFlags
	f.register(fs)
	if err := f.parse(fs, args); err != nil {
		return err
	}
	pid, ok := probe(f.socket)
	if !ok {
		return fmt.Errorf("no agent answers on %s; nothing to stop", f.socket)
	}
	if pid <= 1 {
		return fmt.Errorf("the agent on %s reports pid %d; stop it by hand", f.socket, pid)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return fmt.Errorf("signalling agent pid %d: %w", pid, err)
	}
	// Wait for the process rather than the socket: under socket activation
	// systemd keeps the socket, and a connection would start a new agent.
	deadline := time.NewTimer(stopTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for alive(pid) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-deadline.C:
			return fmt.Errorf("agent pid %d still runs %s after SIGTERM; see its log, or kill -9 %d", pid, stopTimeout, pid)
		case <-tick.C:
		}
	}
	if !f.quiet {
		fmt.Fprintf(stderr, "tapis-agent: stopped agent pid %d\n", pid)
		if _, err := os.Lstat(f.socket); err == nil {
			fmt.Fprintf(stderr, "tapis-agent: %s remains: systemd holds it and starts a new agent on the next call; "+
				"run systemctl --user stop tapis-agent.socket tapis-agent.service to stop for good\n", f.socket)
		}
	}
	if f.useCsh() {
		fmt.Fprintln(stdout, "unsetenv TAPIS_AGENT_SOCK;")
	} else {
		fmt.Fprintln(stdout, "unset TAPIS_AGENT_SOCK;")
	}
	return nil
}

// alive reports whether process pid exists and is not a zombie waiting
// for its parent to reap it.
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if errors.Is(err, os.ErrNotExist) {
		return false
	}
	if err != nil {
		return syscall.Kill(pid, 0) == nil
	}
	// The state follows the command name, which is in parentheses and may
	// itself hold spaces or parentheses.
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 || i+2 >= len(b) {
		return true
	}
	return b[i+2] != 'Z' && b[i+2] != 'X'
}

// shellQuote quotes s for sh and csh when it holds anything but safe
// characters.
func shellQuote(s string) string {
	safe := true
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@%", r)) {
			safe = false
			break
		}
	}
	if safe && s != "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
