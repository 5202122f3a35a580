// Package launch starts a tapis-agent in the background, detached from the
// terminal, unless one answers on the socket already, and stops it again:
// what `tapis-agent start` and `tapis-agent stop` do, and what
// `tapis-token login` does when it finds no agent.
package launch

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/cmdline"
	"github.com/tapis-agent/tapis-agent/internal/lockfile"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// startTimeout bounds how long Start waits for a new agent to answer.
const startTimeout = 10 * time.Second

// pollEvery is how often Start and Stop look at the other process: it
// is no child they could wait for (Stop's), or gives no sign when it
// starts to answer (Start's).
const pollEvery = 20 * time.Millisecond

// Options say where an agent answers, and how Start starts one.
type Options struct {
	// Socket is the agent's socket; "" means ipc.SocketPath(). A relative
	// path is taken from the current directory.
	Socket string
	// ConfigPath is the config file of a started agent; "" leaves the
	// choice to the agent ($TAPIS_AGENT_CONFIG, else the default). A
	// relative path is taken from the current directory.
	ConfigPath string
	// LogLevel is the --log-level of a started agent; "" leaves the
	// choice to its config.
	LogLevel string
	// AgentBinary is the tapis-agent binary, run as `AgentBinary serve`;
	// "" means the running program (os.Executable), which is tapis-agent
	// for its own commands and tapis-token's.
	AgentBinary string
}

// Agent is the agent that answers on the socket.
type Agent struct {
	// Socket is the absolute path of the socket.
	Socket string
	PID    int
	// Started reports whether Start started the agent; if not, it was
	// running already.
	Started bool
	// LogPath is the log of a started agent; "" if it was running.
	LogPath string
}

// Start returns the agent that answers on the socket, after starting one
// if none does: `tapis-agent serve` in a session of its own, in /, with
// the caller's environment less systemd's variables, logging to
// $XDG_STATE_HOME/tapis-agent/agent.log. It waits until the new agent
// answers. Concurrent Starts, in this process or others, end with one
// agent.
func Start(ctx context.Context, opts Options) (*Agent, error) {
	socket := opts.Socket
	if socket == "" {
		socket = ipc.SocketPath()
	}
	socket, err := filepath.Abs(socket)
	if err != nil {
		return nil, fmt.Errorf("resolving socket path %s: %w", opts.Socket, err)
	}
	if opts.ConfigPath != "" {
		if opts.ConfigPath, err = filepath.Abs(opts.ConfigPath); err != nil {
			return nil, fmt.Errorf("resolving config path %s: %w", opts.ConfigPath, err)
		}
	}
	if pid, ok := probe(ctx, socket); ok {
		return &Agent{Socket: socket, PID: pid}, nil
	}
	if err := ipc.MakeDir(filepath.Dir(socket)); err != nil {
		return nil, err
	}
	// Two starts racing (two shells opening at once) must end with one
	// agent: the check and the spawn happen under a lock, and the second
	// start finds the first one's agent answering.
	unlock, err := lockfile.Lock(socket + ".lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	if pid, ok := probe(ctx, socket); ok {
		return &Agent{Socket: socket, PID: pid}, nil
	}
	logPath := cmdline.AgentLogPath()
	pid, started, err := spawn(ctx, socket, opts, logPath)
	if err != nil {
		return nil, err
	}
	if !started {
		return &Agent{Socket: socket, PID: pid}, nil
	}
	return &Agent{Socket: socket, PID: pid, Started: true, LogPath: logPath}, nil
}

// spawn starts `tapis-agent serve` detached from the terminal and waits
// until an agent answers at socket. It reports whether that agent is the
// one it started.
func spawn(ctx context.Context, socket string, opts Options, logPath string) (pid int, started bool, err error) {
	exe := opts.AgentBinary
	if exe == "" {
		if exe, err = os.Executable(); err != nil {
			return 0, false, fmt.Errorf("finding the tapis-agent binary: %w", err)
		}
	}
	logf, err := openLog(logPath)
	if err != nil {
		return 0, false, err
	}
	defer logf.Close()
	logStart, _ := logf.Seek(0, io.SeekEnd)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return 0, false, err
	}
	defer devnull.Close()

	args := []string{"serve", "--socket", socket}
	if opts.LogLevel != "" {
		args = append(args, "--log-level", opts.LogLevel)
	}
	if opts.ConfigPath != "" {
		args = append(args, "--config", opts.ConfigPath)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, logf, logf
	// Its own session: no controlling terminal, so closing the shell that
	// started it neither hangs it up nor stops it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// Not the caller's directory: the agent must not keep a mount busy.
	cmd.Dir = "/"
	cmd.Env = agentEnv(os.Environ())
	if err := cmd.Start(); err != nil {
		return 0, false, fmt.Errorf("starting the agent: %w", err)
	}
	// Reaps the agent if it exits while this process lives.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	pid = cmd.Process.Pid

	// The agent is another process: poll its socket, with a deadline.
	deadline := time.NewTimer(startTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			return 0, false, fmt.Errorf("the agent exited at start (%v):\n%s\nsee its log %s", err, logTail(logPath, logStart), logPath)
		case <-ctx.Done():
			_ = cmd.Process.Kill()
			return 0, false, fmt.Errorf("starting the agent: %w", ctx.Err())
		case <-deadline.C:
			_ = cmd.Process.Kill()
			return 0, false, fmt.Errorf("the agent (pid %d) did not answer on %s within %s; see its log %s", pid, socket, startTimeout, logPath)
		case <-tick.C:
			if got, ok := probe(ctx, socket); ok {
				// Another agent may have won a race outside the lock (a
				// plain `serve`); then ours found it and exits.
				return got, got == pid, nil
			}
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
