//go:build darwin || freebsd

package ipc

import (
	"errors"
	"strconv"
	"syscall"
	"unsafe"
)

// The level and option of a Unix socket's peer credentials, the same on
// macOS and FreeBSD (sys/un.h).
const (
	solLocal      = 0
	localPeerCred = 1
)

// xucredVersion is the only version of struct xucred there is.
const xucredVersion = 0

// getXucred reads the peer credentials of fd into cred, the system's
// struct xucred of size bytes, and checks its version. Package syscall has no getsockopt for a struct of any
// size, and golang.org/x/sys/unix, which has, stays out of tapis-token
// (see cmd/tapis-token's TestDeps): so this is the system call itself,
// which both systems have kept unchanged since the 1990s.
func getXucred(fd int, cred unsafe.Pointer, size uintptr) error {
	n := uint32(size)
	_, _, e := syscall.Syscall6(syscall.SYS_GETSOCKOPT, uintptr(fd), solLocal, localPeerCred, uintptr(cred), uintptr(unsafe.Pointer(&n)), 0)
	if e != 0 {
		return e
	}
	if n < 8 { // version and uid
		return errors.New("short xucred from getsockopt LOCAL_PEERCRED")
	}
	// Both systems' struct xucred start with its version.
	if v := *(*uint32)(cred); v != xucredVersion {
		return errors.New("unknown xucred version " + strconv.FormatUint(uint64(v), 10))
	}
	return nil
}
