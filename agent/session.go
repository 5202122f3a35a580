package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/internal/human"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/refresher"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// DefaultMinValid is the validity a token request that names none asks
// for; a token that lives less than twice that is asked for half its
// lifetime instead (see tokenSet.need).
const DefaultMinValid = 60 * time.Second

// tokenSet is one generation of a session's tokens. It is never modified
// after it is stored: a refresh stores a new one, so readers need no lock.
type tokenSet struct {
	access       secret.Value
	accessJTI    string
	issuedAt     time.Time
	expiresAt    time.Time
	refresh      secret.Value // zero for an imported access-only token
	refreshJTI   string
	refreshExp   time.Time
	refreshCount int
	// upstream is how long a token from a refresh lives, when known: the
	// last refresh's answer, or a first token that got the tenant's
	// default lifetime (any grant but device code, whose lifetime the
	// user chose). Zero when unknown.
	upstream time.Duration
	// dead says why upstream no longer accepts the access token (see
	// checkAccess); a dead set holds no token and is never served.
	dead string
}

// newTokenSet converts what upstream answered. The access token's issue
// time is derived from its expiry and TTL: Tapis sends no iat claim.
func newTokenSet(t *tapis.Token, now time.Time) *tokenSet {
	ts := &tokenSet{
		access:     t.AccessToken,
		accessJTI:  t.AccessJTI,
		expiresAt:  t.AccessExpiresAt,
		issuedAt:   now,
		refresh:    t.RefreshToken,
		refreshJTI: t.RefreshJTI,
		refreshExp: t.RefreshExpiresAt,
	}
	if t.AccessTTL > 0 {
		ts.issuedAt = t.AccessExpiresAt.Add(-t.AccessTTL)
	}
	if c, err := jwt.Decode(t.AccessToken.Reveal()); err == nil {
		if n, ok := c.RefreshCount(); ok {
			ts.refreshCount = int(n)
		}
		switch c.String("tapis/grant_type") {
		case "password", "authorization_code", "refresh_token":
			ts.upstream = ts.expiresAt.Sub(ts.issuedAt)
		}
	}
	return ts
}

// keepLonger returns the generation to hold after a refresh answered
// fresh: fresh itself, or, when its access token dies before old's (a
// device-code token lives days, its refreshes the tenant's default
// hours), old's access token with fresh's rotated refresh token. A
// refresh never makes the token served worse.
func keepLonger(old, fresh *tokenSet) (*tokenSet, bool) {
	if !fresh.expiresAt.Before(old.expiresAt) {
		return fresh, false
	}
	kept := *fresh
	kept.access, kept.accessJTI = old.access, old.accessJTI
	kept.issuedAt, kept.expiresAt = old.issuedAt, old.expiresAt
	kept.upstream = fresh.expiresAt.Sub(fresh.issuedAt)
	return &kept, true
}

// need returns the validity a caller asking minValid needs from t:
// minValid itself, or for a caller that named none (negative),
// DefaultMinValid, or half the lifetime of tokens that live less than
// twice that.
func (t *tokenSet) need(minValid time.Duration) time.Duration {
	if minValid < 0 {
		return min(DefaultMinValid, t.expiresAt.Sub(t.issuedAt)/2)
	}
	return minValid
}

// validFor reports whether the access token stays valid at now for the
// validity a caller asking minValid needs (see need). now is read from the
// wall clock at every answer: timers stop while a laptop or VM sleeps, so
// a token may have died unnoticed.
func (t *tokenSet) validFor(now time.Time, minValid time.Duration) bool {
	return t.dead == "" && t.expiresAt.Sub(now) >= t.need(minValid)
}

func (t *tokenSet) lifetime() refresher.Lifetime {
	return refresher.Lifetime{IssuedAt: t.issuedAt, ExpiresAt: t.expiresAt, Upstream: t.upstream}
}

