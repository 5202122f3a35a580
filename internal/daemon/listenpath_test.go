package daemon

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenPath(t *testing.T) {
	t.Run("creates dir and socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "sub", "agent.sock")
		ln, err := listenPath(path)
		if err != nil {
			t.Fatal(err)
		}
		checkMode(t, filepath.Dir(path), fs.ModeDir|0o700)
		checkMode(t, path, fs.ModeSocket|0o600)
		if err := ln.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("socket after Close: %v; want it removed", err)
		}
	})
	t.Run("open dir", func(t *testing.T) {
		dir := shortDir(t)
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		_, err := listenPath(filepath.Join(dir, "agent.sock"))
		if err == nil || !strings.Contains(err.Error(), "chmod 0700 "+dir) {
			t.Fatalf("Listen in a 0755 dir = %v; want an error saying to chmod it", err)
		}
	})
	t.Run("foreign dir", func(t *testing.T) {
		if os.Getuid() != 0 {
			t.Skip("needs root to chown")
		}
		dir := shortDir(t)
		if err := os.Chown(dir, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		_, err := listenPath(filepath.Join(dir, "agent.sock"))
		if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("Listen in a foreign dir = %v; want an error naming the owner", err)
		}
	})
	t.Run("live agent", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "agent.sock")
		ln, err := listenPath(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = listenPath(path)
		if !errors.Is(err, ErrAgentRunning) {
			t.Fatalf("second Listen = %v; want ErrAgentRunning", err)
		}
		// The live agent's socket is untouched.
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatalf("live socket gone: %v", err)
		}
		c.Close()
	})
	t.Run("stale socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "agent.sock")
		old, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		old.(*net.UnixListener).SetUnlinkOnClose(false)
		old.Close() // a crashed agent's leftover
		ln, err := listenPath(path)
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		defer ln.Close()
		checkMode(t, path, fs.ModeSocket|0o600)
	})
	t.Run("not a socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "agent.sock")
		if err := os.WriteFile(path, []byte("keep"), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := listenPath(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
			t.Fatalf("Listen over a file = %v; want an error", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep" {
			t.Error("Listen clobbered a regular file")
		}
	})
}

func checkMode(t *testing.T, path string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != want {
		t.Errorf("mode of %s = %v; want %v", path, fi.Mode(), want)
	}
}
