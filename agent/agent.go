// Package agent holds the per-tenant sessions of tapis-agent: login and
// logout, the current tokens, their refreshers, and the status the socket
// API reports. An Agent implements ipcserver.Handler.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/refresher"
)

// Options configure an Agent. The zero value of every field has a sensible
// default.
type Options struct {
	Config  *config.Config   // nil: an empty config
	Logger  *slog.Logger     // nil: discard
	Now     func() time.Time // wall clock; nil: time.Now
	Version string           // reported by status
	Socket  string           // reported by status

	// Hostname names the OAuth clients the agent registers; "" asks the OS.
	Hostname string
	// HTTPClient is used for upstream calls of tenants without a ca_file;
	// nil: tapis's default client.
	HTTPClient *http.Client
	// MaxRefreshes bounds upstream refreshes in flight across all tenants;
	// 0 means 8.
	MaxRefreshes int
	// UpstreamTimeout bounds one upstream call; 0 means 30s.
	UpstreamTimeout time.Duration
	// Reload re-reads the config for POST /v1/reload; nil: the agent keeps
	// the config it has.
	Reload func() error
	// DevicePoll is how often a device-code login asks upstream whether
	// the user approved it; 0 means DefaultDevicePoll.
	DevicePoll time.Duration
	// DeviceWait bounds one LoginRequest with Wait; 0 means 25s.
	DeviceWait time.Duration
	// PasswordTimeout bounds one run of a tenant's password_command; 0
	// means DefaultPasswordTimeout.
	PasswordTimeout time.Duration
}

// Agent holds the sessions of every tenant. It is safe for concurrent use.
type Agent struct {
	opts    Options
	log     *slog.Logger
	limiter *refresher.Limiter
	started time.Time

	ctx    context.Context // lives until Close; parent of every refresher and background login
	cancel context.CancelFunc
	wg     sync.WaitGroup // background logins (device code, password_command)

	sinkMu sync.Mutex // serialises writes of token files

	mu        sync.Mutex // guards the fields below
	cfg       *config.Config
	configErr error
	sessions  map[string]*session
	closed    bool
	flows     map[string]*deviceFlow      // the latest device-code login per tenant, pending or ended
	loginErr  map[string]string           // why the last background login of a tenant failed
	unattends map[string]*unattendedLogin // password_command logins running or waiting to retry
}

// New returns an Agent with no sessions. Call Close to stop its refreshers
// and drop every secret it holds.
func New(opts Options) *Agent {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Config == nil {
		opts.Config = &config.Config{Tenants: map[string]*config.Tenant{}}
	}
	if opts.MaxRefreshes <= 0 {
		opts.MaxRefreshes = 8
	}
	if opts.UpstreamTimeout <= 0 {
		opts.UpstreamTimeout = 30 * time.Second
	}
	if opts.Hostname == "" {
		opts.Hostname, _ = os.Hostname()
	}
	if opts.DevicePoll <= 0 {
		opts.DevicePoll = DefaultDevicePoll
	}
	if opts.DeviceWait <= 0 {
		opts.DeviceWait = 25 * time.Second
	}
	if opts.PasswordTimeout <= 0 {
		opts.PasswordTimeout = DefaultPasswordTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Agent{
		opts:      opts,
		log:       opts.Logger,
		limiter:   refresher.NewLimiter(opts.MaxRefreshes),
		started:   opts.Now(),
		ctx:       ctx,
		cancel:    cancel,
		cfg:       opts.Config,
		sessions:  make(map[string]*session),
		flows:     make(map[string]*deviceFlow),
		loginErr:  make(map[string]string),
		unattends: make(map[string]*unattendedLogin),
	}
}

// Close stops every refresher and drops every token the agent holds.
func (a *Agent) Close() {
	a.mu.Lock()
	a.closed = true
	sessions := a.sessions
	a.sessions = make(map[string]*session)
	a.mu.Unlock()
	a.cancel()
	a.wg.Wait()
	for _, s := range sessions {
		// Token files stay: they expire on their own, and a notebook
		// reading one keeps working until then.
		s.close(false)
	}
}

// Config returns the config in force.
func (a *Agent) Config() *config.Config {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cfg
}

// SetConfigError records a problem with the config file: one that could
// not be loaded, or that vanished. The config in force stays; status shows
// err until the next successful ApplyConfig. The caller logs err.
func (a *Agent) SetConfigError(err error) {
	a.mu.Lock()
	a.configErr = err
	a.mu.Unlock()
}

// ApplyConfig puts cfg in force. Sessions of tenants whose base URL,
// username, client and CA file are unchanged (config.Tenant.SameSession)
// keep their tokens; sessions of tenants removed from the config, or
// changed, are dropped.
func (a *Agent) ApplyConfig(cfg *config.Config) {
	var drop []*session
	a.mu.Lock()
	old := a.cfg
	a.cfg = cfg
	a.configErr = nil
	for name, s := range a.sessions {
		was := old.Lookup(name)
		now := cfg.Lookup(name)
		switch {
		case was == nil && now == nil:
			// Logged in without config: the config never spoke of it.
		case now == nil:
			a.log.Info("session_dropped", "tenant", name, "reason", "tenant removed from config")
			drop = append(drop, s)
			delete(a.sessions, name)
		case !s.tenant.SameSession(now):
			a.log.Info("session_dropped", "tenant", name, "reason", "tenant's base_url, username, client or ca_file changed")
			drop = append(drop, s)
			delete(a.sessions, name)
		default:
			s.setTenant(now, cfg.RefreshMargin)
		}
	}
	a.mu.Unlock()
	for _, s := range drop {
		s.close(true)
	}
	a.log.Info("config_applied", "path", cfg.Path, "tenants", len(cfg.Tenants))
	a.stopUnattendedRemoved(cfg)
	for _, name := range cfg.TenantNames() {
		if a.session(name) == nil {
			a.startUnattended(name, "no session")
		}
	}
}

// session returns the session of name, or nil.
func (a *Agent) session(name string) *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[name]
}

