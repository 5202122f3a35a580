//go:build unix && !linux && !darwin && !freebsd

package ipc

import "errors"

func peerCred(int) (uid, pid int, err error) {
	return 0, 0, errors.New("peer credentials are not supported on this system")
}