// session is one tenant's login: its tokens, the OAuth client that
// refreshes them, and the refresher that keeps them fresh.
type session struct {
	name       string
	api        *tapis.Client
	username   string
	client     *tapis.ClientCredentials // nil for an access-only session
	registered bool                     // the agent registered client for this login
	log        *slog.Logger
	now        func() time.Time

	tok atomic.Pointer[tokenSet] // nil once logged out
	ref *refresher.Refresher     // nil for an access-only session

	// onRejected, if set, is called when upstream rejects the refresh
	// token for good, before the callers waiting for the refresh learn of
	// it (the agent's unattended re-login). It must not block.
	onRejected func()

	// sinks returns the writer of a token file: the agent's, shared by
	// every session writing that file, so that a superseded session's
	// write never lands after its successor's.
	sinks func(path string) *sinkWriter

	mu           sync.Mutex // guards tenant, margin, sinkWarning, expiryLogged, accessNote
	tenant       *config.Tenant
	margin       time.Duration // the refresh_margin in force; 0 for the default schedule
	sinkWarning  string        // why the token file could not be written; "" when fine
	expiryLogged time.Time     // when the refresh token's coming expiry was last logged
	// accessNote says why a session whose refresh token upstream
	// rejected still serves its access token (see checkAccess).
	accessNote string
}

// sessionParams carries what newSession needs from the agent.
type sessionParams struct {
	name       string
	tenant     *config.Tenant
	api        *tapis.Client
	username   string
	client     *tapis.ClientCredentials
	registered bool
	margin     time.Duration
}

func (a *Agent) newSession(p sessionParams, ts *tokenSet) *session {
	s := &session{
		name:       p.name,
		api:        p.api,
		username:   p.username,
		client:     p.client,
		registered: p.registered,
		log:        a.log.With("tenant", p.name),
		now:        a.opts.Now,
		tenant:     p.tenant,
		sinks:      a.sinkWriter,
	}
	s.tok.Store(ts)
	s.margin = effectiveMargin(p.tenant, p.margin)
	if !ts.refresh.IsZero() && p.client != nil {
		s.ref = refresher.New(refresher.Config{
			Refresh:    s.refresh,
			Definitive: tapis.IsDefinitive,
			Margin:     s.margin,
			Now:        a.opts.Now,
			Limiter:    a.limiter,
			Logger:     s.log,
		}, ts.lifetime())
	}
	return s
}

// start runs the session's refresher until ctx ends or close.
func (s *session) start(ctx context.Context) {
	if s.ref != nil {
		go s.ref.Run(ctx)
	}
}

// close stops the refresher and drops the tokens. With removeSink it also
// removes the token file: the tenant is gone, not merely replaced.
func (s *session) close(removeSink bool) {
	if s.ref != nil {
		s.ref.Stop()
	}
	s.tok.Store(nil)
	if removeSink {
		s.removeSink()
	}
}

// effectiveMargin is the refresh_margin of tenant t: its own, else the
// config's top-level one (global); 0 selects the refresher's default.
func effectiveMargin(t *config.Tenant, global time.Duration) time.Duration {
	if t != nil && t.RefreshMargin > 0 {
		return t.RefreshMargin
	}
	return global
}

// setTenant puts the reloaded settings t of the session's tenant in force;
// global is the config's top-level refresh_margin. A changed
// refresh_margin reschedules the next refresh; a changed token_file or
// token_format moves the token to the new file.
func (s *session) setTenant(t *config.Tenant, global time.Duration) {
	margin := effectiveMargin(t, global)
	s.mu.Lock()
	old := sinkOf(s.tenant)
	s.tenant = t
	marginChanged := margin != s.margin
	s.margin = margin
	s.mu.Unlock()
	if marginChanged && s.ref != nil {
		s.ref.SetMargin(margin)
		s.log.Info("refresh_margin_changed", "margin", marginText(margin))
	}
	if sinkOf(t) == old {
		return
	}
	if old.path != "" {
		s.removeSinkFile(old)
	}
	if ts := s.tok.Load(); ts != nil {
		s.writeSink(ts)
	}
}

func (s *session) baseURL() string { return s.api.BaseURL() }

