package agent

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func sh(script string) []string { return []string{"/bin/sh", "-c", script} }

func TestRunPasswordCommand(t *testing.T) {
	cases := []struct {
		name    string
		argv    []string
		want    string // the password; "" for an error
		errHas  []string
		errNot  []string // never in Error(), which is logged
		detail  string   // in Detail(), shown in status
		timeout time.Duration
	}{
		{name: "first line", argv: sh("printf 'hunter2\\nsecond\\n'"), want: "hunter2"},
		{name: "no newline, CRLF", argv: sh("printf 'pw\\r\\n'"), want: "pw"},
		{name: "without shell", argv: []string{"/bin/echo", "s3cret"}, want: "s3cret"},
		{name: "fails", argv: sh("echo leaked-pw; echo 'gpg: decryption failed' >&2; exit 3"),
			errHas: []string{"failed", "exit status 3"}, errNot: []string{"leaked-pw", "gpg"}, detail: "gpg: decryption failed"},
		{name: "empty", argv: sh("echo"), errHas: []string{"printed no password"}},
		{name: "nothing at all", argv: []string{"/bin/true"}, errHas: []string{"printed no password"}},
		{name: "hangs", argv: sh("sleep 30; echo late"), timeout: 300 * time.Millisecond,
			errHas: []string{"did not finish within 300ms"}},
		{name: "hangs in a grandchild", argv: sh("(sleep 30; echo late) & wait"), timeout: 300 * time.Millisecond,
			errHas: []string{"did not finish"}},
		{name: "not found", argv: []string{"/no/such/command"}, errHas: []string{"running password_command", "/no/such/command"}},
		{name: "stderr echoing the password is hidden", argv: sh("echo pw123; echo 'oops pw123' >&2; exit 1"),
			errHas: []string{"failed"}, errNot: []string{"pw123"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			start := time.Now()
			got, err := runPasswordCommand(context.Background(), tc.argv, timeout)
			if took := time.Since(start); took > timeout+3*time.Second {
				t.Errorf("took %s; want about %s at most", took, timeout)
			}
			if tc.want != "" {
				if err != nil || got.Reveal() != tc.want {
					t.Fatalf("runPasswordCommand = %q, %v; want %q", got.Reveal(), err, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("runPasswordCommand = %q; want an error", got.Reveal())
			}
			ce, _ := err.(*commandError)
			for _, w := range tc.errHas {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			for _, w := range tc.errNot {
				if strings.Contains(err.Error(), w) || (ce != nil && strings.Contains(ce.Detail(), "pw123")) {
					t.Errorf("error %q (detail %q) holds %q", err, ce.Detail(), w)
				}
			}
			if tc.detail != "" && (ce == nil || !strings.Contains(ce.Detail(), tc.detail)) {
				t.Errorf("detail of %v lacks %q", err, tc.detail)
			}
		})
	}
}

// syncBuffer is a log sink safe for the agent's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitStatus polls the agent's status of dev until cond holds: the login
// runs in the agent's own goroutine and a child process.
func waitStatus(t *testing.T, a *Agent, cond func(ipc.TenantStatus) bool) ipc.TenantStatus {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		st := a.tenantStatus("dev")
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of dev stuck at %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestPasswordCommandLogin(t *testing.T) {
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "the-pw"}})
	dir := t.TempDir()
	cases := []struct {
		name   string
		script string
		state  string
		errHas string
	}{
		{"good", "echo the-pw", ipc.StateReady, ""},
		{"wrong password", "echo not-the-pw", ipc.StateLoginRequired, "rejected the username or password"},
		{"fails", "echo the-pw >&2; exit 2", ipc.StateLoginRequired, "exit status 2"},
		{"prints nothing", "true", ipc.StateLoginRequired, "printed no password"},
		{"hangs", "exec sleep 30", ipc.StateLoginRequired, "did not finish within"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			log := &syncBuffer{}
			script := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "-"))
			if err := os.WriteFile(script, []byte("#!/bin/sh\n"+tc.script+"\n"), 0o700); err != nil {
				t.Fatal(err)
			}
			a := New(Options{Logger: slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})),
				PasswordTimeout: 500 * time.Millisecond})
			defer a.Close()
			a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{"dev": {
				Name: "dev", BaseURL: fake.URL(), Username: "jdoe", PasswordCommand: []string{script}}}})
			st := waitStatus(t, a, func(st ipc.TenantStatus) bool {
				return st.State == ipc.StateReady || st.LastError != ""
			})
			if st.State != tc.state || !strings.Contains(st.LastError, tc.errHas) {
				t.Errorf("status = %s, %q; want %s with %q", st.State, st.LastError, tc.state, tc.errHas)
			}
			if strings.Contains(log.String(), "the-pw") {
				t.Errorf("the password is in the log:\n%s", log)
			}
		})
	}
}

