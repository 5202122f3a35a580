package daemon

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/tapis-agent/tapis-agent/internal/lockfile"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// Listen returns the listener the daemon serves: the socket systemd passed
// (socket activation), else a new one at path made by listenPath. It
// reports whether systemd passed it. Then it may lie at another path than
// path, which is logged to log (if not nil) as socket_activated:
// ln.Addr().String() is the path to serve and report. And systemd owns the
// file: closing the listener leaves it in place.
//
// systemd must pass one stream socket with a path (ListenStream=/path in
// tapis-agent.socket); anything else is refused and closed.
func Listen(path string, log *slog.Logger) (ln net.Listener, activated bool, err error) {
	lns, err := activation.Listeners()
	if err != nil {
		return nil, false, fmt.Errorf("taking the sockets systemd passed: %w", err)
	}
	switch len(lns) {
	case 0:
		ln, err := listenPath(path)
		return ln, false, err
	case 1:
		if ul, ok := lns[0].(*net.UnixListener); ok {
			if p := ul.Addr().String(); p != path && log != nil {
				log.Info("socket_activated", "socket", p, "ignored", path)
			}
			return ul, true, nil
		}
		if lns[0] != nil {
			lns[0].Close()
			return nil, false, fmt.Errorf("systemd passed a %s socket; tapis-agent.socket needs ListenStream= with a path", lns[0].Addr().Network())
		}
		return nil, false, fmt.Errorf("systemd passed a socket that is not a stream socket; tapis-agent.socket needs ListenStream= with a path")
	default:
		for _, l := range lns {
			if l != nil {
				l.Close()
			}
		}
		return nil, false, fmt.Errorf("systemd passed %d sockets; tapis-agent.socket must have exactly one ListenStream=", len(lns))
	}
}

// ErrAgentRunning is wrapped by Listen's error when a live agent already
// answers on the socket path.
var ErrAgentRunning = errors.New("an agent is already running")

// listenPath creates the agent's socket at path. It creates the directory
// (0700) if needed and refuses one that fails ipc.CheckDir; refuses if a
// live agent answers on path (ErrAgentRunning); removes a stale socket left
// by a dead agent; and makes the socket 0600. Closing the returned listener
// removes the socket file.
func listenPath(path string) (net.Listener, error) {
	if err := ipc.MakeDir(filepath.Dir(path)); err != nil {
		return nil, err
	}
	// Two agents starting at once could each find the socket stale, and
	// one remove the socket the other just made. The probe, removal and
	// bind happen under a lock; it goes with the process if it dies.
	unlock, err := lockfile.Lock(path + ".listen.lock")
	if err != nil {
		return nil, err
	}
	defer unlock()
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("checking socket %s: %w", path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return nil, fmt.Errorf("%s exists and is not a socket (mode %v); remove it", path, fi.Mode())
	default:
		// A socket file outlives a crashed agent. Only a refused
		// connection proves nobody listens; then the file is stale and
		// may go. Anything that accepts is live, agent or not.
		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("listening on %s: %w", path, ErrAgentRunning)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("probing existing socket %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listening on socket: %w", err)
	}
	// The directory is 0700 already; the socket mode is a second fence for
	// a directory someone loosens later.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, fmt.Errorf("setting socket mode: %w", err)
	}
	return ln, nil
}
