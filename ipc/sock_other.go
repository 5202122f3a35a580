//go:build unix && !linux

package ipc

import (
	"os"
	"syscall"
)

// canSpin reports whether spin can yield the processor between tries:
// package syscall offers no sched_yield here, so the first read sleeps.
const canSpin = false

// socket returns a new Unix stream socket, closed on exec.
func socket() (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	fd, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err == nil {
		syscall.CloseOnExec(fd)
	}
	return fd, err
}

func yield() {}

func socketAddr(path string) (string, func(), error) {
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return "", nil, os.NewSyscallError("lstat", err)
	}
	if err := checkSocket(path, &st); err != nil {
		return "", nil, err
	}
	return path, func() {}, nil
}
