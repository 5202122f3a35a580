//go:build darwin || freebsd

package ipcserver

import "golang.org/x/sys/unix"

// peerCred returns the uid of the process at the other end of the Unix
// socket fd, as it was when it connected (LOCAL_PEERCRED), and -1 for its
// pid, which the log only names.
func peerCred(fd int) (uid, pid int, err error) {
	cred, err := unix.GetsockoptXucred(fd, unix.SOL_LOCAL, unix.LOCAL_PEERCRED)
	if err != nil {
		return 0, 0, err
	}
	return int(cred.Uid), -1, nil
}