// resolve returns the tenant a request means: name, else the default.
func (a *Agent) resolve(name string) (string, error) {
	if name != "" {
		if err := config.ValidTenantName(name); err != nil {
			return "", &ipc.Error{Code: ipc.CodeBadRequest, Message: err.Error(),
				Hint: "tenant names look like designsafe or tacc; see tapis-token status"}
		}
		return name, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if d := a.cfg.DefaultTenantName(); d != "" {
		return d, nil
	}
	if len(a.cfg.Tenants) == 0 && len(a.sessions) == 1 {
		for n := range a.sessions {
			return n, nil
		}
	}
	return "", &ipc.Error{Code: ipc.CodeBadRequest,
		Message: "no tenant named and no default tenant",
		Hint:    "name one (tapis-token TENANT) or set default_tenant in the config"}
}

// Token answers GET /v1/token: the current access token of tenant, valid for
// at least minValid on the wall clock, refreshing it first when needed.
func (a *Agent) Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
	name, err := a.resolve(tenant)
	if err != nil {
		return nil, err
	}
	s := a.session(name)
	if s == nil {
		if err := a.loginRetryError(name); err != nil {
			return nil, err
		}
		return nil, loginRequired(name, "not logged in")
	}
	return s.token(ctx, minValid)
}

// TokenInstant answers a token request at once when the tenant's session
// holds a token valid for minValid on the wall clock, as Token would; it
// reports false when Token has more to do (ipcserver.InstantTokener).
func (a *Agent) TokenInstant(tenant string, minValid time.Duration) (*ipc.TokenResponse, bool) {
	name, err := a.resolve(tenant)
	if err != nil {
		return nil, false
	}
	s := a.session(name)
	if s == nil {
		return nil, false
	}
	t, minValid := s.current(minValid)
	if t == nil || t.expiresAt.Sub(s.now()) < minValid {
		return nil, false
	}
	return s.answer(t), true
}

