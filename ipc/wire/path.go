package wire

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// SocketPath returns the agent socket path: $TAPIS_AGENT_SOCK if set, else
// DefaultSocketPath.
func SocketPath() string {
	if p := os.Getenv("TAPIS_AGENT_SOCK"); p != "" {
		return p
	}
	return DefaultSocketPath()
}

// DefaultSocketPath returns the well-known socket path, ignoring
// $TAPIS_AGENT_SOCK: $XDG_RUNTIME_DIR/tapis-agent/agent.sock, else
// /tmp/tapis-agent-$UID/agent.sock. It is never under $HOME, which on HPC
// systems is an NFS share seen by every login node.
func DefaultSocketPath() string {
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "tapis-agent", "agent.sock")
	}
	return filepath.Join("/tmp", "tapis-agent-"+strconv.Itoa(os.Getuid()), "agent.sock")
}

// CheckDir reports an error unless dir is a directory (not a symlink) owned
// by the current user with no group or other permission bits, as tmux
// requires of its socket directory. Anyone who can write to the directory
// could replace the socket and collect the passwords sent to "the agent".
// The error names the directory, what is wrong and what to do.
func CheckDir(dir string) error {
	// syscall.Lstat rather than os.Lstat: tapis-token checks on every
	// call, and needs none of os.FileInfo.
	var st syscall.Stat_t
	if err := syscall.Lstat(dir, &st); err != nil {
		return fmt.Errorf("checking socket directory: %w", &os.PathError{Op: "lstat", Path: dir, Err: err})
	}
	uid := os.Getuid()
	perm := os.FileMode(st.Mode & 0o777)
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
		var mode os.FileMode
		if fi, err := os.Lstat(dir); err == nil {
			mode = fi.Mode()
		}
		return fmt.Errorf("socket directory %s is not a directory (mode %v); remove it or set TAPIS_AGENT_SOCK", dir, mode)
	case int(st.Uid) != uid:
		return fmt.Errorf("socket directory %s is owned by uid %d (mode %04o), not by you (uid %d); remove it or set TAPIS_AGENT_SOCK to a path in a directory of yours", dir, st.Uid, perm, uid)
	case perm&0o077 != 0:
		return fmt.Errorf("socket directory %s has mode %04o, open to other users; run: chmod 0700 %s", dir, perm, dir)
	}
	return nil
}
