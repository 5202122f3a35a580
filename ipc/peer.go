package ipc

// PeerCred returns the user and process ids of the process at the other
// end of the connected Unix socket fd, as the kernel recorded them when
// the connection was made, not as they are now: on Linux SO_PEERCRED, on
// macOS and FreeBSD LOCAL_PEERCRED. pid is -1 where the system does not
// tell it (FreeBSD before 13). Elsewhere it returns an error, and a caller
// that checks its peer must then refuse it.
//
// It serves both ends: the agent refuses a peer of another user, and a
// client can check that the agent it reached runs as the user it expects.
func PeerCred(fd int) (uid, pid int, err error) {
	uid, pid, err = peerCred(fd)
	if err != nil {
		return -1, -1, wrap("reading peer credentials: "+err.Error(), err)
	}
	return uid, pid, nil
}
