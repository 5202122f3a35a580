package daemon

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// harden shields the secrets in the agent's memory with what macOS
// offers: no core dumps, no debugger or ptrace attach (PT_DENY_ATTACH,
// which also keeps lldb out), files created private. macOS cannot lock a
// process's memory (it has no working mlockall), so the agent says so;
// macOS encrypts its swap, which is what keeps swapped-out tokens safe
// there.
func harden() (warnings []string) {
	unix.Umask(0o077)
	warnings = appendWarning(warnings, noCoreDumps())
	if err := unix.PtraceDenyAttach(); err != nil {
		warnings = append(warnings, fmt.Sprintf("denying debugger attach (PT_DENY_ATTACH): %v", err))
	}
	return append(warnings, "memory not locked against swap: macOS cannot lock it; it relies on macOS's encrypted swap")
}
