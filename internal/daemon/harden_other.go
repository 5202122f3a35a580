//go:build unix && !linux && !darwin && !freebsd

package daemon

import "golang.org/x/sys/unix"

// harden makes files created private and forbids core dumps. On this
// system the agent neither blocks tracing nor locks its memory.
func harden() (warnings []string) {
	unix.Umask(0o077)
	warnings = appendWarning(warnings, noCoreDumps())
	return append(warnings, "ptrace and swap are not prevented on this system")
}
