package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcserver"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// world is an Agent with tenants backed by fake servers.
type world struct {
	clock *clock
	a     *Agent
	fakes map[string]*tapistest.Server
	log   *bytes.Buffer
}

func newWorld(t *testing.T, tenants ...string) *world {
	t.Helper()
	w := &world{clock: &clock{}, fakes: map[string]*tapistest.Server{}, log: &bytes.Buffer{}}
	for _, n := range tenants {
		w.fakes[n] = tapistest.New(t, tapistest.Config{TenantID: n, Users: map[string]string{"jdoe": "pw-" + n}, Now: w.clock.Now})
	}
	w.a = New(Options{Logger: slog.New(slog.NewTextHandler(w.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Hostname: "login1.example.org", Now: w.clock.Now})
	w.a.ApplyConfig(w.config(tenants...))
	t.Cleanup(w.a.Close)
	return w
}

// config names the given tenants, each at its fake.
func (w *world) config(tenants ...string) *config.Config {
	c := &config.Config{Path: "test.toml", Tenants: map[string]*config.Tenant{}}
	for _, n := range tenants {
		c.Tenants[n] = &config.Tenant{Name: n, BaseURL: w.fakes[n].URL(), Username: "jdoe"}
	}
	return c
}

func (w *world) login(t *testing.T, name string) {
	t.Helper()
	if _, err := w.a.Login(context.Background(), &ipc.LoginRequest{Tenant: name, Password: "pw-" + name}); err != nil {
		t.Fatalf("login %s: %v", name, err)
	}
}

func (w *world) token(t *testing.T, name string) string {
	t.Helper()
	tr, err := w.a.Token(context.Background(), name, time.Minute)
	if err != nil {
		t.Fatalf("token %s: %v", name, err)
	}
	return tr.AccessToken
}

// clock is the wall clock shifted by an offset that tests advance, shared
// by the agent and the fakes, as if the machine had slept.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func code(err error) string {
	var ie *ipc.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

func TestApplyConfigKeepsUnchangedSessions(t *testing.T) {
	w := newWorld(t, "alpha", "beta")
	w.login(t, "alpha")
	w.login(t, "beta")
	alphaTok := w.token(t, "alpha")
	betaTok := w.token(t, "beta")

	// Re-applying the same tenants keeps both sessions untouched.
	w.a.ApplyConfig(w.config("alpha", "beta"))
	if w.token(t, "alpha") != alphaTok || w.token(t, "beta") != betaTok {
		t.Fatalf("an unchanged reload replaced a token")
	}

	// Removing beta drops its session; alpha keeps the same token.
	w.a.ApplyConfig(w.config("alpha"))
	if w.token(t, "alpha") != alphaTok {
		t.Errorf("alpha's token changed when beta was removed")
	}
	if _, err := w.a.Token(context.Background(), "beta", 0); code(err) != ipc.CodeLoginRequired {
		t.Errorf("beta after removal: %v; want login_required", err)
	}

}

func TestApplyConfigStartsChangedSessionsOver(t *testing.T) {
	cases := []struct {
		name   string
		change func(*config.Tenant)
	}{
		{"username", func(t *config.Tenant) { t.Username = "someone-else" }},
		{"base_url", func(t *config.Tenant) { t.BaseURL = "https://elsewhere.tapis.io" }},
		{"client_id", func(t *config.Tenant) { t.ClientID, t.ClientKey = "my-client", "my-key" }},
		{"ca_file", func(t *config.Tenant) { t.CAFile = "/etc/ssl/site-ca.pem" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, "alpha", "beta")
			w.login(t, "alpha")
			w.login(t, "beta")
			betaTok := w.token(t, "beta")
			c := w.config("alpha", "beta")
			tc.change(c.Tenants["alpha"])
			w.a.ApplyConfig(c)
			if _, err := w.a.Token(context.Background(), "alpha", 0); code(err) != ipc.CodeLoginRequired {
				t.Errorf("alpha after a %s change: %v; want login_required", tc.name, err)
			}
			if w.token(t, "beta") != betaTok {
				t.Errorf("beta's token changed when alpha's %s changed", tc.name)
			}
			if !strings.Contains(w.log.String(), "ca_file changed") {
				t.Errorf("log lacks the reason alpha was dropped:\n%s", w.log)
			}
		})
	}
}

func TestApplyConfigAppliesRefreshMargin(t *testing.T) {
	w := newWorld(t, "alpha")
	w.login(t, "alpha")
	tok := w.token(t, "alpha")
	status := func() ipc.TenantStatus {
		t.Helper()
		st, err := w.a.Status(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return st.Tenants[0]
	}
	before := status()
	if before.NextRefresh == nil || before.AccessExpiresAt == nil {
		t.Fatalf("status before = %+v; want the next refresh and the expiry", before)
	}

	// A margin longer than a third of the lifetime brings the refresh
	// forward, without touching the token.
	life := before.AccessExpiresAt.Sub(*before.NextRefresh) * 3 // about the lifetime
	margin := (life * 3 / 4).Round(time.Minute)
	c := w.config("alpha")
	c.RefreshMargin = margin
	w.a.ApplyConfig(c)
	if w.token(t, "alpha") != tok {
		t.Errorf("a refresh_margin change replaced the token")
	}
	after := status()
	if left := after.AccessExpiresAt.Sub(*after.NextRefresh); left < margin {
		t.Errorf("after refresh_margin = %v the next refresh leaves %v; want at least the margin", margin, left)
	}
	if !strings.Contains(w.log.String(), "refresh_margin_changed") {
		t.Errorf("log lacks refresh_margin_changed:\n%s", w.log)
	}

	// The tenant's own margin wins over the top-level one.
	c = w.config("alpha")
	c.RefreshMargin = margin
	c.Tenants["alpha"].RefreshMargin = margin + 10*time.Minute
	w.a.ApplyConfig(c)
	if st := status(); st.AccessExpiresAt.Sub(*st.NextRefresh) < margin+10*time.Minute {
		t.Errorf("with the tenant's margin %v the next refresh leaves %v", margin+10*time.Minute, st.AccessExpiresAt.Sub(*st.NextRefresh))
	}

	// Back to the default: the 2/3 schedule again.
	w.a.ApplyConfig(w.config("alpha"))
	if st := status(); st.AccessExpiresAt.Sub(*st.NextRefresh) > margin {
		t.Errorf("back to the default, the next refresh leaves %v; want the 2/3 schedule", st.AccessExpiresAt.Sub(*st.NextRefresh))
	}
}

func TestConfigErrorKeepsSessionsAndShows(t *testing.T) {
	w := newWorld(t, "alpha")
	w.login(t, "alpha")
	tok := w.token(t, "alpha")
	w.a.SetConfigError(errors.New("config.toml:3: tenants.alpha.base_url: must be https"))
	st, _ := w.a.Status(context.Background())
	if !strings.Contains(st.ConfigError, "config.toml:3") {
		t.Errorf("status config_error = %q", st.ConfigError)
	}
	if w.token(t, "alpha") != tok {
		t.Errorf("a config error replaced the token")
	}
	w.a.ApplyConfig(w.config("alpha"))
	if st, _ := w.a.Status(context.Background()); st.ConfigError != "" {
		t.Errorf("config_error after a good config = %q", st.ConfigError)
	}
}

func TestStatusAndLogsHoldNoSecret(t *testing.T) {
	w := newWorld(t, "alpha")
	w.login(t, "alpha")
	tok := w.token(t, "alpha")
	// An hour later (the refresher's timer has not fired: the clock jumped),
	// asking for 3.5 h forces a refresh.
	w.clock.Advance(time.Hour)
	if _, err := w.a.Token(context.Background(), "alpha", 3*time.Hour+30*time.Minute); err != nil {
		t.Fatalf("on-demand refresh: %v", err)
	}
	st, err := w.a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(st)
	clients := w.fakes["alpha"].Clients()
	if len(clients) != 1 {
		t.Fatalf("clients = %d; want 1 registered", len(clients))
	}
	for _, secret := range []string{tok, "pw-alpha", clients[0].ClientKey, w.token(t, "alpha")} {
		if strings.Contains(string(js), secret) {
			t.Errorf("status holds a secret")
		}
		if strings.Contains(w.log.String(), secret) {
			t.Errorf("log holds a secret:\n%s", w.log.String())
		}
	}
	if st.Tenants[0].RefreshCount != 1 || st.Tenants[0].State != ipc.StateReady {
		t.Errorf("status = %+v; want ready with refresh_count 1", st.Tenants[0])
	}
}

func TestStatusGivesTokenLifetime(t *testing.T) {
	w := newWorld(t, "alpha")
	w.login(t, "alpha")
	st, err := w.a.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ts := st.Tenants[0]
	if ts.AccessIssuedAt == nil || ts.AccessExpiresAt == nil {
		t.Fatalf("status = %+v; want access_issued_at and access_expires_at", ts)
	}
	if life := ts.AccessExpiresAt.Sub(*ts.AccessIssuedAt); life != tapistest.DefaultAccessTTL {
		t.Errorf("access_expires_at - access_issued_at = %v; want the tenant's token lifetime %v", life, tapistest.DefaultAccessTTL)
	}
}

func TestTokenErrors(t *testing.T) {
	w := newWorld(t, "alpha", "beta")
	cases := []struct {
		name     string
		tenant   string
		minValid time.Duration
		want     string
	}{
		{"not logged in", "alpha", 0, ipc.CodeLoginRequired},
		{"no default among two", "", 0, ipc.CodeBadRequest},
		{"bad name", "Not A Name!", 0, ipc.CodeBadRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.a.Token(context.Background(), tc.tenant, tc.minValid)
			if got := code(err); got != tc.want {
				t.Errorf("Token(%q) error code = %q (%v); want %q", tc.tenant, got, err, tc.want)
			}
		})
	}
	w.login(t, "alpha")
	if _, err := w.a.Token(context.Background(), "alpha", 5*time.Hour); code(err) != ipc.CodeUnsatisfiable {
		t.Errorf("min_valid beyond the lifetime: %v; want %s", err, ipc.CodeUnsatisfiable)
	}
}

func TestImport(t *testing.T) {
	w := newWorld(t, "alpha", "beta")
	fake := w.fakes["alpha"]
	access, _ := fake.IssueTokens("jdoe", "")
	foreign, _ := w.fakes["beta"].IssueTokens("jdoe", "")
	expired := fake.SignClaims(map[string]any{"jti": "x", "iss": fake.URL() + "/v3/tokens", "tapis/token_type": "access",
		"tapis/tenant_id": "alpha", "tapis/username": "jdoe", "exp": time.Now().Add(-time.Hour).Unix()})
	bad := []struct{ name, token, want string }{
		{"garbage", "not-a-jwt", "not a Tapis access token"},
		{"expired", expired, "expired"},
		{"foreign issuer", foreign, "issued by"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := w.a.Import(context.Background(), &ipc.ImportRequest{Tenant: "alpha", AccessToken: tc.token})
			if code(err) != ipc.CodeBadRequest || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("import %s: %v; want bad_request mentioning %q", tc.name, err, tc.want)
			}
		})
	}
	st, err := w.a.Import(context.Background(), &ipc.ImportRequest{Tenant: "alpha", AccessToken: access})
	if err != nil || st.State != ipc.StateAccessOnly {
		t.Fatalf("import: %+v, %v; want access_only", st, err)
	}
	if w.token(t, "alpha") != access {
		t.Errorf("imported token not served")
	}
	if _, err := w.a.Token(context.Background(), "alpha", 5*time.Hour); code(err) != ipc.CodeLoginRequired {
		t.Errorf("access-only beyond its life: %v; want login_required", err)
	}
	// A refused import left the session alone.
	_, _ = w.a.Import(context.Background(), &ipc.ImportRequest{Tenant: "alpha", AccessToken: "junk"})
	if w.token(t, "alpha") != access {
		t.Errorf("a refused import replaced the session")
	}
}

