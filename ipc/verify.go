package ipc

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// ErrNotYourAgent is wrapped, with ErrAgentUnreachable, by the error of a
// call refused before anything was sent because the socket, or the process
// serving it, belongs to another user: a socket swapped in by someone who
// wants the passwords and tokens sent to "the agent".
var ErrNotYourAgent = errors.New("the socket is not your agent's")

// CheckPath reports an error unless the socket at path may be trusted
// before it is connected: its directory passes CheckDir, and every
// directory above it is owned by the user or root and, unless sticky (as
// /tmp is), writable by no one else, as ssh and tmux require. Anyone who
// could write one of them could put another socket in the agent's place.
// A symlink on the way must be the user's or root's, and lead to a
// directory that passes the same test.
//
// Whoever checks the path still checks the peer after connecting (see
// CheckPeer): a path cannot be checked and then connected in one step.
func CheckPath(path string) error {
	dir := filepath.Dir(path)
	if err := CheckDir(dir); err != nil {
		return err
	}
	return checkAncestors(dir, false)
}

// checkAncestors checks the directories above dir (see CheckPath). With
// missingOK, those that do not exist yet are skipped: the agent checks
// before it makes its socket directory.
func checkAncestors(dir string, missingOK bool) error {
	if !filepath.IsAbs(dir) {
		// syscall.Getwd, not os.Getwd, whose os.FileInfo would bring
		// time's formatting into tapis-token.
		wd, err := syscall.Getwd()
		if err != nil {
			return wrap("checking socket directory "+dir+": "+err.Error(), err)
		}
		dir = filepath.Join(wd, dir)
	}
	uid := os.Getuid()
	for d := filepath.Dir(dir); ; d = filepath.Dir(d) {
		var st syscall.Stat_t
		err := syscall.Lstat(d, &st)
		if err == syscall.ENOENT && missingOK {
			continue
		}
		if err != nil {
			perr := &os.PathError{Op: "lstat", Path: d, Err: err}
			return wrap("checking the directories above the socket: "+perr.Error(), perr)
		}
		if err := checkAncestor(d, &st, uid); err != nil {
			return err
		}
		if uint32(st.Mode)&syscall.S_IFMT == syscall.S_IFLNK {
			// The link is the owner's to re-point: it is checked above;
			// where it leads is checked here.
			if err := syscall.Stat(d, &st); err != nil {
				perr := &os.PathError{Op: "stat", Path: d, Err: err}
				return wrap("checking the directories above the socket: "+perr.Error(), perr)
			}
			if err := checkAncestor(d, &st, uid); err != nil {
				return err
			}
		}
		if d == "/" || d == "." {
			return nil
		}
	}
}

// checkAncestor checks one directory above the socket's, or a symlink.
func checkAncestor(d string, st *syscall.Stat_t, uid int) error {
	mode := uint32(st.Mode)
	if int(st.Uid) != uid && st.Uid != 0 {
		return wrap("directory "+d+" above the socket is owned by uid "+strconv.FormatUint(uint64(st.Uid), 10)+
			", neither you (uid "+strconv.Itoa(uid)+") nor root: its owner could put another socket in the agent's place; "+
			privatePlace, ErrNotYourAgent)
	}
	if mode&syscall.S_IFMT == syscall.S_IFDIR && mode&0o022 != 0 && mode&syscall.S_ISVTX == 0 {
		return wrap("directory "+d+" above the socket has mode "+octal4(mode&0o7777)+
			": others may write it, and it is not sticky (as /tmp is), so they could put another socket in the agent's place; "+
			privatePlace, ErrNotYourAgent)
	}
	return nil
}

// privatePlace says what to do about a socket path others control.
const privatePlace = "set TAPIS_AGENT_SOCK (or XDG_RUNTIME_DIR) to a place only you can write"

// CheckPeer reports an error unless the process at the other end of the
// connected socket fd runs as the user: the agent, not an impostor. It
// must pass before any password or token is written to fd.
func CheckPeer(fd int, path string) error {
	uid, _, err := PeerCred(fd)
	if err != nil {
		return wrap("refusing the socket "+path+": cannot tell who serves it ("+err.Error()+"); nothing was sent", ErrNotYourAgent, err)
	}
	if me := os.Getuid(); uid != me {
		return wrap("refusing the socket "+path+": it is served by uid "+strconv.Itoa(uid)+", not by you (uid "+strconv.Itoa(me)+
			"), so it is not your agent; nothing was sent", ErrNotYourAgent)
	}
	return nil
}

// checkSocket checks what lies at path itself: a socket, not a symlink,
// the user's own.
func checkSocket(path string, st *syscall.Stat_t) error {
	mode := uint32(st.Mode)
	switch {
	case mode&syscall.S_IFMT == syscall.S_IFLNK:
		return wrap("refusing "+path+": it is a symlink, not the agent's socket; nothing was sent; "+privatePlace, ErrNotYourAgent)
	case mode&syscall.S_IFMT != syscall.S_IFSOCK:
		return wrap(path+" is "+fileType(mode)+", not the agent's socket", syscall.ECONNREFUSED)
	case int(st.Uid) != os.Getuid():
		return wrap("refusing the socket "+path+": it is owned by uid "+strconv.FormatUint(uint64(st.Uid), 10)+
			", not by you; nothing was sent; "+privatePlace, ErrNotYourAgent)
	}
	return nil
}

// SocketAddr returns the address to connect to for the socket at path,
// which it opens without following a symlink in its last component and
// checks (a socket, the user's own), and a function to call once the
// connection is made. Where the system can connect through an open file
// (Linux's /proc/self/fd), the address is that file: what was checked is
// what is connected. Elsewhere it is path, checked just before. When a
// connection to an address other than path fails with ENOENT (/proc is
// not mounted), connect to path instead.
func SocketAddr(path string) (addr string, done func(), err error) {
	return socketAddr(path)
}
