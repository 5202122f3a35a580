package ipcserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "IPCSERVER_TEST_PEER_SOCK"

// TestHelperPeer is not a test: run by TestPeerOtherUID in a child process
// as another user, it asks the socket named by helperEnv for the status and
// prints the HTTP status and body.
func TestHelperPeer(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	c, err := net.Dial("unix", path)
	if err != nil {
		fmt.Printf("dial: %v\n", err)
		os.Exit(1)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(c, get("/v1/status"))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		fmt.Printf("read: %v\n", err)
		os.Exit(1)
	}
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("%d %s", resp.StatusCode, body)
	// The token frame is refused the same way.
	f, err := net.Dial("unix", path)
	if err != nil {
		fmt.Printf("dial: %v\n", err)
		os.Exit(1)
	}
	f.SetDeadline(time.Now().Add(10 * time.Second))
	io.WriteString(f, "@tapis-agent/1 token dev 60\n")
	answer, _ := io.ReadAll(f)
	fmt.Printf("%s", answer)
	os.Exit(0)
}

// TestPeerOtherUID: a process of another user that can reach the socket
// (world-accessible dir, socket 0666) is refused by the peer check alone.
func TestPeerOtherUID(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to run a process as another user")
	}
	dir := shortDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The test binary may sit in a private build directory: copy it where
	// the other user can run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "peer.test")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	start(t, New(&fakeHandler{}, slog.New(slog.NewJSONHandler(buf, nil))), ln, path)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestHelperPeer$")
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper: %v\n%s", err, out)
	}
	if !strings.HasPrefix(string(out), `403 {"error":{"code":"forbidden"`) {
		t.Fatalf("helper got %q; want 403 forbidden", out)
	}
	if !strings.Contains(string(out), "\n@tapis-agent/1 error forbidden ") || strings.Contains(string(out), "jwt") {
		t.Fatalf("helper got %q; want a forbidden frame too", out)
	}
	if log := buf.String(); !strings.Contains(log, `"peer_uid":65534`) || !strings.Contains(log, `"peer_pid":`) {
		t.Errorf("log lacks the refused peer:\n%s", log)
	}
}