// TestLoginDropsUnusedClient: when the grant after registering a client
// fails, the client is deleted again, so retried logins do not pile up
// clients upstream.
func TestLoginDropsUnusedClient(t *testing.T) {
	w := newWorld(t, "alpha")
	fake := w.fakes["alpha"]
	fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "password", Times: 1}) // the first grant passes
	fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "password", Status: http.StatusServiceUnavailable, Times: 1})
	_, err := w.a.Login(context.Background(), &ipc.LoginRequest{Tenant: "alpha", Password: "pw-alpha"})
	if code(err) != ipc.CodeUpstreamUnavailable {
		t.Fatalf("login with the second grant failing: %v; want upstream_unavailable", err)
	}
	clients := fake.Clients()
	if len(clients) != 1 || clients[0].Active {
		t.Fatalf("clients upstream after the failed login = %+v; want the one registered, deleted", clients)
	}
	w.login(t, "alpha") // the next try registers afresh and works
	active := 0
	for _, c := range fake.Clients() {
		if c.Active {
			active++
		}
	}
	if active != 1 {
		t.Errorf("active clients after a good login = %d; want 1", active)
	}
}

// The agent answers the helper's token requests at once when it can.
var _ ipcserver.InstantTokener = (*Agent)(nil)

func TestTokenInstant(t *testing.T) {
	w := newWorld(t, "alpha")
	if _, ok := w.a.TokenInstant("alpha", time.Minute); ok {
		t.Fatalf("TokenInstant before login answered")
	}
	w.login(t, "alpha")
	got, ok := w.a.TokenInstant("alpha", time.Minute)
	if !ok || got.AccessToken != w.token(t, "alpha") {
		t.Fatalf("TokenInstant = %+v, %v; want the token Token gives", got, ok)
	}
	if got, ok := w.a.TokenInstant("", -1); !ok || got.Tenant != "alpha" {
		t.Errorf("TokenInstant for the default tenant = %+v, %v; want alpha's token", got, ok)
	}
	if _, ok := w.a.TokenInstant("nope", time.Minute); ok {
		t.Errorf("TokenInstant answered for an unknown tenant")
	}
	left := time.Until(got.ExpiresAt)
	if _, ok := w.a.TokenInstant("alpha", left+time.Minute); ok {
		t.Errorf("TokenInstant answered for more validity than the token has; Token must refresh first")
	}
	// On the wall clock: after a sleep past expiry there is nothing to
	// give at once.
	w.clock.Advance(left + time.Minute)
	if _, ok := w.a.TokenInstant("alpha", 0); ok {
		t.Errorf("TokenInstant answered with an expired token")
	}
	calls := w.fakes["alpha"].GrantCalls("refresh_token")
	if calls != 0 {
		t.Errorf("TokenInstant made %d refresh calls; want none", calls)
	}
}

