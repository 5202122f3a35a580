package wire

import (
	"errors"
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
		perr := &os.PathError{Op: "lstat", Path: dir, Err: err}
		return wrap("checking socket directory: "+perr.Error(), perr)
	}
	uid := os.Getuid()
	perm := os.FileMode(st.Mode & 0o777)
	switch {
	case st.Mode&syscall.S_IFMT != syscall.S_IFDIR:
		return errors.New("socket directory " + dir + " is not a directory (mode " + fileMode(st.Mode).String() + "); remove it or set TAPIS_AGENT_SOCK")
	case int(st.Uid) != uid:
		return errors.New("socket directory " + dir + " is owned by uid " + strconv.FormatUint(uint64(st.Uid), 10) + " (mode " + octal4(perm) + "), not by you (uid " + strconv.Itoa(uid) + "); remove it or set TAPIS_AGENT_SOCK to a path in a directory of yours")
	case perm&0o077 != 0:
		return errors.New("socket directory " + dir + " has mode " + octal4(perm) + ", open to other users; run: chmod 0700 " + dir)
	}
	return nil
}

// octal4 writes a permission as four octal digits, as %04o does.
func octal4(perm os.FileMode) string {
	s := strconv.FormatUint(uint64(perm), 8)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// fileMode is the os.FileMode of a stat(2) mode, for messages: from a
// Stat_t rather than an os.FileInfo, whose methods would bring time's
// formatting into tapis-token.
func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	switch m & syscall.S_IFMT {
	case syscall.S_IFDIR:
		mode |= os.ModeDir
	case syscall.S_IFLNK:
		mode |= os.ModeSymlink
	case syscall.S_IFSOCK:
		mode |= os.ModeSocket
	case syscall.S_IFIFO:
		mode |= os.ModeNamedPipe
	case syscall.S_IFCHR:
		mode |= os.ModeDevice | os.ModeCharDevice
	case syscall.S_IFBLK:
		mode |= os.ModeDevice
	}
	return mode
}
