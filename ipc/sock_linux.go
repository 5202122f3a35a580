package ipc

import (
	"os"
	"strconv"
	"syscall"
)

// canSpin reports whether spin can yield the processor between tries.
const canSpin = true

// socket returns a new Unix stream socket, closed on exec.
func socket() (int, error) {
	return syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
}

// yield gives the processor to another thread that wants it, if any.
func yield() { _, _, _ = syscall.RawSyscall(syscall.SYS_SCHED_YIELD, 0, 0, 0) }

// oPath is O_PATH, which package syscall lacks: an open file that only
// names an inode (every architecture Go runs Linux on has this value).
const oPath = 0x200000

func socketAddr(path string) (string, func(), error) {
	fd, err := syscall.Open(path, oPath|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, os.NewSyscallError("open", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		syscall.Close(fd)
		return "", nil, os.NewSyscallError("fstat", err)
	}
	if err := checkSocket(path, &st); err != nil {
		syscall.Close(fd)
		return "", nil, err
	}
	return "/proc/self/fd/" + strconv.Itoa(fd), func() { syscall.Close(fd) }, nil
}
