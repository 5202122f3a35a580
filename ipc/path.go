package ipc

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
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
// $TAPIS_AGENT_SOCK: $XDG_RUNTIME_DIR/tapis-agent/agent.sock, else on
// macOS ~/Library/Application Support/tapis-agent/agent.sock, else
// /tmp/tapis-agent-$UID/agent.sock.
func DefaultSocketPath() string {
	return defaultSocketPath(runtime.GOOS, os.Getenv("XDG_RUNTIME_DIR"), os.Getenv("HOME"), os.Getuid())
}

// defaultSocketPath is DefaultSocketPath on the system goos.
//
// Elsewhere than on macOS the socket is never under $HOME, which on HPC
// systems is an NFS share seen by every login node; /tmp is local, and the
// per-user directory in it is checked before it is trusted (CheckDir).
// macOS has no $XDG_RUNTIME_DIR, its /tmp is shared by every user, and its
// $TMPDIR is set in a graphical session but not in an ssh login, so the
// agent and a client could disagree on it; a Mac's home is on its own
// disk, and ~/Library/Application Support is where macOS keeps a user's
// per-program files, never cleaned by the system (unlike ~/Library/Caches
// and $TMPDIR, whose old files it removes).
func defaultSocketPath(goos, runtimeDir, home string, uid int) string {
	if runtimeDir != "" {
		return filepath.Join(runtimeDir, "tapis-agent", "agent.sock")
	}
	if goos == "darwin" && filepath.IsAbs(home) {
		return filepath.Join(home, "Library", "Application Support", "tapis-agent", "agent.sock")
	}
	return filepath.Join("/tmp", "tapis-agent-"+strconv.Itoa(uid), "agent.sock")
}

// MakeDir creates the socket directory dir (0700) if it is missing, and
// then checks it with CheckDir. It refuses to make it under a directory
// that others may write without the sticky bit, or that another user owns
// (see CheckPath): they could replace the directory, socket and all.
func MakeDir(dir string) error {
	if err := checkAncestors(dir, true); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return wrap("creating socket directory: "+err.Error(), err)
	}
	return CheckDir(dir)
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
	mode := uint32(st.Mode) // uint16 on some systems
	perm := mode & 0o777
	switch {
	case mode&syscall.S_IFMT != syscall.S_IFDIR:
		return errors.New("socket directory " + dir + " is not a directory (" + fileType(mode) + "); remove it or set TAPIS_AGENT_SOCK")
	case int(st.Uid) != uid:
		// Another user made it first (it is in /tmp, say): the user
		// cannot remove it, but can go elsewhere.
		return wrap("socket directory "+dir+" is owned by uid "+strconv.FormatUint(uint64(st.Uid), 10)+" (mode "+octal4(perm)+"), not by you (uid "+strconv.Itoa(uid)+"); "+privatePlace, ErrNotYourAgent)
	case perm&0o077 != 0:
		return errors.New("socket directory " + dir + " has mode " + octal4(perm) + ", open to other users; run: chmod 0700 " + dir)
	}
	return nil
}

// octal4 writes a permission as four octal digits, as %04o does.
func octal4(perm uint32) string {
	s := strconv.FormatUint(uint64(perm), 8)
	for len(s) < 4 {
		s = "0" + s
	}
	return s
}

// fileType names the type of a stat(2) mode that is not a directory, for
// messages.
func fileType(mode uint32) string {
	switch mode & syscall.S_IFMT {
	case syscall.S_IFLNK:
		return "a symlink"
	case syscall.S_IFSOCK:
		return "a socket"
	case syscall.S_IFIFO:
		return "a named pipe"
	case syscall.S_IFCHR, syscall.S_IFBLK:
		return "a device"
	}
	return "a file"
}

// wrapError is an error with its own message that wraps errs, as
// fmt.Errorf with %w verbs makes one. Package fmt stays out of
// tapis-token: the code a program links, used or not, adds to its start.
type wrapError struct {
	msg  string
	errs []error
}

func (e *wrapError) Error() string   { return e.msg }
func (e *wrapError) Unwrap() []error { return e.errs }

// wrap returns an error with message msg that wraps errs.
func wrap(msg string, errs ...error) error { return &wrapError{msg: msg, errs: errs} }