// refresh is the session's refresher.Func: one refresh grant, then both
// tokens replaced at once. The old generation is dropped; Go strings cannot
// be overwritten in place, so dropping every reference is what wiping means
// here (the process is non-dumpable and its memory locked where allowed).
func (s *session) refresh(ctx context.Context) (refresher.Lifetime, error) {
	old := s.tok.Load()
	if old == nil {
		return refresher.Lifetime{}, errors.New("logged out")
	}
	t, err := s.api.Refresh(ctx, old.refresh, *s.client)
	if err != nil {
		// The refresher logs the failure, with the attempt and the retry.
		if tapis.IsDefinitive(err) {
			s.checkAccess(ctx, old)
			if s.onRejected != nil {
				s.onRejected()
			}
		}
		return refresher.Lifetime{}, err
	}
	ts, kept := keepLonger(old, newTokenSet(t, s.now()))
	if !s.tok.CompareAndSwap(old, ts) {
		// Logged out or replaced by a new login while this refresh ran.
		return old.lifetime(), nil
	}
	if kept {
		s.log.Info("refreshed_kept_longer_token", "jti", ts.accessJTI, "refresh_count", ts.refreshCount,
			"expires_at", ts.expiresAt.UTC().Format(time.RFC3339), "refreshed_lifetime", ts.upstream.String())
	} else {
		s.log.Info("refreshed", "jti", ts.accessJTI, "refresh_count", ts.refreshCount,
			"expires_at", ts.expiresAt.UTC().Format(time.RFC3339))
	}
	s.writeSink(ts)
	s.logRefreshExpiry(ts)
	return ts.lifetime(), nil
}

// token answers a token request for this session.
func (s *session) token(ctx context.Context, minValid time.Duration) (*ipc.TokenResponse, error) {
	t := s.tok.Load()
	if t == nil {
		return nil, loginRequired(s.name, "logged out")
	}
	if t.dead != "" {
		return nil, loginRequired(s.name, t.dead)
	}
	minValid = t.need(minValid)
	if t.validFor(s.now(), minValid) {
		return s.answer(t), nil
	}
	if s.ref == nil {
		if !s.now().Before(t.expiresAt) {
			return nil, loginRequired(s.name, fmt.Sprintf("the imported token expired at %s and cannot be refreshed", t.expiresAt.UTC().Format(time.RFC3339)))
		}
		return nil, loginRequired(s.name, fmt.Sprintf("the imported token is valid for %s, less than the %s asked, and cannot be refreshed", human.DurationDown(t.expiresAt.Sub(s.now())), human.Duration(minValid)))
	}
	err := s.ref.Ensure(ctx, minValid)
	t = s.tok.Load()
	if t == nil {
		return nil, loginRequired(s.name, "logged out")
	}
	if t.dead != "" {
		return nil, loginRequired(s.name, t.dead)
	}
	now := s.now()
	if t.validFor(now, minValid) {
		return s.answer(t), nil
	}
	left := t.expiresAt.Sub(now)
	switch {
	case err == nil || errors.Is(err, refresher.ErrUnsatisfiable):
		return nil, s.unsatisfiable(t, now, minValid)
	case ctx.Err() != nil:
		return nil, ctx.Err()
	case tapis.IsDefinitive(err):
		return nil, loginRequired(s.name, "Tapis no longer accepts the refresh token")
	}
	msg := fmt.Sprintf("%s: cannot refresh (%v)", s.name, err)
	if left > 0 {
		msg += fmt.Sprintf("; the current token is valid for only %s", human.DurationDown(left))
	} else {
		msg += "; the current token has expired"
	}
	return nil, &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: msg,
		Hint: "the agent keeps retrying; see tapis-token status"}
}

// unsatisfiable is the error for a caller asking minValid, more than t
// has left and more than a refresh gives.
func (s *session) unsatisfiable(t *tokenSet, now time.Time, minValid time.Duration) error {
	life := t.upstream
	if life <= 0 {
		life = t.expiresAt.Sub(t.issuedAt)
	}
	msg := fmt.Sprintf("%s: asked for a token valid for %s, but %s issues tokens that live %s", s.name, human.Duration(minValid), s.name, human.DurationDown(life))
	if minValid <= life {
		// A fresh token would do; the one just refreshed aged before the
		// answer (exp counts whole seconds, and a loaded machine is slow).
		msg = fmt.Sprintf("%s: asked for a token valid for %s, but even the token just refreshed is valid for only %s (%s issues tokens that live %s)",
			s.name, human.Duration(minValid), human.DurationDown(t.expiresAt.Sub(now)), s.name, human.DurationDown(life))
	}
	most := life
	if left := t.expiresAt.Sub(now); left > life {
		msg += fmt.Sprintf(" (the current one is valid for %s more)", human.DurationDown(left))
		most = left
	}
	return &ipc.Error{Code: ipc.CodeUnsatisfiable, Message: msg,
		Hint: fmt.Sprintf("ask for less, e.g. tapis-token --min-valid %s %s", human.Flag(most*9/10), s.name)}
}