func TestPasswordCommandReloginAfterRejection(t *testing.T) {
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "the-pw"}})
	if err := fake.AddClient("jdoe", "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Logger: slog.New(slog.DiscardHandler)})
	defer a.Close()
	a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{"dev": {
		Name: "dev", BaseURL: fake.URL(), Username: "jdoe", ClientID: "c1", ClientKey: "k1",
		PasswordCommand: sh("echo the-pw")}}})
	waitStatus(t, a, func(st ipc.TenantStatus) bool { return st.State == ipc.StateReady })
	first := a.session("dev")

	// Tapis rejects the held refresh token for good: the agent logs in
	// again with the password_command.
	fake.SetSingleUseRefresh(true)
	used := first.tok.Load()
	if _, err := first.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	first.tok.Store(used)
	if _, err := first.refresh(context.Background()); err == nil {
		t.Fatal("refresh with a used single-use token succeeded")
	}
	waitStatus(t, a, func(st ipc.TenantStatus) bool { return a.session("dev") != first && st.State == ipc.StateReady })
}

// memTransport serves requests with handler h in the caller's goroutine:
// no sockets, so that a synctest bubble's clock can advance while the
// agent waits between attempts.
type memTransport struct{ h http.Handler }

func (m memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	m.h.ServeHTTP(rec, r)
	resp := rec.Result()
	resp.Request = r
	return resp, nil
}

// retryWorld is an agent in a synctest bubble whose tenant dev logs in
// with a password_command against fake, reached in memory.
func retryWorld(t *testing.T, fake *tapistest.Server) *Agent {
	a := New(Options{Logger: slog.New(slog.DiscardHandler),
		HTTPClient: &http.Client{Transport: memTransport{fake}}})
	t.Cleanup(a.Close)
	a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{"dev": retryTenant(fake)}})
	return a
}

func retryTenant(fake *tapistest.Server) *config.Tenant {
	return &config.Tenant{Name: "dev", BaseURL: fake.URL(), Username: "jdoe", ClientID: "c1", ClientKey: "k1",
		PasswordCommand: []string{"/bin/echo", "the-pw"}}
}

func newRetryFake(t *testing.T) *tapistest.Server {
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "the-pw"}})
	if err := fake.AddClient("jdoe", "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	return fake
}

func TestPasswordCommandRetriesTransientFailures(t *testing.T) {
	fake := newRetryFake(t)
	const failures = 5
	fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "password", Status: 503, Times: failures})
	synctest.Test(t, func(t *testing.T) {
		a := retryWorld(t, fake)
		for n := 1; n <= failures; n++ {
			synctest.Wait()
			failedAt := time.Now()
			st := a.tenantStatus("dev")
			if st.State != ipc.StateRetrying || st.LastError == "" || st.NextRefresh == nil {
				t.Fatalf("after failure %d: state %s, last_error %q, next %v; want retrying with the error and the next try",
					n, st.State, st.LastError, st.NextRefresh)
			}
			if !strings.Contains(st.LastError, "password_command") {
				t.Errorf("last_error %q does not say the password_command login failed", st.LastError)
			}
			// Full jitter below an exponential ceiling: 1 s, 2 s, 4 s, …
			wait := st.NextRefresh.Sub(failedAt)
			if ceiling := time.Second << (n - 1); wait < 0 || wait >= ceiling {
				t.Errorf("retry %d in %s; want within [0, %s)", n, wait, ceiling)
			}
			_, err := a.Token(context.Background(), "dev", time.Minute)
			if code := ipcCode(err); code != ipc.CodeUpstreamUnavailable {
				t.Errorf("token while retrying the login: %v; want %s", err, ipc.CodeUpstreamUnavailable)
			}
			if got := fake.GrantCalls("password"); got != n {
				t.Errorf("password grants after failure %d = %d; want %d", n, got, n)
			}
			time.Sleep(time.Until(*st.NextRefresh))
		}
		synctest.Wait()
		st := a.tenantStatus("dev")
		if st.State != ipc.StateReady || st.LastError != "" || st.NextRefresh == nil {
			t.Fatalf("after upstream came back: %s, %q; want ready without error", st.State, st.LastError)
		}
		if got := fake.GrantCalls("password"); got != failures+1 {
			t.Errorf("password grants = %d; want %d", got, failures+1)
		}
	})
}