// warnings returns the status warnings of st but the one about the test
// tenants' plain-http loopback base URL (TestPlainHTTPWarning).
func warnings(st ipc.TenantStatus) []string {
	var ws []string
	for _, w := range st.Warnings {
		if w != plainHTTPWarning(st.BaseURL) {
			ws = append(ws, w)
		}
	}
	return ws
}

// TestPlainHTTPWarning: a plain-http base URL is a warning in status, with
// a session and without; https is not.
func TestPlainHTTPWarning(t *testing.T) {
	w := newWorld(t, "dev")
	cfg := w.config("dev")
	cfg.Tenants["tls"] = &config.Tenant{Name: "tls", BaseURL: "https://tls.example.org"}
	w.a.ApplyConfig(cfg)
	want := "base_url " + w.fakes["dev"].URL() + " is plain http: on a machine shared with other users, whoever listens on that port reads the password"
	if st := w.a.tenantStatus("dev"); len(st.Warnings) != 1 || !strings.HasPrefix(st.Warnings[0], want) {
		t.Errorf("logged out: warnings = %q; want %q", st.Warnings, want)
	}
	w.login(t, "dev")
	if st := w.a.tenantStatus("dev"); len(st.Warnings) != 1 || !strings.HasPrefix(st.Warnings[0], want) {
		t.Errorf("logged in: warnings = %q; want %q", st.Warnings, want)
	}
	if st := w.a.tenantStatus("tls"); len(st.Warnings) != 0 {
		t.Errorf("https tenant: warnings = %q; want none", st.Warnings)
	}
}
