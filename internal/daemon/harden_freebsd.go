package daemon

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procctl(2)'s id type, command and argument for "no tracing".
const (
	pPID                = 0 // P_PID
	procTraceCtl        = 7 // PROC_TRACE_CTL
	procTraceCtlDisable = 2 // PROC_TRACE_CTL_DISABLE
)

// harden shields the secrets in the agent's memory with what FreeBSD
// offers: no core dumps, no ptrace or procfs access by other processes
// (PROC_TRACE_CTL_DISABLE), files created private. Memory is not locked:
// with MCL_FUTURE a later mapping over RLIMIT_MEMLOCK would fail, which
// the Go runtime takes for out of memory; the agent says so.
func harden() (warnings []string) {
	unix.Umask(0o077)
	warnings = appendWarning(warnings, noCoreDumps())
	arg := int32(procTraceCtlDisable)
	if _, _, e := unix.Syscall6(unix.SYS_PROCCTL, pPID, uintptr(os.Getpid()), procTraceCtl, uintptr(unsafe.Pointer(&arg)), 0, 0); e != 0 {
		warnings = append(warnings, fmt.Sprintf("disabling tracing (procctl PROC_TRACE_CTL): %v", e))
	}
	return append(warnings, "memory not locked against swap on FreeBSD; use encrypted swap (geli) to keep tokens off the disk in clear")
}
