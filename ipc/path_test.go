package ipc

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestSocketPath(t *testing.T) {
	// Without $XDG_RUNTIME_DIR, the system's own default.
	fallback := defaultSocketPath(runtime.GOOS, "", os.Getenv("HOME"), os.Getuid())
	cases := []struct {
		name, sock, xdg   string
		want, wantDefault string
	}{
		{"explicit", "/x/a.sock", "/run/user/1", "/x/a.sock", "/run/user/1/tapis-agent/agent.sock"},
		{"xdg", "", "/run/user/1", "/run/user/1/tapis-agent/agent.sock", "/run/user/1/tapis-agent/agent.sock"},
		{"fallback", "", "", fallback, fallback},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("TAPIS_AGENT_SOCK", tc.sock)
			t.Setenv("XDG_RUNTIME_DIR", tc.xdg)
			if got := SocketPath(); got != tc.want {
				t.Errorf("SocketPath() = %q; want %q", got, tc.want)
			}
			if got := DefaultSocketPath(); got != tc.wantDefault {
				t.Errorf("DefaultSocketPath() = %q; want %q", got, tc.wantDefault)
			}
		})
	}
}

func TestDefaultSocketPathBySystem(t *testing.T) {
	cases := []struct {
		goos, runtimeDir, home string
		want                   string
	}{
		{"linux", "/run/user/7", "/home/u", "/run/user/7/tapis-agent/agent.sock"},
		{"linux", "", "/home/u", "/tmp/tapis-agent-7/agent.sock"},
		{"freebsd", "", "/home/u", "/tmp/tapis-agent-7/agent.sock"},
		{"darwin", "", "/Users/u", "/Users/u/Library/Application Support/tapis-agent/agent.sock"},
		{"darwin", "/tmp/run", "/Users/u", "/tmp/run/tapis-agent/agent.sock"},
		{"darwin", "", "", "/tmp/tapis-agent-7/agent.sock"},
		{"darwin", "", "relative", "/tmp/tapis-agent-7/agent.sock"},
	}
	for _, tc := range cases {
		if got := defaultSocketPath(tc.goos, tc.runtimeDir, tc.home, 7); got != tc.want {
			t.Errorf("defaultSocketPath(%q, %q, %q, 7) = %q; want %q", tc.goos, tc.runtimeDir, tc.home, got, tc.want)
		}
	}
}

func TestCheckDir(t *testing.T) {
	root := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(root, name)
		if err := os.Mkdir(p, mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil { // umask-proof
			t.Fatal(err)
		}
		return p
	}
	file := filepath.Join(root, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(root, "link")
	if err := os.Symlink(mk("target", 0o700), link); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name    string
		dir     string
		wantErr string // substring; empty means no error
	}{
		{"private", mk("ok", 0o700), ""},
		{"owner only read", mk("ro", 0o500), ""},
		{"world readable", mk("open", 0o755), "chmod 0700"},
		{"group writable", mk("group", 0o770), "mode 0770"},
		{"missing", filepath.Join(root, "nope"), "no such file"},
		{"file", file, "not a directory"},
		{"symlink", link, "a symlink"},
	}
	if os.Getuid() == 0 {
		other := mk("other", 0o700)
		if err := os.Chown(other, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		cases = append(cases, struct {
			name    string
			dir     string
			wantErr string
		}{"foreign owner", other, "owned by uid 65534"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckDir(tc.dir)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckDir(%s) = %v; want nil", tc.dir, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("CheckDir(%s) = %v; want error containing %q", tc.dir, err, tc.wantErr)
			}
			if !strings.Contains(err.Error(), tc.dir) {
				t.Errorf("CheckDir(%s) = %v; want the error to name the directory", tc.dir, err)
			}
		})
	}
}
