package ipc

import "syscall"

// canSpin reports whether spin can yield the processor between tries.
const canSpin = true

// socket returns a new Unix stream socket, closed on exec.
func socket() (int, error) {
	return syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}

// yield gives the processor to another thread that wants it, if any.
func yield() { _, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }
