package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// stopTimeout bounds how long Stop waits for the agent to exit.
const stopTimeout = 15 * time.Second

// Stop asks the agent that answers on socket ("" means ipc.SocketPath())
// to exit, with SIGTERM, and waits until its process is gone. It returns
// the agent's pid, also with most errors. Its sessions are lost.
func Stop(ctx context.Context, socket string) (pid int, err error) {
	if socket == "" {
		socket = ipc.SocketPath()
	}
	pid, ok := probe(ctx, socket)
	if !ok {
		return 0, fmt.Errorf("no agent answers on %s; nothing to stop", socket)
	}
	if pid <= 1 {
		return pid, fmt.Errorf("the agent on %s reports pid %d; stop it by hand", socket, pid)
	}
	// The pid is what the agent says: signal it only if it is the
	// user's own tapis-agent, never an unrelated process it names.
	if err := isAgentProcess(pid); err != nil {
		return pid, fmt.Errorf("the agent on %s reports pid %d, but %w; not signalling it: stop the agent by hand", socket, pid, err)
	}
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return pid, fmt.Errorf("signalling agent pid %d: %w", pid, err)
	}
	// Wait for the process rather than the socket: under socket activation
	// systemd keeps the socket, and a connection would start a new agent.
	deadline := time.NewTimer(stopTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollEvery)
	defer tick.Stop()
	for alive(pid) {
		select {
		case <-ctx.Done():
			return pid, fmt.Errorf("waiting for agent pid %d to exit: %w", pid, ctx.Err())
		case <-deadline.C:
			return pid, fmt.Errorf("agent pid %d still runs %s after SIGTERM; see its log, or kill -9 %d", pid, stopTimeout, pid)
		case <-tick.C:
		}
	}
	return pid, nil
}

// alive reports whether process pid exists and is not a zombie waiting
// for its parent to reap it. A zombie still takes signals: on Linux its
// state in /proc tells; elsewhere the agent, which is no one's child once
// its starter has exited, is reaped at once.
func alive(pid int) bool {
	if runtime.GOOS != "linux" {
		return syscall.Kill(pid, 0) != syscall.ESRCH
	}
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

// agentNames are the program names an agent's process may run; tests
// add theirs.
var agentNames = []string{"tapis-agent"}

// isAgentProcess reports why process pid is not a tapis-agent of the
// user, or nil when it is.
func isAgentProcess(pid int) error {
	uid, name, err := processOf(pid)
	switch {
	case err != nil:
		return fmt.Errorf("process %d cannot be inspected (%v)", pid, err)
	case uid != os.Getuid():
		return fmt.Errorf("process %d belongs to uid %d, not to you", pid, uid)
	case !slices.Contains(agentNames, name):
		return fmt.Errorf("process %d runs %s, not %s", pid, name, agentNames[0])
	}
	return nil
}

// processOf returns the user and the program name of process pid: on
// Linux from /proc, elsewhere from ps(1).
func processOf(pid int) (uid int, name string, err error) {
	if runtime.GOOS == "linux" {
		dir := "/proc/" + strconv.Itoa(pid)
		var st syscall.Stat_t
		if err := syscall.Stat(dir, &st); err != nil {
			return 0, "", err
		}
		exe, err := os.Readlink(dir + "/exe")
		if err != nil {
			return 0, "", err
		}
		return int(st.Uid), filepath.Base(strings.TrimSuffix(exe, " (deleted)")), nil
	}
	out, err := exec.Command("ps", "-o", "uid=,comm=", "-p", strconv.Itoa(pid)).Output()
	if err != nil {
		return 0, "", err
	}
	fields := strings.Fields(string(out))
	if len(fields) < 2 {
		return 0, "", fmt.Errorf("ps printed %q", out)
	}
	uid, err = strconv.Atoi(fields[0])
	return uid, filepath.Base(strings.Join(fields[1:], " ")), err
}
