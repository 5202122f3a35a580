package ipc

import "unsafe"

// xucred is struct xucred of FreeBSD's sys/ucred.h; FreeBSD 13 and later
// fill in pid, earlier versions leave it 0.
type xucred struct {
	_   uint32 // version, which getXucred checks
	uid uint32
	_   int16      // ngroups
	_   [16]uint32 // groups
	pid uintptr    // a union with a pointer: pointer-sized and aligned
}

func peerCred(fd int) (uid, pid int, err error) {
	var cred xucred
	if err := getXucred(fd, unsafe.Pointer(&cred), unsafe.Sizeof(cred)); err != nil {
		return 0, 0, err
	}
	pid = int(*(*int32)(unsafe.Pointer(&cred.pid))) // pid_t, at the union's start
	if pid <= 0 {
		pid = -1
	}
	return int(cred.uid), pid, nil
}
