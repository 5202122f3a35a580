package agent

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/secret"
	"github.com/tapis-agent/tapis-agent/tapis"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
)

// BrowserLoginTimeout bounds a browser login: Tapis's login page lasts
// 15 minutes and its codes 10; a listener that hears nothing gives up.
const BrowserLoginTimeout = 10 * time.Minute

// A browser login (the authorization-code grant) sends the user's browser
// to Tapis, which redirects it to http://127.0.0.1:PORT/callback with a
// code. Tapis matches that address against the client's callback_url byte
// for byte, so each client keeps its port, and the agent PUTs a new
// callback_url only when another program holds the port. Logins that use
// one port share one listener and are told apart by their state, so two
// logins at once never move the port under each other.

// callbackServer is the loopback listener of one port.
type callbackServer struct {
	port int
	ln   net.Listener
	srv  *http.Server

	mu    sync.Mutex              // guards flows
	flows map[string]*browserFlow // by state
}

// browserFlow is one browser login waiting for its redirect.
type browserFlow struct {
	name        string
	state       string
	redirectURI string
	client      *flowClient
	api         *tapis.Client
	tenant      *config.Tenant
	flow        *deviceFlow        // its record in tenantState and for Wait
	result      chan browserResult // the callback's outcome; buffered, one
	answered    sync.Once          // the first callback only
	server      *callbackServer
}

type browserResult struct {
	code secret.Value
	err  error
}

// loginBrowser answers the browser variants of POST /v1/login: start a
// login, wait for the one req.Flow names, or cancel it.
func (a *Agent) loginBrowser(ctx context.Context, name string, req *ipc.LoginRequest) (*ipc.LoginResponse, error) {
	if req.Wait || req.Cancel {
		a.mu.Lock()
		f := a.browserFlows[req.Flow]
		a.mu.Unlock()
		if f == nil {
			return nil, &ipc.Error{Code: ipc.CodeBadRequest, Message: name + ": no such browser login in progress",
				Hint: "tapis-token login " + name + " --browser"}
		}
		if req.Cancel {
			if f.abandon() {
				a.log.Info("browser_login_abandoned", "tenant", name)
			}
			return &ipc.LoginResponse{Tenant: a.tenantStatus(name)}, nil
		}
		return a.waitFlow(ctx, name, f)
	}
	t := a.Config().TenantOrDefault(name)
	api, err := a.newAPI(t)
	if err != nil {
		return nil, err
	}
	fc, err := a.resolveClient(ctx, name, t, api, req, "--browser")
	if err != nil {
		return nil, err
	}
	bf, err := a.startBrowser(ctx, name, t, api, fc)
	if err != nil {
		a.failedLogin(ctx, name, api, fc)
		return nil, err
	}
	b := *bf.flow.browser
	return &ipc.LoginResponse{Tenant: a.tenantStatus(name), Browser: &b}, nil
}

// waitFlow waits a while for a device-code or browser login to end, and
// answers with its outcome, or with what the user still has to do.
func (a *Agent) waitFlow(ctx context.Context, name string, f *deviceFlow) (*ipc.LoginResponse, error) {
	wait := time.NewTimer(a.opts.DeviceWait)
	defer wait.Stop()
	select {
	case <-f.done:
		if f.err != nil {
			return nil, f.err
		}
		return &ipc.LoginResponse{Tenant: a.tenantStatus(name)}, nil
	case <-wait.C:
	case <-ctx.Done():
	}
	resp := &ipc.LoginResponse{Tenant: a.tenantStatus(name)}
	if f.browser != nil {
		b := *f.browser
		resp.Browser = &b
	} else {
		code := f.code
		resp.Device = &code
	}
	return resp, nil
}

