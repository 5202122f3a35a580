package ipcserver

import (
	"context"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

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
	ln, err := net.Listen("unix", path)
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
// after the shutdown timeout and Serve still returns.
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
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := New(h, nil)
	s.shutdownTimeout = 100 * time.Millisecond
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
	ts := newTestServer(t, h, func(s *Server) { s.readTimeout = 100 * time.Millisecond })
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

// TestServeLeavesSharedSocket: systemd holds the listening socket it
// passes to the agent, and starts the next agent on it once this one
// exits. Stopping must leave that socket able to accept.
func TestServeLeavesSharedSocket(t *testing.T) {
	path := filepath.Join(shortDir(t), "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false) // systemd owns the file
	held, err := ln.(*net.UnixListener).File()     // systemd's descriptor
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	for i := range 2 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- New(&fakeHandler{}, nil).Serve(ctx, ln) }()
		c := &ipcclient.Client{Path: path, Timeout: 10 * time.Second}
		if _, err := c.Token(context.Background(), "dev", time.Minute); err != nil {
			t.Fatalf("agent %d: Token = %v", i+1, err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("agent %d: Serve = %v", i+1, err)
		}
		// The next agent gets the socket from systemd's descriptor.
		if ln, err = net.FileListener(held); err != nil {
			t.Fatal(err)
		}
	}
	ln.Close()
}

// TestDispatcherCloseTwice: closing the dispatcher again is no failure.
// Serve closes it, then http.Server.Shutdown closes it again if its Serve
// has not yet seen the first close (on a busy machine), and takes an error
// for a failed shutdown, which cuts the answers in flight off at once.
func TestDispatcherCloseTwice(t *testing.T) {
	ln, err := net.Listen("unix", filepath.Join(shortDir(t), "agent.sock"))
	if err != nil {
		t.Fatal(err)
	}
	d := newDispatcher(New(&fakeHandler{}, nil), ln, 1)
	if err := d.Close(); err != nil {
		t.Fatalf("first Close = %v", err)
	}
	if err := d.Close(); err != nil {
		t.Fatalf("second Close = %v; want nil, as http.Server.Shutdown expects", err)
	}
	if _, err := d.Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close = %v; want net.ErrClosed", err)
	}
}
