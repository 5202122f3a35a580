// Package tapistest is a fake Tapis tenant for tests and demos: the
// authenticator (/v3/oauth2/...) and the tenants and sites API of one
// tenant, served over HTTP on 127.0.0.1. It copies the wire behaviour of
// the real services described in tapis-protocol.md (release 1.6.0 of the
// authenticator): the five-key envelope, 400 for every handled error, the
// exact error messages in the order they are checked, refresh-token
// rotation where old refresh tokens keep working, RS256 JWTs, the device
// flow, and a 500 HTML page for unknown paths; and, after tapis-flows.md,
// the browser pages (login, consent, device user code and approval with a
// TTL in days) with their session cookie, authorization codes exchanged
// against the client's exact callback_url, the live .well-known grant
// list, and upper-case reason phrases.
//
// Tests steer it with an injectable clock, per-tenant TTLs and allowed
// grant types, a device approval hook, a user who answers every browser
// page (SetBrowserUser), a scripted Browser, and fault injection per route
// (delays, hangs, status codes, dropped connections, slow bodies), and
// inspect it through request counters.
//
// It deliberately does not import package tapis: it is an independent
// implementation of the protocol, so it can catch the client's mistakes.
package tapistest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Config configures a Server. The zero value is a tenant "dev" with no
// users and the default TTLs.
type Config struct {
	TenantID   string            // default "dev"
	Users      map[string]string // username → password
	AccessTTL  time.Duration     // default 4h (14400 s)
	RefreshTTL time.Duration     // default 8760h (31536000 s)
	// GrantTypes are the grant types the tenant allows, in the order the
	// "not allowed" error lists them (§2.6 row 4). Nil means the default
	// set (password, implicit, authorization_code, refresh_token,
	// device_code); an empty non-nil slice allows none.
	GrantTypes []string
	// Now is the clock used for exp, expiry checks, device codes and
	// client timestamps. Default time.Now.
	Now func() time.Time
	// DeviceApproveAfter, when positive, approves every device code this
	// long (by Now) after it was issued, as if the user had entered it.
	// Tokens then get the tenant's access TTL.
	DeviceApproveAfter time.Duration
	// Logger, if set, gets one line per request: method, path and status.
	// Bodies and headers are never logged.
	Logger *slog.Logger
}

// Default TTLs of a tenant (§3).
const (
	DefaultAccessTTL  = 14400 * time.Second
	DefaultRefreshTTL = 31536000 * time.Second
	// DeviceTTL is the access TTL the authorize page offers by default when
	// the user approves a device code (30 days).
	DeviceTTL = 2592000 * time.Second
)

// defaultGrantTypes are the grant types a tenant allows by default (§2.4),
// in the order the authenticator lists them. Never modified.
var defaultGrantTypes = []string{"password", "implicit", "authorization_code", "refresh_token", "device_code"}

// version is the envelope's version field, as observed.
const version = "dev"

// Server is a running fake tenant. Its methods are safe for concurrent use.
// Create it with New or NewServer.
type Server struct {
	tenant string
	url    string
	log    *slog.Logger
	now    func() time.Time // Config.Now

	srv    *http.Server
	ln     net.Listener
	served chan struct{} // closed when Serve returns
	closed chan struct{} // closed by Close; ends hanging and slow answers
	once   sync.Once

	mu           sync.Mutex // guards everything below
	key          *tenantKey // the tenant's signing key; replaced by RotateSigningKey
	keyGen       int        // how many times the key was rotated
	users        map[string]string
	accessTTL    time.Duration
	refreshTTL   time.Duration
	grantTypes   []string // never modified in place; replaced by SetGrantTypes
	approveAfter time.Duration
	singleUse    bool
	usedRefresh  map[string]bool            // jtis of used refresh tokens, in single-use mode
	clients      []*Client                  // in creation order
	devices      map[string]*device         // by device code
	codes        map[string]*authCode       // authorization codes, by code
	sessions     map[string]*browserSession // browser logins, by cookie value
	browserUser  string                     // SetBrowserUser
	revoked      map[string]bool            // jti → revoked
	faults       map[Route][]*faultState
	calls        map[Route]int
	grantCalls   map[string]int
	inFlight     map[Route]int
	maxInFlight  map[Route]int
	lastHeader   map[Route]http.Header
}

