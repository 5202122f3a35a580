package ipc

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestCheckPath: every directory above the socket's is the user's or
// root's, and writable by no one else unless sticky; symlinks on the way
// lead to such directories.
func TestCheckPath(t *testing.T) {
	base := t.TempDir()
	mk := func(rel string, mode os.FileMode) string {
		t.Helper()
		p := filepath.Join(base, rel)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	mk("open", 0o777)
	mk("open/private", 0o700)
	mk("sticky", 0o777|os.ModeSticky)
	mk("sticky/private", 0o700)
	mk("group", 0o775)
	mk("group/private", 0o700)
	if err := os.Symlink(filepath.Join(base, "sticky"), filepath.Join(base, "to-sticky")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(base, "open"), filepath.Join(base, "to-open")); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, dir string
		want      string // "" for no error
	}{
		{"sticky parent", "sticky/private", ""},
		{"symlink to a sticky parent", "to-sticky/private", ""},
		{"open parent", "open/private", "above the socket has mode 0777: others may write it, and it is not sticky"},
		{"group-writable parent", "group/private", "above the socket has mode 0775"},
		{"symlink to an open parent", "to-open/private", "to-open above the socket has mode 0777"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckPath(filepath.Join(base, tc.dir, "agent.sock"))
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("CheckPath = %v; want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrNotYourAgent)):
				t.Errorf("CheckPath = %v; want ErrNotYourAgent saying %q", err, tc.want)
			}
		})
	}
	// The agent makes no directory under an open one.
	if err := MakeDir(filepath.Join(base, "open", "new", "dir")); err == nil || !errors.Is(err, ErrNotYourAgent) {
		t.Errorf("MakeDir under an open directory = %v; want a refusal", err)
	}
	if _, err := os.Stat(filepath.Join(base, "open", "new")); !os.IsNotExist(err) {
		t.Errorf("MakeDir made a directory under an open one: %v", err)
	}
	if err := MakeDir(filepath.Join(base, "sticky", "new", "dir")); err != nil {
		t.Errorf("MakeDir under a sticky directory = %v; want nil", err)
	}

	if os.Getuid() != 0 {
		t.Log("not root: the check of another user's directory is not run")
		return
	}
	other := mk("other", 0o755)
	mk("other/private", 0o700)
	if err := os.Chown(other, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := CheckPath(filepath.Join(other, "private", "agent.sock")); err == nil || !strings.Contains(err.Error(), "is owned by uid 65534, neither you (uid 0) nor root") {
		t.Errorf("CheckPath under another user's directory = %v; want a refusal naming uid 65534", err)
	}
}

// TestSocketAddr: a symlink or anything but a socket at the socket path is
// refused before connecting; a socket is connected through what was
// checked, and its peer passes CheckPeer.
func TestSocketAddr(t *testing.T) {
	sock := testAgent(t, func(c net.Conn) { c.Close() })
	dir := filepath.Dir(sock)
	link, file := filepath.Join(dir, "link"), filepath.Join(dir, "file")
	if err := os.Symlink(sock, link); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := SocketAddr(link); !errors.Is(err, ErrNotYourAgent) || !strings.Contains(err.Error(), "is a symlink") {
		t.Errorf("SocketAddr(symlink) = %v; want a refusal", err)
	}
	if _, _, err := SocketAddr(file); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("SocketAddr(regular file) = %v; want ECONNREFUSED", err)
	}
	fd, err := dial(sock, 0)
	if err != nil {
		t.Fatalf("dial(socket) = %v", err)
	}
	defer syscall.Close(fd)
	if err := CheckPeer(fd, sock); err != nil {
		t.Errorf("CheckPeer of a socket of ours = %v; want nil", err)
	}
}
