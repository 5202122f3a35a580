//go:build linux

package daemon

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestHasCapIPCLock compares capget's answer with the kernel's other
// account of the effective capabilities, CapEff in /proc/self/status.
func TestHasCapIPCLock(t *testing.T) {
	const capIPCLock = 14
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var eff uint64
	found := false
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "CapEff:"); ok {
			if eff, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				t.Fatal(err)
			}
			found = true
		}
	}
	if !found {
		t.Fatal("/proc/self/status has no CapEff")
	}
	want := eff&(1<<capIPCLock) != 0
	if got := hasCapIPCLock(); got != want {
		t.Errorf("hasCapIPCLock() = %v; want %v (CapEff %016x)", got, want, eff)
	}
}

// TestHarden runs harden in a child process, which it changes for good,
// and reads back what the child reports.
func TestHarden(t *testing.T) {
	if os.Getenv("TAPIS_AGENT_HARDEN_CHILD") == "1" {
		warnings := harden()
		dumpable, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var core unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_CORE, &core); err != nil {
			t.Fatal(err)
		}
		umask := unix.Umask(0)
		t.Logf("dumpable=%d core=%d/%d umask=%04o warnings=%q", dumpable, core.Cur, core.Max, umask, warnings)
		if dumpable != 0 {
			t.Errorf("dumpable = %d; want 0", dumpable)
		}
		if core.Cur != 0 || core.Max != 0 {
			t.Errorf("RLIMIT_CORE = %d/%d; want 0/0", core.Cur, core.Max)
		}
		if umask != 0o077 {
			t.Errorf("umask = %04o; want 0077", umask)
		}
		if hasCapIPCLock() && len(warnings) != 0 {
			t.Errorf("harden with CAP_IPC_LOCK warned %q; want nothing (it may lock memory)", warnings)
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHarden$", "-test.v")
	cmd.Env = append(os.Environ(), "TAPIS_AGENT_HARDEN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("hardened child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "dumpable=0 core=0/0 umask=0077") {
		t.Errorf("hardened child reported:\n%s", out)
	}
}