// Status answers GET /v1/status.
func (a *Agent) Status(ctx context.Context) (*ipc.StatusResponse, error) {
	a.mu.Lock()
	cfg, cfgErr := a.cfg, a.configErr
	names := make(map[string]bool)
	for n := range cfg.Tenants {
		names[n] = true
	}
	sessions := make(map[string]*session, len(a.sessions))
	for n, s := range a.sessions {
		names[n] = true
		sessions[n] = s
	}
	flows := make(map[string]*deviceFlow, len(a.flows))
	for n, f := range a.flows {
		names[n] = true
		flows[n] = f
	}
	loginErr := make(map[string]string, len(a.loginErr))
	for n, e := range a.loginErr {
		names[n] = true
		loginErr[n] = e
	}
	retryAt := make(map[string]time.Time)
	for n := range a.unattends {
		if retrying, next := a.loginRetryStateLocked(n); retrying {
			names[n] = true
			retryAt[n] = next
		}
	}
	a.mu.Unlock()

	resp := &ipc.StatusResponse{
		Version:   a.opts.Version,
		PID:       os.Getpid(),
		Socket:    a.opts.Socket,
		Config:    cfg.Path,
		StartedAt: a.started.UTC(),
		Tenants:   []ipc.TenantStatus{},
	}
	if cfgErr != nil {
		resp.ConfigError = cfgErr.Error()
	}
	def := cfg.DefaultTenantName()
	sorted := make([]string, 0, len(names))
	for n := range names {
		sorted = append(sorted, n)
	}
	sort.Strings(sorted)
	for _, n := range sorted {
		var st ipc.TenantStatus
		if s := sessions[n]; s != nil {
			st = s.status()
		} else {
			t := cfg.TenantOrDefault(n)
			st = ipc.TenantStatus{Tenant: n, BaseURL: t.BaseURL, Username: t.Username,
				ClientID: t.ClientID, State: ipc.StateLoginRequired}
		}
		if e := loginErr[n]; e != "" && st.State == ipc.StateLoginRequired {
			// The failed re-login says more than the refusal before it.
			st.LastError = e
		}
		if next, ok := retryAt[n]; ok && st.State == ipc.StateLoginRequired {
			st.State = ipc.StateRetrying
			st.NextRefresh = timePtr(next)
		}
		if f := flows[n]; f != nil && f.pending() {
			st.State = ipc.StateDevicePending
			code := f.code
			st.Device = &code
		}
		st.Default = n == def
		resp.Tenants = append(resp.Tenants, st)
	}
	return resp, nil
}

// Reload answers POST /v1/reload through Options.Reload.
func (a *Agent) Reload(ctx context.Context) (*ipc.StatusResponse, error) {
	if a.opts.Reload != nil {
		if err := a.opts.Reload(); err != nil {
			return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: err.Error(),
				Hint: "fix the config file; the agent keeps the config it had"}
		}
	}
	return a.Status(ctx)
}

// Logout revokes the tenant's tokens upstream (best effort) and drops them.
func (a *Agent) Logout(ctx context.Context, tenant string) (*ipc.TenantStatus, error) {
	name, err := a.resolve(tenant)
	if err != nil {
		return nil, err
	}
	// First the unattended login, so that it cannot install a session
	// after this.
	stopped := a.stopUnattended(name, true)
	a.mu.Lock()
	s := a.sessions[name]
	delete(a.sessions, name)
	cfg := a.cfg
	f := a.flows[name]
	a.mu.Unlock()
	abandoned := f != nil && f.abandon()
	if s == nil && (abandoned || stopped) {
		t := cfg.TenantOrDefault(name)
		return &ipc.TenantStatus{Tenant: name, BaseURL: t.BaseURL, Username: t.Username,
			ClientID: t.ClientID, State: ipc.StateLoginRequired}, nil
	}
	if s == nil {
		return nil, &ipc.Error{Code: ipc.CodeUnknownTenant,
			Message: fmt.Sprintf("not logged in to %s", name),
			Hint:    "see tapis-token status for the tenants the agent holds"}
	}
	s.logout(ctx)
	s.removeSink()
	t := cfg.TenantOrDefault(name)
	a.log.Info("logout", "tenant", name)
	return &ipc.TenantStatus{Tenant: name, BaseURL: t.BaseURL, Username: t.Username,
		ClientID: t.ClientID, State: ipc.StateLoginRequired}, nil
}

// install makes s the session of its tenant, dropping the one it replaces.
func (a *Agent) install(s *session) error {
	// A rejected refresh token is a cue for password_command, if the
	// tenant has one by then.
	s.onRejected = func() { a.startUnattended(s.name, "refresh token rejected") }
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		s.close(false)
		return errors.New("agent is shutting down")
	}
	old := a.sessions[s.name]
	a.sessions[s.name] = s
	delete(a.loginErr, s.name)
	a.mu.Unlock()
	if old != nil {
		old.close(false)
	}
	s.start(a.ctx)
	if t := s.tok.Load(); t != nil {
		s.writeSink(t)
		s.logRefreshExpiry(t)
	}
	return nil
}

// loginRequired is the error for a tenant without a usable session.
func loginRequired(tenant, why string) *ipc.Error {
	return &ipc.Error{Code: ipc.CodeLoginRequired,
		Message: fmt.Sprintf("%s: %s", tenant, why),
		Hint:    "tapis-token login " + tenant}
}
