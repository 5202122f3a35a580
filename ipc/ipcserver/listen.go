package ipcserver

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/internal/lockfile"
	"github.com/tapis-agent/tapis-agent/ipc"
)

// ErrAgentRunning is wrapped by Listen's error when a live agent already
// answers on the socket path.
var ErrAgentRunning = errors.New("an agent is already running")

// Listen creates the agent's socket at path. It creates the directory
// (0700) if needed and refuses one that fails ipc.CheckDir; refuses if a
// live agent answers on path (ErrAgentRunning); removes a stale socket left
// by a dead agent; and makes the socket 0600. Closing the returned listener
// removes the socket file.
func Listen(path string) (net.Listener, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating socket directory: %w", err)
	}
	if err := ipc.CheckDir(dir); err != nil {
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
