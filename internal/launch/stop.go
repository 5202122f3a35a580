package launch

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
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
