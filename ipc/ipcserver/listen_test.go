package ipcserver

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

func TestListen(t *testing.T) {
	t.Run("creates dir and socket", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "sub", "agent.sock")
		ln, err := Listen(path)
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
		_, err := Listen(filepath.Join(dir, "agent.sock"))
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
		_, err := Listen(filepath.Join(dir, "agent.sock"))
		if err == nil || !strings.Contains(err.Error(), "owned by uid 65534") {
			t.Fatalf("Listen in a foreign dir = %v; want an error naming the owner", err)
		}
	})
	t.Run("live agent", func(t *testing.T) {
		path := filepath.Join(shortDir(t), "agent.sock")
		ln, err := Listen(path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		_, err = Listen(path)
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
		ln, err := Listen(path)
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
		if _, err := Listen(path); err == nil || !strings.Contains(err.Error(), "not a socket") {
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

// TestServeShutdown: cancelling Serve's context stops new connections,
// lets an in-flight answer finish, removes the socket and returns nil.
func TestServeShutdown(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	h := &fakeHandler{token: func(ctx context.Context, tenant string, _ time.Duration) (*ipc.TokenResponse, error) {
		close(entered)
		<-release
		return &ipc.TokenResponse{Tenant: tenant, AccessToken: "jwt", ExpiresAt: time.Now().Add(time.Hour)}, nil
	}}
	path := filepath.Join(shortDir(t), "agent.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ln = &closeNotifyListener{Listener: ln, closed: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- New(h, nil).Serve(ctx, ln) }()

	answered := make(chan error, 1)
	go func() {
		_, err := (&ipcclient.Client{Path: path, Timeout: 10 * time.Second}).Token(context.Background(), "t", time.Minute)
		answered <- err
	}()
	<-entered
	cancel()
	// New connections are refused once the listener is closed.
	select {
	case <-ln.(*closeNotifyListener).closed:
	case <-time.After(10 * time.Second):
		t.Fatal("listener not closed after cancel")
	}
	if _, err := (&ipcclient.Client{Path: path, Timeout: time.Second}).Status(context.Background()); !errors.Is(err, ipc.ErrAgentUnreachable) {
		t.Fatalf("Status() after cancel = %v; want ErrAgentUnreachable", err)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned (%v) with an answer in flight", err)
	default:
	}
	close(release)
	if err := <-answered; err != nil {
		t.Fatalf("in-flight Token = %v; want its answer", err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return")
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket after shutdown: %v; want it removed", err)
	}
}

// TestServeShutdownForced: a handler that does not finish is cancelled
// after ShutdownTimeout and Serve still returns.
func TestServeShutdownForced(t *testing.T) {
	entered := make(chan struct{})
	cancelled := make(chan struct{})
	h := &fakeHandler{token: func(ctx context.Context, tenant string, _ time.Duration) (*ipc.TokenResponse, error) {
		close(entered)
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	}}
	path := filepath.Join(shortDir(t), "agent.sock")
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := New(h, nil)
	s.ShutdownTimeout = 100 * time.Millisecond
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	go (&ipcclient.Client{Path: path, Timeout: 10 * time.Second}).Token(context.Background(), "t", time.Minute)
	<-entered
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v; want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the shutdown timeout")
	}
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("stuck handler's context not cancelled")
	}
}

// TestLongCallNotCancelled: a call whose work outlasts ReadTimeout keeps
// its context and gets its answer: ReadTimeout bounds reading the request,
// not the work.
func TestLongCallNotCancelled(t *testing.T) {
	h := &fakeHandler{login: func(ctx context.Context, req *ipc.LoginRequest) (*ipc.LoginResponse, error) {
		select {
		case <-ctx.Done():
			return nil, &ipc.Error{Code: ipc.CodeInternal, Message: "cancelled"}
		case <-time.After(600 * time.Millisecond): // longer than the read timeout below
		}
		return &ipc.LoginResponse{Tenant: ipc.TenantStatus{Tenant: req.Tenant}}, nil
	}}
	ts := newTestServer(t, h, func(s *Server) { s.ReadTimeout = 100 * time.Millisecond })
	s := &ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}
	if _, err := s.Login(context.Background(), &ipc.LoginRequest{Tenant: "t", Username: "u", Password: "p"}); err != nil {
		t.Fatalf("Login = %v; want success", err)
	}
}

// closeNotifyListener closes closed when it is closed.
type closeNotifyListener struct {
	net.Listener
	once   sync.Once
	closed chan struct{}
}

func (l *closeNotifyListener) Close() error {
	err := l.Listener.Close()
	l.once.Do(func() { close(l.closed) })
	return err
}
