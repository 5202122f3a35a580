package ipc

import (
	"os"
	"syscall"
	"testing"
)

func TestPeerCred(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Close(fds[0])
	defer syscall.Close(fds[1])
	uid, pid, err := PeerCred(fds[0])
	if err != nil {
		t.Fatalf("PeerCred(socketpair) error: %v", err)
	}
	if uid != os.Getuid() {
		t.Errorf("PeerCred(socketpair) uid = %d; want %d", uid, os.Getuid())
	}
	if pid != os.Getpid() && pid != -1 {
		t.Errorf("PeerCred(socketpair) pid = %d; want %d or -1", pid, os.Getpid())
	}

	f, err := os.CreateTemp(t.TempDir(), "file")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if uid, pid, err := PeerCred(int(f.Fd())); err == nil || uid != -1 || pid != -1 {
		t.Errorf("PeerCred(regular file) = %d, %d, %v; want -1, -1 and an error", uid, pid, err)
	}
}
