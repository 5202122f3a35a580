package ipc

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestHostRecords(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "agents")
	a := HostRecord{Host: "login1", Socket: "/run/user/1/tapis-agent/agent.sock", PID: 11}
	b := HostRecord{Host: "login2", Socket: "/tmp/tapis-agent-1/agent.sock", PID: 22}
	for _, r := range []HostRecord{a, b} {
		if err := WriteHostRecord(dir, r); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("records directory: %v, %v; want mode 0700", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "login1")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("record: %v, %v; want mode 0600", fi, err)
	}
	got, err := ReadHostRecord(filepath.Join(dir, "login2"))
	if err != nil || *got != b {
		t.Errorf("ReadHostRecord = %+v, %v; want %+v", got, err, b)
	}
	// Files that are no records are not hosts.
	os.WriteFile(filepath.Join(dir, ".login3.tmp-1"), nil, 0o600)
	os.Mkdir(filepath.Join(dir, "subdir"), 0o700)
	cases := []struct {
		self string
		want []string
	}{
		{"login1", []string{"login2"}},
		{"login2", []string{"login1"}},
		{"c401-001", []string{"login1", "login2"}},
	}
	for _, tc := range cases {
		if got := OtherAgentHosts(dir, tc.self); !slices.Equal(got, tc.want) {
			t.Errorf("OtherAgentHosts(%s) = %q; want %q", tc.self, got, tc.want)
		}
	}
	if got := OtherAgentHosts(filepath.Join(dir, "missing"), "x"); got != nil {
		t.Errorf("OtherAgentHosts of a missing directory = %q; want none", got)
	}

	// An agent that started later on the same host replaced the record:
	// the first one's exit leaves it.
	a2 := a
	a2.PID = 33
	if err := WriteHostRecord(dir, a2); err != nil {
		t.Fatal(err)
	}
	if RemoveHostRecord(dir, a) {
		t.Errorf("RemoveHostRecord removed the record of a later agent")
	}
	if !RemoveHostRecord(dir, a2) {
		t.Errorf("RemoveHostRecord left the agent's own record")
	}
	if got := OtherAgentHosts(dir, "x"); !slices.Equal(got, []string{"login2"}) {
		t.Errorf("after the removal: %q; want login2 alone", got)
	}
	if err := WriteHostRecord(dir, HostRecord{Host: "../etc"}); err == nil {
		t.Errorf("WriteHostRecord took a host name with a slash")
	}

	// A named pipe put in the record's place is left, at once: the
	// agent removes its record as it stops.
	c := HostRecord{Host: "login3", Socket: "/tmp/s", PID: 44}
	if err := syscall.Mkfifo(filepath.Join(dir, c.Host), 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan bool, 1)
	go func() { done <- RemoveHostRecord(dir, c) }()
	select {
	case removed := <-done:
		if removed {
			t.Errorf("RemoveHostRecord removed a named pipe")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("RemoveHostRecord blocked on a named pipe")
	}
	if _, err := ReadHostRecord(filepath.Join(dir, c.Host)); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("ReadHostRecord of a named pipe: %v; want not a regular file", err)
	}
}
