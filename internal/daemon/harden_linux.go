//go:build linux

package daemon

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// memlockHeadroom is what the agent may still map after mlockall: with
// MCL_FUTURE every later mapping is locked too, and one that exceeds
// RLIMIT_MEMLOCK fails — the Go runtime treats that as out of memory and
// crashes. So memory is locked only when the limit leaves this much room.
const memlockHeadroom = 512 << 20

// harden shields the secrets in the agent's memory: no core dumps, no
// ptrace or /proc/PID/mem by other processes of the user (PR_SET_DUMPABLE
// also makes /proc/PID root-owned), files created private, and memory
// locked against swap where the limits allow. It returns warnings for what
// it could not do; none of them stops the agent.
func harden() (warnings []string) {
	unix.Umask(0o077)
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		warnings = append(warnings, fmt.Sprintf("clearing the dumpable flag: %v", err))
	}
	warnings = appendWarning(warnings, noCoreDumps())
	return appendWarning(warnings, lockMemory())
}

// lockMemory locks the agent's memory so that tokens never reach swap. It
// returns a warning, or "" when memory is locked.
func lockMemory() string {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &lim); err != nil {
		return fmt.Sprintf("reading RLIMIT_MEMLOCK: %v; memory not locked", err)
	}
	// CAP_IPC_LOCK lifts the limit. Root usually has it, but not always (a
	// container may drop it), and others may be granted it (AmbientCapabilities=).
	if lim.Cur != unix.RLIM_INFINITY && !hasCapIPCLock() {
		size := vmSize()
		if need := size + memlockHeadroom; size == 0 || lim.Cur < need {
			return fmt.Sprintf("memory not locked: RLIMIT_MEMLOCK is %s, and the agent needs %s; %s; %s",
				kib(lim.Cur), kib(need), swapRisk(), memlockFix(lim, need))
		}
	}
	// MCL_ONFAULT locks pages as they are touched instead of faulting in
	// every mapping at once: the runtime's reservations stay virtual.
	err := unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE | unix.MCL_ONFAULT)
	if err == unix.EINVAL {
		// Kernels before 4.4 know no MCL_ONFAULT.
		err = unix.Mlockall(unix.MCL_CURRENT | unix.MCL_FUTURE)
	}
	if err != nil {
		return fmt.Sprintf("memory not locked: mlockall: %v; %s", err, swapRisk())
	}
	return ""
}

// kib renders a limit in KiB, or "unlimited".
func kib(n uint64) string {
	if n == unix.RLIM_INFINITY {
		return "unlimited"
	}
	return strconv.FormatUint(n>>10, 10) + " KiB"
}

// swapRisk says what is at risk while memory is not locked: with swap
// active, the kernel may write the agent's memory, refresh tokens
// included, to disk; without, nothing is, until swap is added.
func swapRisk() string {
	b, err := os.ReadFile("/proc/swaps")
	if err != nil {
		return "the kernel may write the refresh tokens to swap, where they outlive the agent"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) < 2 { // the header only
		return "no swap is active now, so nothing is written to disk unless swap is added"
	}
	return "swap is active (" + strings.Fields(lines[1])[0] + "), so the kernel may write the refresh tokens to it, where they outlive the agent"
}

// memlockFix says how the limit is raised: by the user up to the hard
// limit, beyond it only by an administrator. The agent works either way.
func memlockFix(lim unix.Rlimit, need uint64) string {
	if lim.Max == unix.RLIM_INFINITY || lim.Max >= need {
		n := "unlimited"
		if lim.Max != unix.RLIM_INFINITY {
			n = strconv.FormatUint(lim.Max>>10, 10)
		}
		return "raise it before starting the agent: ulimit -l " + n + " (or LimitMEMLOCK= in its systemd unit)"
	}
	return "the hard limit is " + kib(lim.Max) + ", which only an administrator can raise " +
		"(memlock in /etc/security/limits.conf, or DefaultLimitMEMLOCK= for systemd user services); the agent works without it"
}

// hasCapIPCLock reports whether CAP_IPC_LOCK is in the process's effective
// capabilities: then mlock is not bound by RLIMIT_MEMLOCK.
func hasCapIPCLock() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData // version 3 has two 32-bit words per set
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[unix.CAP_IPC_LOCK/32].Effective&(1<<(unix.CAP_IPC_LOCK%32)) != 0
}

// vmSize returns the size of the process's mappings in bytes, or 0.
func vmSize() uint64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