func TestPasswordCommandRetryBackoffCaps(t *testing.T) {
	cases := []struct {
		attempt int
		ceiling time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {9, 256 * time.Second}, {10, 5 * time.Minute}, {64, 5 * time.Minute}, {1000, 5 * time.Minute}}
	for _, tc := range cases {
		if got := loginBackoff(tc.attempt, 0.999999); got > tc.ceiling || got < tc.ceiling*99/100 {
			t.Errorf("loginBackoff(%d, ~1) = %s; want just under %s", tc.attempt, got, tc.ceiling)
		}
		if got := loginBackoff(tc.attempt, 0); got != 0 {
			t.Errorf("loginBackoff(%d, 0) = %s; want 0", tc.attempt, got)
		}
	}
}

// TestPasswordCommandRetryStops: a retrying unattended login ends on a
// definitive failure, on logout, on the tenant's removal and on Close, and
// sends no grant afterwards.
func TestPasswordCommandRetryStops(t *testing.T) {
	cases := []struct {
		name  string
		stop  func(t *testing.T, a *Agent, fake *tapistest.Server)
		state string
	}{
		{"definitive failure", func(t *testing.T, a *Agent, fake *tapistest.Server) {
			fake.ClearFaults()
			fake.AddUser("jdoe", "another-pw")
		}, ipc.StateLoginRequired},
		{"logout", func(t *testing.T, a *Agent, fake *tapistest.Server) {
			if _, err := a.Logout(context.Background(), "dev"); err != nil {
				t.Errorf("logout of a retrying tenant: %v", err)
			}
		}, ipc.StateLoginRequired},
		{"removed from config", func(t *testing.T, a *Agent, fake *tapistest.Server) {
			a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{}})
		}, ""},
		{"password_command removed", func(t *testing.T, a *Agent, fake *tapistest.Server) {
			tn := retryTenant(fake)
			tn.PasswordCommand = nil
			a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{"dev": tn}})
		}, ipc.StateLoginRequired},
		{"close", func(t *testing.T, a *Agent, fake *tapistest.Server) { a.Close() }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			fake := newRetryFake(t)
			fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "password", Status: 502})
			synctest.Test(t, func(t *testing.T) {
				a := retryWorld(t, fake)
				synctest.Wait()
				if st := a.tenantStatus("dev"); st.State != ipc.StateRetrying {
					t.Fatalf("state %s; want retrying", st.State)
				}
				tc.stop(t, a, fake)
				synctest.Wait()
				// The definitive case still has its one retry due.
				time.Sleep(10 * time.Minute)
				synctest.Wait()
				calls := fake.GrantCalls("password")
				time.Sleep(time.Hour)
				synctest.Wait()
				if got := fake.GrantCalls("password"); got != calls {
					t.Errorf("password grants went on after the stop: %d, then %d", calls, got)
				}
				if tc.state == "" {
					return
				}
				st := a.tenantStatus("dev")
				if st.State != tc.state || st.NextRefresh != nil {
					t.Errorf("after the stop: %s, next %v; want %s without a next try", st.State, st.NextRefresh, tc.state)
				}
				if tc.name == "definitive failure" && !strings.Contains(st.LastError, "rejected the username or password") {
					t.Errorf("last_error %q; want the rejection", st.LastError)
				}
			})
		})
	}
}

func ipcCode(err error) string {
	var ie *ipc.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}