func (s *session) answer(t *tokenSet) *ipc.TokenResponse {
	return &ipc.TokenResponse{
		Tenant:      s.name,
		BaseURL:     s.baseURL(),
		Username:    s.username,
		AccessToken: t.access.Reveal(),
		ExpiresAt:   t.expiresAt.UTC(),
		ExpiresIn:   int64(t.expiresAt.Sub(s.now()) / time.Second),
	}
}

// status describes the session without any secret.
func (s *session) status() ipc.TenantStatus {
	st := ipc.TenantStatus{
		Tenant:   s.name,
		BaseURL:  s.baseURL(),
		Username: s.username,
		State:    ipc.StateLoginRequired,
	}
	if s.client != nil {
		st.ClientID = s.client.ID
	}
	t := s.tok.Load()
	if t == nil {
		return st
	}
	now := s.now()
	st.AccessExpiresAt = timePtr(t.expiresAt)
	st.AccessIssuedAt = timePtr(t.issuedAt)
	st.RefreshCount = t.refreshCount
	if w := plainHTTPWarning(st.BaseURL); w != "" {
		st.Warnings = append(st.Warnings, w)
	}
	if w := s.sinkStuck(); w != "" {
		st.Warnings = append(st.Warnings, w)
	}
	s.mu.Lock()
	if s.sinkWarning != "" {
		st.Warnings = append(st.Warnings, s.sinkWarning)
	}
	s.mu.Unlock()
	expired := !now.Before(t.expiresAt)
	if s.ref == nil {
		st.State = ipc.StateAccessOnly
		if expired {
			st.State = ipc.StateExpired
		}
		return st
	}
	st.RefreshExpiresAt = timePtr(t.refreshExp)
	if left := t.refreshExp.Sub(now); !t.refreshExp.IsZero() && left < RefreshExpiryWarning {
		st.Warnings = append(st.Warnings, fmt.Sprintf("the refresh token expires in %s; log in again before then (tapis-token login %s)", human.Duration(left), s.name))
		s.logRefreshExpiry(t)
	}
	rs := s.ref.Status()
	st.LastRefresh = timePtr(rs.LastRefresh)
	st.NextRefresh = timePtr(rs.NextRefresh)
	if rs.LastError != nil {
		st.LastError = rs.LastError.Error()
	}
	switch {
	case rs.Failed:
		st.State = ipc.StateLoginRequired
		if t.dead != "" {
			st.LastError = t.dead
			break
		}
		// A token it still serves needs saying why, beside login_required.
		s.mu.Lock()
		note := s.accessNote
		s.mu.Unlock()
		if !expired {
			if note == "" {
				note = "Tapis rejected the refresh token"
			}
			st.Warnings = append(st.Warnings, fmt.Sprintf("%s; the agent serves the current access token until it expires at %s: log in again before then (tapis-token login %s)",
				note, t.expiresAt.UTC().Format(time.RFC3339), s.name))
		}
	case rs.Refreshing:
		st.State = ipc.StateRefreshing
	case expired:
		st.State = ipc.StateExpired
	case rs.Retrying:
		st.State = ipc.StateRetrying
	default:
		st.State = ipc.StateReady
	}
	return st
}

// logout stops refreshing, deletes the client the agent registered for
// this host, revokes the tokens (best effort: upstream revocation does
// not stop a refresh token anyway), and drops the tokens. It returns the
// id of the client it deleted, or "".
func (s *session) logout(ctx context.Context) (deleted string) {
	if s.ref != nil {
		s.ref.Stop()
	}
	t := s.tok.Swap(nil)
	if t == nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if s.registered && s.client != nil {
		access := t.access
		if !s.now().Before(t.expiresAt) && !t.refresh.IsZero() {
			// Deleting the client takes a live access token.
			if nt, err := s.api.Refresh(ctx, t.refresh, *s.client); err == nil {
				access = nt.AccessToken
				t = &tokenSet{access: nt.AccessToken, refresh: nt.RefreshToken}
			}
		}
		if err := s.api.DeleteClient(ctx, access, s.client.ID); err != nil {
			s.log.Warn("client_delete_failed", "client_id", s.client.ID, "err", err)
		} else {
			s.log.Info("client_deleted", "client_id", s.client.ID, "reason", "logout")
			deleted = s.client.ID
		}
	}
	for _, tok := range []secret.Value{t.access, t.refresh} {
		if tok.IsZero() {
			continue
		}
		if err := s.api.Revoke(ctx, tok); err != nil {
			s.log.Warn("revoke_failed", "err", err)
		}
	}
	return deleted
}

