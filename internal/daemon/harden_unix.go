//go:build unix

package daemon

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// noCoreDumps sets RLIMIT_CORE to 0, soft and hard, so that a crash
// writes no core file holding tokens. It returns a warning, or "".
func noCoreDumps() string {
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Sprintf("setting RLIMIT_CORE to 0: %v", err)
	}
	return ""
}

// appendWarning appends w to warnings unless it is "".
func appendWarning(warnings []string, w string) []string {
	if w == "" {
		return warnings
	}
	return append(warnings, w)
}
