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
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/internal/slurm"
	"github.com/tapis-agent/tapis-agent/internal/suggest"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/refresher"
)

// maxRefreshes bounds the upstream refreshes in flight across all tenants.
const maxRefreshes = 8

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
	// UpstreamTimeout bounds one upstream call; 0 means 30s.
	UpstreamTimeout time.Duration
	// Reload re-reads the config for POST /v1/reload; nil: the agent keeps
	// the config it has.
	Reload func() error
	// Warnings are the agent's own, shown in status: memory not locked,
	// say. Each says what is at risk and what to do.
	Warnings []string
	// DevicePoll is how often a device-code login asks upstream whether
	// the user approved it; 0 means DefaultDevicePoll.
	DevicePoll time.Duration
	// DeviceWait bounds one LoginRequest with Wait; 0 means 25s.
	DeviceWait time.Duration
	// PasswordTimeout bounds one run of a tenant's password_command; 0
	// means DefaultPasswordTimeout.
	PasswordTimeout time.Duration

	// Scheduler tells the states of leased batch jobs; nil means Slurm's
	// commands on PATH (slurm.Commands).
	Scheduler Scheduler
	// JobPoll is how often the scheduler is asked about leased jobs; 0
	// means DefaultJobPoll. JobGrace is how long it may not know a job
	// before the job's lease ends; 0 means DefaultJobGrace.
	JobPoll, JobGrace time.Duration
	// LeaseDir is where lease files go by default. When set, New also
	// looks there for the files an earlier agent kept, and warns of them;
	// "" means lease.Dir(), without that look.
	LeaseDir string
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

	sinksMu sync.Mutex             // guards sinks; never held across file I/O
	sinks   map[string]*sinkWriter // token file path → its writer

	leaseMu sync.Mutex // guards the fields below and every jobLease's mutable fields
	leases  map[leaseKey]*jobLease
	orphans map[leaseKey]string // lease files an earlier agent kept, by job and tenant
	polling bool                // pollJobs runs

	cbMu      sync.Mutex              // guards cbServers
	cbServers map[int]*callbackServer // browser-login listeners, by port

	mu           sync.Mutex // guards the fields below and every tenantState
	cfg          *config.Config
	configErr    error
	tenants      map[string]*tenantState // tenants with a session, a login or a login error
	browserFlows map[string]*deviceFlow  // browser logins by flow id, pending or just ended
	closed       bool
}

// tenantState is what the agent holds for one tenant beyond its config.
// Its fields are guarded by Agent.mu. An entry whose fields are all zero is
// removed (see pruneLocked).
type tenantState struct {
	session    *session         // nil when not logged in
	flow       *deviceFlow      // the latest device-code or browser login, pending or ended
	loginErr   string           // why the last background login failed; "" for none
	unattended *unattendedLogin // the password_command login running or waiting to retry
}

// stateLocked returns the entry of tenant name, adding it if needed. The
// caller holds a.mu.
func (a *Agent) stateLocked(name string) *tenantState {
	ts := a.tenants[name]
	if ts == nil {
		ts = &tenantState{}
		a.tenants[name] = ts
	}
	return ts
}

// pruneLocked removes the entry of tenant name if it holds nothing. The
// caller holds a.mu.
func (a *Agent) pruneLocked(name string) {
	if ts := a.tenants[name]; ts != nil && *ts == (tenantState{}) {
		delete(a.tenants, name)
	}
}