// marginText shows a refresh_margin; 0 is the refresher's default.
func marginText(d time.Duration) string {
	if d <= 0 {
		return "the default"
	}
	return d.String()
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// round shortens a duration for messages.
func round(d time.Duration) time.Duration {
	switch {
	case d > time.Hour:
		return d.Round(time.Minute)
	case d > time.Minute:
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// RefreshExpiryWarning is how long before its refresh token expires a
// session starts warning, in status and once a day in the log.
const RefreshExpiryWarning = 14 * 24 * time.Hour

// logRefreshExpiry logs, at most once a day, that t's refresh token
// expires within RefreshExpiryWarning: after that, only a new login helps.
func (s *session) logRefreshExpiry(t *tokenSet) {
	if t.refreshExp.IsZero() {
		return
	}
	now := s.now()
	left := t.refreshExp.Sub(now)
	if left >= RefreshExpiryWarning {
		return
	}
	s.mu.Lock()
	due := s.expiryLogged.IsZero() || now.Sub(s.expiryLogged) >= 24*time.Hour || now.Before(s.expiryLogged)
	if due {
		s.expiryLogged = now
	}
	s.mu.Unlock()
	if due {
		s.log.Warn("refresh_token_expiring", "expires_at", t.refreshExp.UTC().Format(time.RFC3339),
			"expires_in", round(left).String(), "hint", "tapis-token login "+s.name)
	}
}

// tenantSnapshot returns the config of the session's tenant in force.
func (s *session) tenantSnapshot() *config.Tenant {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenant
}

// sink returns the token file of the session's tenant.
func (s *session) sink() sinkFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	return sinkOf(s.tenant)
}

// sinkToken is what the token file of the session holds for t; a nil t
// gives the names alone, enough to remove the file.
func (s *session) sinkToken(t *tokenSet) sinkToken {
	st := sinkToken{baseURL: s.baseURL(), username: s.username}
	if t != nil {
		st.access = t.access.Reveal()
		st.exp = jwtExpiry(st.access, t.expiresAt)
	}
	return st
}

// writeSink rewrites the tenant's token file with the session's current
// token, unless the session has none by then (t is the token that called
// for the write). It waits up to sinkWait. A file that cannot be written is
// a warning in status and the log, never a reason to drop the session.
func (s *session) writeSink(t *tokenSet) {
	f := s.sink()
	if f.path == "" || t == nil {
		return
	}
	s.sinks(f.path).do(sinkKey{s: s}, func() {
		t := s.tok.Load()
		if t == nil || s.sink() != f {
			return // logged out, or the file moved: its own write follows
		}
		warning := ""
		if err := f.write(s.sinkToken(t)); err != nil {
			warning = sinkWarning(f.path, err)
			s.log.Warn("token_file_failed", "path", f.path, "format", f.format, "err", err)
		} else {
			s.log.Debug("token_file_written", "path", f.path, "format", f.format, "jti", t.accessJTI)
		}
		s.mu.Lock()
		s.sinkWarning = warning
		s.mu.Unlock()
	})
}

// removeSink removes the tenant's token file (logout, tenant removed).
func (s *session) removeSink() {
	if f := s.sink(); f.path != "" {
		s.removeSinkFile(f)
	}
}

// removeSinkFile removes the token file f, waiting up to sinkWait.
func (s *session) removeSinkFile(f sinkFile) {
	s.sinks(f.path).do(sinkKey{s: s, remove: true}, func() {
		if err := f.remove(s.sinkToken(nil)); err != nil {
			s.log.Warn("token_file_remove_failed", "path", f.path, "err", err)
			return
		}
		s.log.Info("token_file_removed", "path", f.path)
	})
}

// sinkStuck returns a warning when the tenant's token file has been
// written for longer than sinkWait, else "".
func (s *session) sinkStuck() string {
	f := s.sink()
	if f.path == "" {
		return ""
	}
	if d := s.sinks(f.path).busy(); d > sinkWait {
		return fmt.Sprintf("token_file %s: writing it has not finished after %s (a named pipe? a hung file system?); tokens are served all the same", f.path, round(d))
	}
	return ""
}