// New starts a fake tenant on 127.0.0.1 and closes it when t ends.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := NewServer(cfg, nil)
	if err != nil {
		t.Fatalf("tapistest: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// NewServer starts a fake tenant serving on ln, or on a fresh listener on
// 127.0.0.1:0 when ln is nil. The caller must call Close.
func NewServer(cfg Config, ln net.Listener) (*Server, error) {
	if cfg.TenantID == "" {
		cfg.TenantID = "dev"
	}
	if cfg.AccessTTL <= 0 {
		cfg.AccessTTL = DefaultAccessTTL
	}
	if cfg.RefreshTTL <= 0 {
		cfg.RefreshTTL = DefaultRefreshTTL
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.GrantTypes == nil {
		cfg.GrantTypes = defaultGrantTypes
	}
	key, err := keyFor(cfg.TenantID)
	if err != nil {
		return nil, err
	}
	if ln == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listening: %w", err)
		}
	}
	s := &Server{
		tenant:       cfg.TenantID,
		url:          "http://" + ln.Addr().String(),
		key:          key,
		log:          cfg.Logger,
		ln:           ln,
		served:       make(chan struct{}),
		closed:       make(chan struct{}),
		users:        make(map[string]string),
		accessTTL:    cfg.AccessTTL,
		refreshTTL:   cfg.RefreshTTL,
		grantTypes:   slices.Clone(cfg.GrantTypes),
		now:          cfg.Now,
		approveAfter: cfg.DeviceApproveAfter,
		usedRefresh:  make(map[string]bool),
		devices:      make(map[string]*device),
		codes:        make(map[string]*authCode),
		sessions:     make(map[string]*browserSession),
		revoked:      make(map[string]bool),
		faults:       make(map[Route][]*faultState),
		calls:        make(map[Route]int),
		grantCalls:   make(map[string]int),
		inFlight:     make(map[Route]int),
		maxInFlight:  make(map[Route]int),
		lastHeader:   make(map[Route]http.Header),
	}
	for u, p := range cfg.Users {
		s.users[u] = p
	}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		s.srv.Serve(upperReasonListener{ln})
	}()
	return s, nil
}

// URL returns the base URL "http://127.0.0.1:PORT", which is the tenant's
// base_url.
func (s *Server) URL() string { return s.url }

// TenantID returns the id of the fake's tenant.
func (s *Server) TenantID() string { return s.tenant }

// PublicKeyPEM returns the tenant's public key as a "BEGIN PUBLIC KEY" PEM,
// as published in the tenant record.
func (s *Server) PublicKeyPEM() string { return s.signingKey().pem }

// signingKey returns the tenant's current signing key.
func (s *Server) signingKey() *tenantKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.key
}

// RotateSigningKey gives the tenant a new signing key, as a site does when
// it regenerates a tenant's key pair: the tenant record publishes the new
// public key, and every token signed with the old one stops validating,
// access tokens ("Invalid Tapis token.") and refresh tokens ("Invalid
// refresh_token.") alike. The keys are cached per process like the first
// one, so the n-th rotation of a tenant id costs a key generation once.
func (s *Server) RotateSigningKey() error {
	s.mu.Lock()
	gen := s.keyGen + 1
	s.mu.Unlock()
	k, err := keyFor(fmt.Sprintf("%s#rotated-%d", s.tenant, gen))
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if gen > s.keyGen {
		s.key, s.keyGen = k, gen
	}
	return nil
}

// Close stops the server: hanging and slow answers end, connections close.
// It is safe to call more than once.
func (s *Server) Close() {
	s.once.Do(func() {
		close(s.closed)
		s.srv.Close()
		<-s.served
	})
}

// AddUser adds or replaces a user of the tenant.
func (s *Server) AddUser(name, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[name] = password
}

// SetTTLs changes the tenant's default TTLs; zero keeps a value. Later
// grants and refreshes use the new values.
func (s *Server) SetTTLs(access, refresh time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if access > 0 {
		s.accessTTL = access
	}
	if refresh > 0 {
		s.refreshTTL = refresh
	}
}

// SetGrantTypes changes the grant types the tenant allows, as a tenant
// admin can through /v3/oauth2/admin/config; nil restores the default set.
// Later token requests see the new list.
func (s *Server) SetGrantTypes(types []string) {
	if types == nil {
		types = defaultGrantTypes
	}
	types = slices.Clone(types)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.grantTypes = types
}

// allowedGrantTypes returns the tenant's allowed grant types. The caller
// must not modify the slice.
func (s *Server) allowedGrantTypes() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grantTypes
}

// SetSingleUseRefresh makes each refresh token work only once when on.
// The real service never does this (§3); it exists for negative tests.
func (s *Server) SetSingleUseRefresh(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.singleUse = on
}

// Revoked reports whether the token with this jti was revoked through
// /v3/oauth2/tokens/revoke. Revocation affects nothing else in the fake,
// like the real authenticator (only the site router consults it).
func (s *Server) Revoked(jti string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.revoked[jti]
}

