//go:build linux

package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
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
