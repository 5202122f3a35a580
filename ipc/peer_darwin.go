package ipc

import (
	"syscall"
	"unsafe"
)

// localPeerPID is LOCAL_PEERPID of sys/un.h.
const localPeerPID = 2

// xucred is struct xucred of macOS's sys/ucred.h.
type xucred struct {
	_   uint32 // version, which getXucred checks
	uid uint32
	_   int16      // ngroups
	_   [16]uint32 // groups
}

func peerCred(fd int) (uid, pid int, err error) {
	var cred xucred
	if err := getXucred(fd, unsafe.Pointer(&cred), unsafe.Sizeof(cred)); err != nil {
		return 0, 0, err
	}
	pid, err = syscall.GetsockoptInt(fd, solLocal, localPeerPID)
	if err != nil || pid <= 0 {
		pid = -1 // the uid decides; the pid is for the log
	}
	return int(cred.uid), pid, nil
}