// Messages shared by several routes.
const (
	msgWrongMethod = "The endpoint and HTTP method combination are not available from this service."
	// MsgTryLater is the authenticator's answer when the Tokens API failed.
	MsgTryLater = "Failure to generate an access token; please try again later."
)

// FlaskHTML500 is the body of Flask's generic 500 page, sent with
// Content-Type "text/html; charset=utf-8" for unknown paths.
const FlaskHTML500 = `<!doctype html>
<html lang=en>
<title>500 Internal Server Error</title>
<h1>Internal Server Error</h1>
<p>The server encountered an internal error and was unable to complete your request. Either the server is overloaded or there is an error in the application.</p>
`

// envelope is the five-key body of every JSON answer, fields in key order.
type envelope struct {
	Message  string   `json:"message"`
	Metadata struct{} `json:"metadata"`
	Result   any      `json:"result"`
	Status   string   `json:"status"`
	Version  string   `json:"version"`
}

// EnvelopeError returns the JSON body of an error answer carrying msg,
// with its trailing newline.
func EnvelopeError(msg string) string {
	return string(encodeEnvelope(envelope{Message: msg, Status: "error", Version: version}))
}

func encodeEnvelope(e envelope) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(e); err != nil {
		// Only our own result types reach here; they always encode.
		panic(fmt.Sprintf("tapistest: encoding envelope: %v", err))
	}
	return asciiJSON(b.Bytes())
}

// asciiJSON escapes non-ASCII characters as \uXXXX like Python's json
// module. Outside strings JSON is pure ASCII, so escaping every non-ASCII
// rune is safe.
func asciiJSON(b []byte) []byte {
	if !bytes.ContainsFunc(b, func(r rune) bool { return r >= 0x80 }) {
		return b
	}
	var out bytes.Buffer
	for _, r := range string(b) {
		switch {
		case r < 0x80:
			out.WriteByte(byte(r))
		case r < 0x10000:
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			r -= 0x10000
			fmt.Fprintf(&out, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		}
	}
	return out.Bytes()
}

func writeEnvelope(w http.ResponseWriter, status int, e envelope) {
	e.Version = version
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(encodeEnvelope(e))
}

// ok answers 200 with a success envelope.
func ok(w http.ResponseWriter, msg string, result any) {
	writeEnvelope(w, http.StatusOK, envelope{Message: msg, Result: result, Status: "success"})
}

// fail answers a handled error: 400 with an error envelope.
func fail(w http.ResponseWriter, msg string) {
	writeEnvelope(w, http.StatusBadRequest, envelope{Message: msg, Status: "error"})
}

// crash answers a modelled uncaught exception: JSON 500.
func crash(w http.ResponseWriter, msg string) {
	writeEnvelope(w, http.StatusInternalServerError, envelope{Message: msg, Status: "error"})
}

// unknownPath answers like Flask for a path no route matches.
func unknownPath(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusInternalServerError)
	w.Write([]byte(FlaskHTML500))
}

// endpoint is one known path: its methods and handlers.
type endpoint struct {
	route   Route
	methods map[string]http.HandlerFunc
}

