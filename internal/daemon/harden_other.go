//go:build !linux

package daemon

import "syscall"

// harden makes files created private. Elsewhere than on Linux the agent
// does not clear its dumpable flag or lock its memory.
func harden() (warnings []string) {
	syscall.Umask(0o077)
	return []string{"core dumps and swap are not prevented on this system"}
}
