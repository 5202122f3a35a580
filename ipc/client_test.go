package ipc_test

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcserver"
)

// fakeAgent is an ipcserver.Handler that answers canned values and
// records what it was asked. Tenant "nope" is unknown and tenant "boom"
// fails with a non-ipc error.
type fakeAgent struct {
	mu   sync.Mutex // guards last
	last []any
}

var (
	expires = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	status  = &ipc.StatusResponse{Version: "test", PID: 42, Socket: "/s", StartedAt: expires,
		Tenants: []ipc.TenantStatus{{Tenant: "t", BaseURL: "https://t.tapis.io", State: ipc.StateReady, AccessExpiresAt: &expires, RefreshCount: 3}}}
)

func (f *fakeAgent) record(args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.last = args
}

func (f *fakeAgent) lastCall() []any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

func tenantErr(tenant string) error {
	switch tenant {
	case "nope":
		return &ipc.Error{Code: ipc.CodeUnknownTenant, Message: "unknown tenant nope", Hint: "tapis-token login nope"}
	case "boom":
		return errors.New("secret upstream detail")
	}
	return nil
}

func (f *fakeAgent) Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
	f.record("token", tenant, minValid)
	if err := tenantErr(tenant); err != nil {
		return nil, err
	}
	return &ipc.TokenResponse{Tenant: tenant, BaseURL: "https://t.tapis.io", Username: "u", AccessToken: "jwt", ExpiresAt: expires, ExpiresIn: 100}, nil
}

func (f *fakeAgent) Status(ctx context.Context) (*ipc.StatusResponse, error) {
	f.record("status")
	return status, nil
}

func (f *fakeAgent) Login(ctx context.Context, req *ipc.LoginRequest) (*ipc.LoginResponse, error) {
	f.record("login", *req)
	if err := tenantErr(req.Tenant); err != nil {
		return nil, err
	}
	if req.Device {
		return &ipc.LoginResponse{Tenant: ipc.TenantStatus{Tenant: req.Tenant, State: ipc.StateDevicePending},
			Device: &ipc.DeviceCode{VerificationURI: "https://v", UserCode: "ABCD", ExpiresAt: expires}}, nil
	}
	return &ipc.LoginResponse{Tenant: ipc.TenantStatus{Tenant: req.Tenant, Username: req.Username, State: ipc.StateReady}}, nil
}

func (f *fakeAgent) Logout(ctx context.Context, tenant string) (*ipc.TenantStatus, error) {
	f.record("logout", tenant)
	if err := tenantErr(tenant); err != nil {
		return nil, err
	}
	return &ipc.TenantStatus{Tenant: tenant, State: ipc.StateLoginRequired}, nil
}

func (f *fakeAgent) Import(ctx context.Context, req *ipc.ImportRequest) (*ipc.TenantStatus, error) {
	f.record("import", *req)
	if err := tenantErr(req.Tenant); err != nil {
		return nil, err
	}
	return &ipc.TenantStatus{Tenant: req.Tenant, State: ipc.StateAccessOnly}, nil
}

func (f *fakeAgent) Reload(ctx context.Context) (*ipc.StatusResponse, error) {
	f.record("reload")
	return status, nil
}

// shortDir returns a private directory with a path short enough for a
// Unix socket (108 bytes), removed after the test.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ta")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// startServer serves h on a fresh socket until the test ends and returns
// the socket path.
func startServer(t testing.TB, h ipcserver.Handler) string {
	t.Helper()
	path := filepath.Join(shortDir(t), "agent.sock")
	ln, err := ipcserver.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ipcserver.New(h, nil).Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve = %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return path
}