// match resolves a path to its endpoint; nil for unknown paths. A trailing
// slash makes a path unknown, as in Flask.
func (s *Server) match(path string) *endpoint {
	m := func(route Route, hs map[string]http.HandlerFunc) *endpoint {
		return &endpoint{route: route, methods: hs}
	}
	const clientsPrefix = "/v3/oauth2/clients/"
	switch path {
	case "/v3/oauth2/tokens":
		return m(RouteTokens, map[string]http.HandlerFunc{"POST": s.handleTokens})
	case "/v3/oauth2/tokens/revoke":
		return m(RouteRevoke, map[string]http.HandlerFunc{"POST": s.handleRevoke})
	case "/v3/oauth2/clients":
		return m(RouteClients, map[string]http.HandlerFunc{"GET": s.handleListClients, "POST": s.handleCreateClient})
	case "/v3/oauth2/userinfo":
		return m(RouteUserinfo, map[string]http.HandlerFunc{"GET": s.handleUserinfo})
	case "/v3/oauth2/device/code":
		return m(RouteDeviceCode, map[string]http.HandlerFunc{"POST": s.handleDeviceCode})
	case "/v3/oauth2/hello", "/v3/tenants/hello", "/v3/tokens/hello":
		return m(Route(path), map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { ok(w, "Hello from Tapis", "") }})
	case "/v3/oauth2/ready", "/v3/tenants/ready", "/v3/tokens/ready":
		return m(Route(path), map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { ok(w, "Service is ready.", "") }})
	case "/v3/oauth2/authorize":
		return m(RouteBrowser, map[string]http.HandlerFunc{"GET": s.handleAuthorize, "POST": s.handleAuthorizePost})
	case "/v3/oauth2/login":
		return m(RouteBrowser, map[string]http.HandlerFunc{"GET": s.handleLoginPage, "POST": s.handleLoginPost})
	case "/v3/oauth2/device":
		return m(RouteBrowser, map[string]http.HandlerFunc{"GET": s.handleDevicePage, "POST": s.handleDevicePost})
	case "/v3/oauth2/.well-known/oauth-authorization-server":
		return m(Route(path), map[string]http.HandlerFunc{"GET": s.handleWellKnown})
	case "/v3/tenants":
		return m(RouteTenants, map[string]http.HandlerFunc{"GET": s.handleTenants})
	case "/v3/sites":
		return m(RouteSites, map[string]http.HandlerFunc{"GET": s.handleSites})
	}
	if id, found := strings.CutPrefix(path, clientsPrefix); found && id != "" && !strings.Contains(id, "/") {
		return m(RouteClients, map[string]http.HandlerFunc{
			"GET":    func(w http.ResponseWriter, r *http.Request) { s.handleGetClient(w, r, id) },
			"PUT":    func(w http.ResponseWriter, r *http.Request) { s.handleUpdateClient(w, r, id) },
			"DELETE": func(w http.ResponseWriter, r *http.Request) { s.handleDeleteClient(w, r, id) },
		})
	}
	if id, found := strings.CutPrefix(path, "/v3/tenants/"); found && id != "" && !strings.Contains(id, "/") {
		return m(RouteTenants, map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { s.handleTenant(w, r, id) }})
	}
	if id, found := strings.CutPrefix(path, "/v3/sites/"); found && id != "" && !strings.Contains(id, "/") {
		return m(RouteSites, map[string]http.HandlerFunc{"GET": func(w http.ResponseWriter, r *http.Request) { s.handleSite(w, r, id) }})
	}
	return nil
}

// ServeHTTP serves the fake tenant. Requests pass through counting and
// fault injection before they reach their endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rec := &statusWriter{ResponseWriter: w}
	if s.log != nil {
		defer func() {
			s.log.Info("request", "method", r.Method, "path", r.URL.Path, "status", rec.status)
		}()
	}
	ep := s.match(r.URL.Path)
	if ep == nil {
		unknownPath(rec)
		return
	}
	var grant string
	if ep.route == RouteTokens && r.Body != nil {
		// Read the body up front: counters and faults filter by grant type.
		body, err := readBody(r)
		if err != nil {
			fail(rec, msgDeserialize)
			return
		}
		r.Body = readCloser{bytes.NewReader(body)}
		grant = sniffGrant(r.Header.Get("Content-Type"), body)
	}
	done := s.enter(ep.route, grant, r.Header)
	defer done()
	if f := s.takeFault(ep.route, grant); f != nil {
		if s.applyFault(rec, r, f, ep) {
			return
		}
	}
	s.dispatch(rec, r, ep)
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, ep *endpoint) {
	h := ep.methods[r.Method]
	if h == nil {
		fail(w, msgWrongMethod)
		return
	}
	h(w, r)
}

// enter counts a request on route and returns the function that marks it
// finished.
func (s *Server) enter(route Route, grant string, h http.Header) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[route]++
	if route == RouteTokens {
		s.grantCalls[grant]++
	}
	s.lastHeader[route] = h.Clone()
	s.inFlight[route]++
	if n := s.inFlight[route]; n > s.maxInFlight[route] {
		s.maxInFlight[route] = n
	}
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.inFlight[route]--
	}
}

// Calls returns how many requests route received, faulted ones included.
func (s *Server) Calls(r Route) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[r]
}

// GrantCalls returns how many token requests carried this grant_type
// ("" counts requests without one).
func (s *Server) GrantCalls(grantType string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.grantCalls[grantType]
}

// MaxInFlight returns the most concurrent requests seen on route.
func (s *Server) MaxInFlight(r Route) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.maxInFlight[r]
}

// LastHeader returns a copy of the headers of the last request on route,
// or nil.
func (s *Server) LastHeader(r Route) http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastHeader[r].Clone()
}

// maxBody bounds request bodies; the real ones are tiny.
const maxBody = 1 << 20

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func readBody(r *http.Request) ([]byte, error) {
	var b bytes.Buffer
	_, err := b.ReadFrom(http.MaxBytesReader(nil, r.Body, maxBody))
	return b.Bytes(), err
}

// statusWriter records the status for the request log and lets
// http.ResponseController reach the connection (Hijack, Flush).
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// waitCtx waits d, or until ctx ends or the server closes; it reports
// whether the full duration passed.
func (s *Server) waitCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.closed:
		return false
	}
}
