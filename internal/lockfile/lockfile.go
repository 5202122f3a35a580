// Package lockfile takes exclusive advisory locks on files, to serialise
// work between processes (two shells starting an agent at once, two agents
// binding one socket).
//
// The locks are flock(2) locks: they belong to the open file, so the kernel
// drops them when the process dies and a lock can never be left stale.
// Two Locks of one path exclude each other within a process too.
package lockfile

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// Lock takes an exclusive lock on the file at path, creating it (mode 0600)
// if it is missing, and waits until it gets it. It returns the function
// that releases the lock; call it once. The file stays in place: removing
// it would let a later Lock lock a new file while an earlier one still
// holds the old.
func Lock(path string) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening lock file: %w", err)
	}
	if err := flock(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}

// flock waits for an exclusive lock on f. A signal delivered while it
// waits interrupts the call (EINTR); it waits again.
func flock(f *os.File) error {
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