// startBrowser registers a browser login with the listener of the
// client's port and returns it; the login ends in a session, an error,
// BrowserLoginTimeout or cancellation.
func (a *Agent) startBrowser(ctx context.Context, name string, t *config.Tenant, api *tapis.Client, fc *flowClient) (*browserFlow, error) {
	if fc.callbackURL == "" && !fc.token.IsZero() {
		// A configured client: learn its callback_url.
		if list, err := api.ListClients(ctx, fc.token, true); err == nil {
			for _, c := range list {
				if c.ID == fc.creds.ID {
					fc.callbackURL = c.CallbackURL
				}
			}
		}
	}
	srv, redirectURI, err := a.callbackServer(ctx, name, api, fc)
	if err != nil {
		return nil, err
	}
	var sb [16]byte
	_, _ = rand.Read(sb[:])
	var ib [8]byte
	_, _ = rand.Read(ib[:])
	state, id := hex.EncodeToString(sb[:]), hex.EncodeToString(ib[:])
	q := url.Values{}
	q.Set("client_id", fc.creds.ID)
	q.Set("redirect_uri", redirectURI)
	q.Set("response_type", "code")
	q.Set("state", state)
	fctx, cancel := context.WithTimeout(a.ctx, BrowserLoginTimeout)
	deadline, _ := fctx.Deadline()
	bf := &browserFlow{
		name: name, state: state, redirectURI: redirectURI, client: fc, api: api, tenant: t,
		result: make(chan browserResult, 1), server: srv,
		flow: &deviceFlow{
			browser: &ipc.BrowserLogin{Flow: id, URL: api.BaseURL() + "/v3/oauth2/authorize?" + q.Encode(), Port: srv.port, ExpiresAt: deadline.UTC()},
			cancel:  cancel,
			done:    make(chan struct{}),
		},
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		cancel()
		srv.remove(bf)
		return nil, errors.New("agent is shutting down")
	}
	a.stateLocked(name).flow = bf.flow
	a.browserFlows[id] = bf.flow
	a.wg.Add(1)
	a.mu.Unlock()
	srv.add(bf)
	a.log.Info("browser_login_started", "tenant", name, "client_id", fc.creds.ID, "port", srv.port)
	go func() {
		defer a.wg.Done()
		defer cancel()
		bf.flow.err = a.runBrowser(fctx, bf)
		srv.remove(bf)
		a.releaseCallbackServer(srv)
		close(bf.flow.done)
		// Keep the record for a late Wait, then forget it.
		time.AfterFunc(time.Minute, func() {
			a.mu.Lock()
			delete(a.browserFlows, id)
			a.mu.Unlock()
		})
	}()
	return bf, nil
}

// runBrowser waits for the redirect and exchanges its code.
func (a *Agent) runBrowser(ctx context.Context, bf *browserFlow) error {
	name := bf.name
	var res browserResult
	select {
	case res = <-bf.result:
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg := fmt.Sprintf("%s: no answer from the browser within %s; errors show in the browser, not here", name, BrowserLoginTimeout)
			a.setLoginErr(name, msg)
			return &ipc.Error{Code: ipc.CodeLoginRequired, Message: msg,
				Hint: "look at the browser; then tapis-token login " + name + " --browser"}
		}
		return &ipc.Error{Code: ipc.CodeLoginRequired, Message: name + ": the browser login was " + errDeviceAbandoned.Error(),
			Hint: "tapis-token login " + name + " --browser"}
	}
	if res.err != nil {
		return res.err
	}
	cctx, cancel := context.WithTimeout(a.ctx, a.opts.UpstreamTimeout)
	defer cancel()
	tok, err := bf.api.ExchangeCode(cctx, res.code, bf.redirectURI, bf.client.creds)
	if err != nil {
		a.log.Warn("browser_login_failed", "tenant", name, "err", err)
		ie := a.upstreamError(name, "exchanging the browser login's code", err).(*ipc.Error)
		a.setLoginErr(name, ie.Message)
		return ie
	}
	username := ""
	if c, err := jwt.Decode(tok.AccessToken.Reveal()); err == nil {
		username = c.Username()
	}
	cfg := a.Config()
	s := a.newSession(sessionParams{name: name, tenant: cfg.TenantOrDefault(name), api: bf.api, username: username,
		client: &bf.client.creds, registered: bf.client.registered, margin: cfg.RefreshMargin}, newTokenSet(tok, a.opts.Now()))
	if err := a.install(s); err != nil {
		return err
	}
	a.log.Info("login", "tenant", name, "username", username, "grant", "authorization_code", "jti", tok.AccessJTI)
	return nil
}

// callbackServer returns the listener for the client's port, starting it
// when needed, and the redirect_uri to use. When another program holds
// the port, or the client has no loopback callback_url of the agent's
// form, it listens on a new port and moves the client's callback_url
// there, which takes an access token.
func (a *Agent) callbackServer(ctx context.Context, name string, api *tapis.Client, fc *flowClient) (*callbackServer, string, error) {
	port := loopbackPort(fc.callbackURL)
	a.cbMu.Lock()
	defer a.cbMu.Unlock()
	if srv := a.cbServers[port]; port != 0 && srv != nil {
		return srv, fc.callbackURL, nil
	}
	var ln net.Listener
	var err error
	if port != 0 {
		ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil && !errors.Is(err, syscall.EADDRINUSE) {
			return nil, "", &ipc.Error{Code: ipc.CodeInternal, Message: fmt.Sprintf("%s: listening on port %d for the browser's redirect: %v", name, port, err)}
		}
	}
	redirectURI := fc.callbackURL
	if ln == nil {
		why := fmt.Sprintf("its callback_url is %q, not a loopback address of the agent", fc.callbackURL)
		if port != 0 {
			why = fmt.Sprintf("another program listens on port %d of its callback_url", port)
		}
		if fc.token.IsZero() {
			return nil, "", &ipc.Error{Code: ipc.CodeClientNeeded,
				Message: fmt.Sprintf("%s: the browser login cannot use client %s: %s, and changing it takes a Tapis token: open %s/v3/oauth2/webapp, log in, and copy the access token it shows",
					name, fc.creds.ID, why, api.BaseURL()),
				Hint: "paste it when tapis-token login " + name + " --browser asks, or pipe it in with --token-stdin; or use tapis-token login " + name + " --device"}
		}
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, "", &ipc.Error{Code: ipc.CodeInternal, Message: fmt.Sprintf("%s: listening for the browser's redirect: %v", name, err)}
		}
		port = ln.Addr().(*net.TCPAddr).Port
		redirectURI = callbackURL(port)
		if err := api.SetCallback(ctx, fc.token, fc.creds.ID, redirectURI); err != nil {
			ln.Close()
			return nil, "", a.upstreamError(name, "moving the OAuth client's callback_url to port "+strconv.Itoa(port), err)
		}
		a.log.Info("client_callback_moved", "tenant", name, "client_id", fc.creds.ID, "port", port, "reason", why)
		fc.callbackURL = redirectURI
	}
	srv := &callbackServer{port: port, ln: ln, flows: make(map[string]*browserFlow)}
	srv.srv = &http.Server{Handler: http.HandlerFunc(srv.serve), ReadHeaderTimeout: 10 * time.Second}
	go srv.srv.Serve(ln)
	a.cbServers[port] = srv
	return srv, redirectURI, nil
}

