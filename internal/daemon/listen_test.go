package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tapis-agent/tapis-agent/ipc/ipcserver"
)

func TestListenOwnSocket(t *testing.T) {
	t.Setenv("LISTEN_PID", "")
	sock := filepath.Join(shortDir(t), "run", "agent.sock")
	ln, activated, err := Listen(sock, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if activated || ln.Addr().String() != sock {
		t.Errorf("Listen(%s) = %s, activated %v; want the path itself, not activated", sock, ln.Addr(), activated)
	}
	fi, err := os.Lstat(sock)
	if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket file: %v, %v; want a socket of mode 0600", fi, err)
	}
	// A second daemon on the same path finds the first.
	if _, _, err := Listen(sock, slog.New(slog.DiscardHandler)); !errors.Is(err, ipcserver.ErrAgentRunning) {
		t.Errorf("second Listen(%s) = %v; want ErrAgentRunning", sock, err)
	}
	ln.Close()
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket after Close: %v; want it removed", err)
	}
}

// TestListenActivation passes sockets the way systemd does (LISTEN_FDS,
// LISTEN_PID, descriptors from 3 on) to a child process, which runs
// Listen and prints what it got. sh sets LISTEN_PID to its own pid, which
// the child keeps through exec.
func TestListenActivation(t *testing.T) {
	if os.Getenv("DAEMON_LISTEN_CHILD") == "1" {
		var log strings.Builder
		ln, activated, err := Listen("/nonexistent/agent.sock", slog.New(slog.NewTextHandler(&log, nil)))
		addr := ""
		if ln != nil {
			addr = ln.Addr().String()
		}
		fmt.Printf("RESULT activated=%v addr=%s err=%v\nLOG %s", activated, addr, err, log.String())
		return
	}
	dir := shortDir(t)
	unixFile := func(name string) *os.File {
		t.Helper()
		ln, err := net.Listen("unix", filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		f, err := ln.(*net.UnixListener).File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	tcpFile := func() *os.File {
		t.Helper()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	cases := []struct {
		name  string
		files []*os.File
		want  string // in the RESULT line
		log   string // in the child's log
	}{
		{"unix socket", []*os.File{unixFile("a.sock")}, "activated=true addr=" + filepath.Join(dir, "a.sock") + " err=<nil>",
			"msg=socket_activated socket=" + filepath.Join(dir, "a.sock") + " ignored=/nonexistent/agent.sock"},
		{"tcp socket", []*os.File{tcpFile()}, "activated=false addr= err=systemd passed a tcp socket", ""},
		{"two sockets", []*os.File{unixFile("b.sock"), unixFile("c.sock")}, "activated=false addr= err=systemd passed 2 sockets", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$@"`, "sh", os.Args[0], "-test.run=^TestListenActivation$")
			cmd.Env = append(os.Environ(), "DAEMON_LISTEN_CHILD=1", fmt.Sprintf("LISTEN_FDS=%d", len(tc.files)), "LISTEN_FDNAMES=")
			cmd.ExtraFiles = tc.files
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("child: %v\n%s", err, out)
			}
			if !strings.Contains(string(out), "RESULT "+tc.want) {
				t.Errorf("child printed:\n%s\nwant RESULT %s", out, tc.want)
			}
			if tc.log != "" && !strings.Contains(string(out), tc.log) {
				t.Errorf("child printed:\n%s\nwant the log line %s", out, tc.log)
			}
		})
	}
}