func TestClientContract(t *testing.T) {
	f := &fakeAgent{}
	c := &ipc.Client{Path: startServer(t, f), Timeout: 10 * time.Second}

	t.Run("token", func(t *testing.T) {
		got, err := c.Token("t&x=1", 1500*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		want := &ipc.TokenResponse{Tenant: "t&x=1", BaseURL: "https://t.tapis.io", Username: "u", AccessToken: "jwt", ExpiresAt: expires, ExpiresIn: 100}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Token = %+v; want %+v", got, want)
		}
		// The tenant survives query escaping; min_valid is rounded up.
		if call := f.lastCall(); !reflect.DeepEqual(call, []any{"token", "t&x=1", 2 * time.Second}) {
			t.Errorf("handler got %v", call)
		}
	})
	t.Run("token default min_valid", func(t *testing.T) {
		if _, err := c.Token("t", -1); err != nil {
			t.Fatal(err)
		}
		if call := f.lastCall(); !reflect.DeepEqual(call, []any{"token", "t", ipcserver.NoMinValid}) {
			t.Errorf("handler got %v; want NoMinValid", call)
		}
	})
	t.Run("token default tenant", func(t *testing.T) {
		if _, err := c.Token("", 0); err != nil {
			t.Fatal(err)
		}
		if call := f.lastCall(); !reflect.DeepEqual(call, []any{"token", "", time.Duration(0)}) {
			t.Errorf("handler got %v", call)
		}
	})
	t.Run("status", func(t *testing.T) {
		got, err := c.Status()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, status) {
			t.Errorf("Status = %+v; want %+v", got, status)
		}
	})
	t.Run("login", func(t *testing.T) {
		req := &ipc.LoginRequest{Tenant: "t", Username: "u", Password: "pw"}
		got, err := c.Login(req)
		if err != nil {
			t.Fatal(err)
		}
		if got.Tenant.State != ipc.StateReady || got.Tenant.Username != "u" || got.Device != nil {
			t.Errorf("Login = %+v", got)
		}
		if call := f.lastCall(); !reflect.DeepEqual(call, []any{"login", *req}) {
			t.Errorf("handler got %v", call)
		}
	})
	t.Run("login device", func(t *testing.T) {
		got, err := c.Login(&ipc.LoginRequest{Tenant: "t", Device: true})
		if err != nil {
			t.Fatal(err)
		}
		if got.Device == nil || got.Device.UserCode != "ABCD" || !got.Device.ExpiresAt.Equal(expires) {
			t.Errorf("Login = %+v", got)
		}
	})
	t.Run("logout", func(t *testing.T) {
		got, err := c.Logout("t")
		if err != nil {
			t.Fatal(err)
		}
		if got.State != ipc.StateLoginRequired {
			t.Errorf("Logout = %+v", got)
		}
		if call := f.lastCall(); !reflect.DeepEqual(call, []any{"logout", "t"}) {
			t.Errorf("handler got %v", call)
		}
	})
	t.Run("import", func(t *testing.T) {
		req := &ipc.ImportRequest{Tenant: "t", AccessToken: "a", RefreshToken: "r", ClientID: "c", ClientKey: "k"}
		got, err := c.Import(req)
		if err != nil {
			t.Fatal(err)
		}
		if got.State != ipc.StateAccessOnly {
			t.Errorf("Import = %+v", got)
		}
		if call := f.lastCall(); !reflect.DeepEqual(call, []any{"import", *req}) {
			t.Errorf("handler got %v", call)
		}
	})
	t.Run("reload", func(t *testing.T) {
		got, err := c.Reload()
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, status) {
			t.Errorf("Reload = %+v; want %+v", got, status)
		}
		if call := f.lastCall(); !reflect.DeepEqual(call, []any{"reload"}) {
			t.Errorf("handler got %v", call)
		}
	})

	errCases := []struct {
		name string
		call func() error
		want ipc.Error
	}{
		{"token unknown tenant", func() error { _, err := c.Token("nope", time.Minute); return err },
			ipc.Error{Status: 404, Code: ipc.CodeUnknownTenant, Message: "unknown tenant nope", Hint: "tapis-token login nope"}},
		{"login unknown tenant", func() error { _, err := c.Login(&ipc.LoginRequest{Tenant: "nope"}); return err },
			ipc.Error{Status: 404, Code: ipc.CodeUnknownTenant, Message: "unknown tenant nope", Hint: "tapis-token login nope"}},
		// The server's own hint points to the agent's log.
		{"logout internal", func() error { _, err := c.Logout("boom"); return err },
			ipc.Error{Status: 500, Code: ipc.CodeInternal, Message: "internal error in the agent; see its log", Hint: "journalctl"}},
		{"import internal", func() error { _, err := c.Import(&ipc.ImportRequest{Tenant: "boom"}); return err },
			ipc.Error{Status: 500, Code: ipc.CodeInternal, Message: "internal error in the agent; see its log", Hint: "journalctl"}},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			var e *ipc.Error
			if !errors.As(err, &e) || !strings.Contains(e.Hint, tc.want.Hint) {
				t.Fatalf("err = %#v; want %#v (hint containing %q)", err, &tc.want, tc.want.Hint)
			}
			got, want := *e, tc.want
			got.Hint, want.Hint = "", ""
			if got != want {
				t.Fatalf("err = %#v; want %#v", err, &tc.want)
			}
		})
	}
}

func TestClientConcurrent(t *testing.T) {
	c := &ipc.Client{Path: startServer(t, &fakeAgent{}), Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			_, err := c.Token("t", time.Minute)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestClientUnreachable(t *testing.T) {
	dir := shortDir(t)
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close() // leaves a socket file nobody listens on

	open := shortDir(t)
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		errno      error // expected in the chain too, if set
	}{
		{"missing socket", filepath.Join(dir, "none.sock"), syscall.ENOENT},
		{"refused", stale, syscall.ECONNREFUSED},
		{"missing dir", filepath.Join(dir, "sub", "agent.sock"), syscall.ENOENT},
		{"open dir", filepath.Join(open, "agent.sock"), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &ipc.Client{Path: tc.path, Timeout: 5 * time.Second}
			_, err := c.Status()
			if !errors.Is(err, ipc.ErrAgentUnreachable) {
				t.Fatalf("Status() = %v; want ErrAgentUnreachable", err)
			}
			if tc.errno != nil && !errors.Is(err, tc.errno) {
				t.Errorf("Status() = %v; want %v in the chain", err, tc.errno)
			}
		})
	}
}

// TestClientTimeout: an agent that accepts but never answers makes the
// call fail after Timeout with os.ErrDeadlineExceeded.
func TestClientTimeout(t *testing.T) {
	path := filepath.Join(shortDir(t), "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}()
	c := &ipc.Client{Path: path, Timeout: 100 * time.Millisecond}
	start := time.Now()
	_, err = c.Status()
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Status() = %v; want os.ErrDeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Status() took %v; want about 100ms", d)
	}
}

// TestClientBrokenAnswer: an agent that closes the connection without a
// complete answer yields a malformed-answer *Error.
func TestClientBrokenAnswer(t *testing.T) {
	path := filepath.Join(shortDir(t), "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		// Read the request (one small write) so that Close sends FIN, not RST.
		c.Read(make([]byte, 4096))
		c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"))
		c.Close()
	}()
	_, err = (&ipc.Client{Path: path, Timeout: 5 * time.Second}).Status()
	var e *ipc.Error
	if !errors.As(err, &e) || e.Code != ipc.CodeInternal {
		t.Fatalf("Status() = %v; want *ipc.Error internal", err)
	}
}