// retrying reports whether the tenant's unattended login waits to retry
// after a transient failure, and when it tries next (zero while an attempt
// runs). The caller holds Agent.mu.
func (ts *tenantState) retrying() (bool, time.Time) {
	u := ts.unattended
	if u == nil || u.attempts == 0 {
		return false, time.Time{}
	}
	return true, u.retryAt
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
	if opts.Scheduler == nil {
		opts.Scheduler = slurm.Commands{}
	}
	if opts.JobPoll <= 0 {
		opts.JobPoll = DefaultJobPoll
	}
	if opts.JobGrace <= 0 {
		opts.JobGrace = DefaultJobGrace
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &Agent{
		opts:    opts,
		log:     opts.Logger,
		limiter: refresher.NewLimiter(maxRefreshes),
		started: opts.Now(),
		ctx:     ctx,
		cancel:  cancel,
		cfg:     opts.Config,
		tenants: make(map[string]*tenantState),
		sinks:   make(map[string]*sinkWriter),
		leases:  make(map[leaseKey]*jobLease),
		orphans: make(map[leaseKey]string),

		cbServers:    make(map[int]*callbackServer),
		browserFlows: make(map[string]*deviceFlow),
	}
	if opts.LeaseDir != "" {
		a.findOrphanLeases()
	}
	return a
}

// Close stops every refresher and drops every token the agent holds.
func (a *Agent) Close() {
	a.mu.Lock()
	a.closed = true
	var sessions []*session
	for name, ts := range a.tenants {
		if ts.session != nil {
			sessions = append(sessions, ts.session)
			ts.session = nil
			a.pruneLocked(name)
		}
	}
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
	type update struct {
		s *session
		t *config.Tenant
	}
	var keep []update
	a.mu.Lock()
	old := a.cfg
	a.cfg = cfg
	a.configErr = nil
	for name, ts := range a.tenants {
		s := ts.session
		if s == nil {
			continue
		}
		if why := dropReason(s, old, cfg); why != "" {
			a.log.Info("session_dropped", "tenant", name, "reason", why)
			drop = append(drop, s)
			ts.session = nil
			a.pruneLocked(name)
		} else if now := cfg.Lookup(name); now != nil {
			keep = append(keep, update{s, now})
		}
	}
	a.mu.Unlock()
	// Token files are written and removed outside a.mu: a file that
	// blocks must not hold up another tenant's token or status.
	for _, u := range keep {
		u.s.setTenant(u.t, cfg.RefreshMargin)
	}
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

// dropReason says why putting cfg in force instead of old ends session s,
// or returns "" when s stays.
func dropReason(s *session, old, cfg *config.Config) string {
	was, now := old.Lookup(s.name), cfg.Lookup(s.name)
	switch {
	case was == nil && now == nil:
		// Logged in without config: the config never spoke of it.
		return ""
	case now == nil:
		return "tenant removed from config"
	case !s.tenantSnapshot().SameSession(now):
		return "tenant's base_url, username, client or ca_file changed"
	}
	return ""
}

// SessionsEnding returns the names of the tenants whose sessions
// ApplyConfig(cfg) would end, sorted.
func (a *Agent) SessionsEnding(cfg *config.Config) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ending []string
	for name, ts := range a.tenants {
		if ts.session != nil && dropReason(ts.session, a.cfg, cfg) != "" {
			ending = append(ending, name)
		}
	}
	sort.Strings(ending)
	return ending
}

// session returns the session of name, or nil.
func (a *Agent) session(name string) *session {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ts := a.tenants[name]; ts != nil {
		return ts.session
	}
	return nil
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
	if len(a.cfg.Tenants) == 0 {
		// Without config, the one tenant logged in is the default.
		only := ""
		for n, ts := range a.tenants {
			if ts.session == nil {
				continue
			}
			if only != "" {
				only = ""
				break
			}
			only = n
		}
		if only != "" {
			return only, nil
		}
	}
	return "", a.noTenantLocked()
}

// noTenantLocked is the error for a call that names no tenant when the
// config names no default: it lists the tenants to choose from. The
// caller holds a.mu.
func (a *Agent) noTenantLocked() error {
	names := a.knownNamesLocked()
	msg := "no tenant named and no default tenant"
	var hint string
	switch len(names) {
	case 0:
		msg += "; the agent holds none"
		hint = "log in to one: tapis-token login TENANT (e.g. designsafe)"
	default:
		msg += "; the agent knows " + strings.Join(names, ", ")
		where := "the config"
		if a.cfg.Path != "" {
			where = a.cfg.Path
		}
		hint = "name one (tapis-token " + names[0] + "), or set default_tenant = \"" + names[0] + "\" in " + where
	}
	if a.configErr != nil {
		// The file may name a default that is not in force: say so, not
		// "set default_tenant".
		hint = "name one (tapis-token TENANT); " + configNote(a.configErr)
	}
	return &ipc.Error{Code: ipc.CodeBadRequest, Message: msg, Hint: hint}
}

// knownNamesLocked returns the tenants the agent knows, sorted: the
// configured ones and those with a session or a login. The caller holds
// a.mu.
func (a *Agent) knownNamesLocked() []string {
	names := a.cfg.TenantNames()
	for n := range a.tenants {
		if !slices.Contains(names, n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// configNote says that the config file is invalid, where, and that the
// agent runs without what it says: for the hint of an answer that the
// file could change.
func configNote(err error) string {
	first, _, _ := strings.Cut(err.Error(), "\n")
	return "the config file is not in force (" + first + "); fix it if it is wrong, and the agent reloads it"
}

// unknownTenantHint is the hint for tenant name that the agent knows
// nothing of: the known tenant it is a likely typo of, else how to log in;
// and the invalid config that may be why.
func (a *Agent) unknownTenantHint(name string) string {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cfg.Lookup(name) != nil || a.tenants[name] != nil {
		return ""
	}
	hint := "tapis-token login " + name
	if s := suggest.Closest(name, a.knownNamesLocked()); s != "" {
		hint = "did you mean " + s + "? (tapis-token " + s + "); else log in to " + name + ": tapis-token login " + name
	}
	if a.configErr != nil {
		hint += "; " + configNote(a.configErr)
	}
	return hint
}

// Token answers GET /v1/token: the current access token of tenant, valid for
// at least minValid on the wall clock, refreshing it first when needed.
func (a *Agent) Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
	name, err := a.resolve(tenant)
	if err != nil {
		return nil, err
	}
	s := a.session(name)
	var refused error // the session's login_required answer
	if s != nil {
		resp, err := s.token(ctx, minValid)
		var ie *ipc.Error
		if err == nil || !errors.As(err, &ie) || ie.Code != ipc.CodeLoginRequired {
			return resp, err
		}
		refused = err
	}
	// A password_command login running now (at start, or after Tapis
	// rejected the refresh token) answers this caller when it ends within
	// the caller's time.
	if a.awaitUnattended(ctx, name) {
		if ns := a.session(name); ns != nil && ns != s {
			return ns.token(ctx, minValid)
		}
		if err := a.unattendedError(name); err != nil {
			return nil, err
		}
	}
	if refused != nil {
		return nil, refused
	}
	if err := a.loginRetryError(name); err != nil {
		return nil, err
	}
	e := loginRequired(name, "not logged in")
	if h := a.unknownTenantHint(name); h != "" {
		e.Hint = h
	}
	return nil, e
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
	t := s.tok.Load()
	if t == nil || !t.validFor(s.now(), minValid) {
		return nil, false
	}
	return s.answer(t), true
}

// Status answers GET /v1/status: every configured tenant, and every other
// tenant the agent holds a session, a device-code login, a login error or
// a retrying unattended login for.
func (a *Agent) Status(ctx context.Context) (*ipc.StatusResponse, error) {
	// tenantView is a snapshot of one tenantState, read under a.mu.
	type tenantView struct {
		name     string
		session  *session
		flow     *deviceFlow
		loginErr string
		retrying bool
		retryAt  time.Time
	}
	a.mu.Lock()
	cfg, cfgErr := a.cfg, a.configErr
	views := make([]tenantView, 0, len(a.tenants)+len(cfg.Tenants))
	for n, ts := range a.tenants {
		v := tenantView{name: n, session: ts.session, flow: ts.flow, loginErr: ts.loginErr}
		v.retrying, v.retryAt = ts.retrying()
		if v.session != nil || v.flow != nil || v.loginErr != "" || v.retrying || cfg.Lookup(n) != nil {
			views = append(views, v)
		}
	}
	for n := range cfg.Tenants {
		if a.tenants[n] == nil {
			views = append(views, tenantView{name: n})
		}
	}
	a.mu.Unlock()
	sort.Slice(views, func(i, j int) bool { return views[i].name < views[j].name })

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
	resp.Leases = a.leaseStatuses()
	resp.Warnings = append(slices.Clip(a.opts.Warnings), a.leaseWarnings()...)
	def := cfg.DefaultTenantName()
	for _, v := range views {
		var st ipc.TenantStatus
		if v.session != nil {
			st = v.session.status()
		} else {
			st = loggedOutStatus(cfg, v.name)
		}
		if v.loginErr != "" && st.State == ipc.StateLoginRequired {
			// The failed re-login says more than the refusal before it.
			st.LastError = v.loginErr
		}
		if v.retrying && st.State == ipc.StateLoginRequired {
			st.State = ipc.StateRetrying
			st.NextRefresh = timePtr(v.retryAt)
		}
		if f := v.flow; f != nil && f.pending() && f.browser != nil {
			st.State = ipc.StateBrowserPending
			b := *f.browser
			st.Browser = &b
		} else if f != nil && f.pending() {
			st.State = ipc.StateDevicePending
			code := f.code
			st.Device = &code
		}
		st.Default = v.name == def
		resp.Tenants = append(resp.Tenants, st)
	}
	return resp, nil
}

// loggedOutStatus is the status of tenant name without a session.
func loggedOutStatus(cfg *config.Config, name string) ipc.TenantStatus {
	t := cfg.TenantOrDefault(name)
	st := ipc.TenantStatus{Tenant: name, BaseURL: t.BaseURL, Username: t.Username,
		ClientID: t.ClientID, State: ipc.StateLoginRequired}
	if w := plainHTTPWarning(t.BaseURL); w != "" {
		st.Warnings = append(st.Warnings, w)
	}
	return st
}

// plainHTTPWarning warns of a plain-http base URL, which the config allows
// on loopback only: on a shared node any user may have bound that port
// first, and would read the password and the tokens. "" for https.
func plainHTTPWarning(baseURL string) string {
	if !strings.HasPrefix(baseURL, "http://") {
		return ""
	}
	return "base_url " + baseURL + " is plain http: on a machine shared with other users, whoever listens on that port reads the password and the tokens; use https, or a port only you can bind"
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
	var s *session
	var f *deviceFlow
	if ts := a.tenants[name]; ts != nil {
		s, f = ts.session, ts.flow
		ts.session = nil
		a.pruneLocked(name)
	}
	cfg := a.cfg
	a.mu.Unlock()
	abandoned := f != nil && f.abandon()
	if s == nil && (abandoned || stopped) {
		st := loggedOutStatus(cfg, name)
		return &st, nil
	}
	if s == nil {
		hint := "see tapis-token status for the tenants the agent holds"
		a.mu.Lock()
		if s := suggest.Closest(name, a.knownNamesLocked()); s != "" {
			hint = "did you mean " + s + "? (tapis-token logout " + s + ")"
		}
		a.mu.Unlock()
		return nil, &ipc.Error{Code: ipc.CodeUnknownTenant,
			Message: fmt.Sprintf("not logged in to %s", name),
			Hint:    hint}
	}
	deleted := s.logout(ctx)
	s.removeSink()
	a.log.Info("logout", "tenant", name)
	st := loggedOutStatus(cfg, name)
	st.ClientDeleted = deleted
	return &st, nil
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
	ts := a.stateLocked(s.name)
	old := ts.session
	ts.session, ts.loginErr = s, ""
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
