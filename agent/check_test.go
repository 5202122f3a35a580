package agent

import (
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// TestDeadTokenNotServed: the tenant's signing key changes, so Tapis
// rejects both tokens. The refresh that meets the rejection checks the
// access token once, and the agent stops serving it.
func TestDeadTokenNotServed(t *testing.T) {
	cases := []struct {
		name   string
		faults func(*tapistest.Server)
		errHas string
	}{
		{"userinfo says so", func(*tapistest.Server) {}, "Invalid Tapis token."},
		{"userinfo down, signature says so", func(f *tapistest.Server) {
			f.Inject(tapistest.RouteUserinfo, tapistest.Fault{Status: http.StatusServiceUnavailable, Times: 1})
		}, "signature no longer matches"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "alpha")
			w.login(t, "alpha")
			fake := w.fakes["alpha"]
			ctx := context.Background()
			old := w.token(t, "alpha")
			if err := fake.RotateSigningKey(); err != nil {
				t.Fatal(err)
			}
			tc.faults(fake)
			w.clock.Advance(time.Hour)
			// Asking more than is left makes the agent refresh, which Tapis
			// refuses.
			if _, err := w.a.Token(ctx, "alpha", 3*time.Hour+30*time.Minute); code(err) != ipc.CodeLoginRequired {
				t.Fatalf("Token(3h30m) after the key changed = %v; want %s", err, ipc.CodeLoginRequired)
			}
			tr, err := w.a.Token(ctx, "alpha", time.Minute)
			if err == nil {
				same := ""
				if tr.AccessToken == old {
					same = " (the old one)"
				}
				t.Fatalf("Token(1m) served a token%s that Tapis rejects", same)
			}
			if code(err) != ipc.CodeLoginRequired || !strings.Contains(err.Error(), tc.errHas) {
				t.Errorf("Token(1m) = %v; want %s saying %q", err, ipc.CodeLoginRequired, tc.errHas)
			}
			if _, ok := w.a.TokenInstant("alpha", time.Minute); ok {
				t.Errorf("TokenInstant served the dead token")
			}
			st := w.a.tenantStatus("alpha")
			if st.State != ipc.StateLoginRequired || st.AccessExpiresAt != nil || !strings.Contains(st.LastError, tc.errHas) {
				t.Errorf("status = %s, expires %v, last error %q; want login_required, no expiry, %q", st.State, st.AccessExpiresAt, st.LastError, tc.errHas)
			}
			if n := fake.Calls(tapistest.RouteUserinfo); n != 1 {
				t.Errorf("userinfo calls = %d; want 1", n)
			}
			// A new login serves again.
			w.login(t, "alpha")
			if tok := w.token(t, "alpha"); tok == old {
				t.Errorf("the new login serves the old token")
			}
		})
	}
}

// TestRejectedRefreshAccessStillAccepted: Tapis rejects the refresh token
// but still accepts the access token, which the agent serves on; status
// shows login_required and says why a token is still served.
func TestRejectedRefreshAccessStillAccepted(t *testing.T) {
	w := newWorld(t, "alpha")
	w.login(t, "alpha")
	fake := w.fakes["alpha"]
	ctx := context.Background()
	s := w.a.session("alpha")
	used := s.tok.Load()
	fake.SetSingleUseRefresh(true)
	if _, err := s.refresh(ctx); err != nil {
		t.Fatal(err)
	}
	s.tok.Store(used) // the session holds a refresh token Tapis now refuses
	w.clock.Advance(time.Hour)
	if _, err := w.a.Token(ctx, "alpha", 3*time.Hour+30*time.Minute); code(err) != ipc.CodeLoginRequired {
		t.Fatalf("Token(3h30m) = %v; want %s", err, ipc.CodeLoginRequired)
	}
	tr, err := w.a.Token(ctx, "alpha", time.Minute)
	if err != nil || tr.AccessToken != used.access.Reveal() {
		t.Fatalf("Token(1m) = %v; want the access token Tapis still accepts", err)
	}
	st := w.a.tenantStatus("alpha")
	if st.State != ipc.StateLoginRequired || st.AccessExpiresAt == nil {
		t.Fatalf("status = %+v; want login_required with the served token's expiry", st)
	}
	if len(warnings(st)) != 1 || !strings.Contains(warnings(st)[0], "still accepts the access token") || !strings.Contains(warnings(st)[0], "tapis-token login alpha") {
		t.Errorf("warnings = %q; want one saying why the token is still served", warnings(st))
	}
}

// passwordCommandWorld is an agent whose tenant dev logs in unattended
// with script, against a fake sharing clk; it returns once dev is ready.
func passwordCommandWorld(t *testing.T, clk *clock, script string) (*Agent, *tapistest.Server) {
	t.Helper()
	fake := tapistest.New(t, tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "the-pw"}, Now: clk.Now})
	if err := fake.AddClient("jdoe", "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	a := New(Options{Logger: slog.New(slog.DiscardHandler), Now: clk.Now})
	t.Cleanup(a.Close)
	a.ApplyConfig(&config.Config{Tenants: map[string]*config.Tenant{"dev": {
		Name: "dev", BaseURL: fake.URL(), Username: "jdoe", ClientID: "c1", ClientKey: "k1",
		PasswordCommand: sh(script)}}})
	waitStatus(t, a, func(st ipc.TenantStatus) bool { return st.State == ipc.StateReady })
	return a, fake
}

// TestPasswordCommandAnswersTheWaitingCaller: the request that meets a
// rejected refresh token waits for the unattended re-login and gets the
// new token, within its own time.
func TestPasswordCommandAnswersTheWaitingCaller(t *testing.T) {
	clk := &clock{}
	a, fake := passwordCommandWorld(t, clk, "sleep 0.1; echo the-pw")
	old, err := a.Token(context.Background(), "dev", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.RotateSigningKey(); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tr, err := a.Token(ctx, "dev", 3*time.Hour+30*time.Minute)
	if err != nil {
		t.Fatalf("Token(3h30m) after the refresh token was rejected = %v; want the re-login's token", err)
	}
	if tr.AccessToken == old.AccessToken || tapis.VerifySignature(secret.Value(tr.AccessToken), fake.PublicKeyPEM()) != nil {
		t.Errorf("the waiting caller got a token not signed with the tenant's new key")
	}
}

// TestPasswordCommandCallerKeepsItsTimeout: a re-login slower than the
// caller's own deadline does not hold the caller past it; the login
// still ends ready.
func TestPasswordCommandCallerKeepsItsTimeout(t *testing.T) {
	clk := &clock{}
	slow := filepath.Join(t.TempDir(), "slow")
	a, fake := passwordCommandWorld(t, clk, "if [ -e "+slow+" ]; then sleep 2; fi; echo the-pw")
	if err := os.WriteFile(slow, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	s := a.session("dev")
	fake.SetSingleUseRefresh(true)
	used := s.tok.Load()
	if _, err := s.refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.tok.Store(used)
	clk.Advance(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := a.Token(ctx, "dev", 3*time.Hour+30*time.Minute)
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the caller waited %v; want about its own 300ms", took)
	}
	if code(err) != ipc.CodeLoginRequired {
		t.Errorf("Token(3h30m) with a re-login slower than the caller = %v; want %s", err, ipc.CodeLoginRequired)
	}
	waitStatus(t, a, func(st ipc.TenantStatus) bool { return a.session("dev") != s && st.State == ipc.StateReady })
}