// releaseCallbackServer closes srv once no login waits on it.
func (a *Agent) releaseCallbackServer(srv *callbackServer) {
	a.cbMu.Lock()
	defer a.cbMu.Unlock()
	srv.mu.Lock()
	idle := len(srv.flows) == 0
	srv.mu.Unlock()
	if !idle || a.cbServers[srv.port] != srv {
		return
	}
	delete(a.cbServers, srv.port)
	// The port is free again at once; the last page still reaches the
	// browser before the server stops.
	srv.ln.Close()
	go func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.srv.Shutdown(sctx)
	}()
}

// loopbackPort returns the port of a callback URL of the agent's form,
// http://127.0.0.1:PORT/callback; 0 for any other.
func loopbackPort(cb string) int {
	rest, ok := strings.CutPrefix(cb, "http://127.0.0.1:")
	if !ok {
		return 0
	}
	p, ok := strings.CutSuffix(rest, callbackPath)
	if !ok {
		return 0
	}
	n, err := strconv.Atoi(p)
	if err != nil || n <= 0 || n > 65535 {
		return 0
	}
	return n
}

func (s *callbackServer) add(bf *browserFlow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.flows[bf.state] = bf
}

func (s *callbackServer) remove(bf *browserFlow) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.flows[bf.state] == bf {
		delete(s.flows, bf.state)
	}
}

// lookup returns the login whose state is state, comparing in constant
// time: the state is what keeps another page from completing the login
// with its own code.
func (s *callbackServer) lookup(state string) *browserFlow {
	s.mu.Lock()
	defer s.mu.Unlock()
	var found *browserFlow
	for st, bf := range s.flows {
		if subtle.ConstantTimeCompare([]byte(st), []byte(state)) == 1 {
			found = bf
		}
	}
	return found
}

// serve answers the browser's redirect: it hands the code to the login
// whose state the redirect carries, waits for the outcome and says it.
func (s *callbackServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != callbackPath {
		http.NotFound(w, r)
		return
	}
	// Tapis sends the state raw: a state of the agent's is hex, which
	// survives any decoding.
	q := r.URL.Query()
	bf := s.lookup(q.Get("state"))
	if bf == nil {
		answerPage(w, http.StatusBadRequest, "Unknown login",
			"This address does not belong to a login in progress (it ended, or the state does not match). Start again with tapis-token login.")
		return
	}
	code := q.Get("code")
	if code == "" {
		answerPage(w, http.StatusBadRequest, "No code", "Tapis sent no authorization code. Start again with tapis-token login "+bf.name+" --browser.")
		return
	}
	first := false
	bf.answered.Do(func() {
		first = true
		bf.result <- browserResult{code: secret.Value(code)}
	})
	if !first {
		answerPage(w, http.StatusConflict, "Already answered", "This login already got its answer; see the terminal.")
		return
	}
	select {
	case <-bf.flow.done:
	case <-r.Context().Done():
		return
	}
	if bf.flow.err != nil {
		answerPage(w, http.StatusBadGateway, "Login failed", bf.flow.err.Error())
		return
	}
	answerPage(w, http.StatusOK, "Logged in", "tapis-agent is logged in to "+bf.name+". You can close this window.")
}

// answerPage writes a small HTML page for the browser.
func answerPage(w http.ResponseWriter, status int, title, text string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "<!doctype html>\n<html><head><title>%s</title></head><body><h1>%s</h1><p>%s</p></body></html>\n",
		html.EscapeString(title), html.EscapeString(title), html.EscapeString(text))
}
