// Package ipcserver serves the agent's socket (package ipc): the token
// frame, and the HTTP API with net/http; peer credential checks, size and
// time limits, and the socket's creation.
//
// Every accepted connection is classified by its first byte (ipc.IsFrame):
// a token frame is answered by serveFrame, anything else goes to net/http
// (dispatch.go). It is a separate package so that the helper tapis-token,
// which links package ipc, does not link net/http.
package ipcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// Handler does the work behind the socket API; the agent implements it.
// Its methods are called concurrently, one goroutine per request, with a
// context that ends when the client goes away or the call's time is up.
//
// An *ipc.Error is answered with its code, message and hint, under the
// HTTP status ipc.HTTPStatus(code). Any other error is logged and answered
// as 500 with code internal and a generic message, so an upstream detail
// never reaches the client by accident.
type Handler interface {
	Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error)
	Status(ctx context.Context) (*ipc.StatusResponse, error)
	Login(ctx context.Context, req *ipc.LoginRequest) (*ipc.LoginResponse, error)
	Logout(ctx context.Context, tenant string) (*ipc.TenantStatus, error)
	Import(ctx context.Context, req *ipc.ImportRequest) (*ipc.TenantStatus, error)
	Reload(ctx context.Context) (*ipc.StatusResponse, error)
}

// InstantTokener is implemented by a Handler that can tell at once, without
// waiting for anything, whether it has a token for a request. The Server
// then answers token frames in its accept loop, without a goroutine or a
// net.Conn: on a small machine that is a large part of the helper's run
// time.
type InstantTokener interface {
	// TokenInstant returns what Token would answer for tenant and
	// minValid, if that is a token it holds already; otherwise it
	// returns false and the request takes the Token path. It must not
	// block.
	TokenInstant(tenant string, minValid time.Duration) (*ipc.TokenResponse, bool)
}

// Limits and defaults of a Server.
const (
	// MaxBodyBytes bounds a request body; a larger one is answered 413.
	MaxBodyBytes = 64 << 10
	// MaxHeaderBytes bounds a request's header block.
	MaxHeaderBytes = 8 << 10

	defaultReadHeaderTimeout = 5 * time.Second
	defaultIdleTimeout       = 60 * time.Second
	defaultShutdownTimeout   = 5 * time.Second
	defaultMaxConns          = 4096
	defaultReadTimeout       = 15 * time.Second
	writeSlack               = 10 * time.Second
)

// Work deadlines per call, a little below the ipc client's defaults so the
// client receives the agent's error rather than running into its own
// timeout.
const (
	tokenWorkTimeout = ipc.TokenTimeout - 5*time.Second
	loginWorkTimeout = ipc.LoginTimeout - 5*time.Second
	otherWorkTimeout = ipc.DefaultTimeout - 5*time.Second
)

// Server answers the socket API. Create it with New, adjust the exported
// fields if needed, then call Serve once. The fields must not change after
// Serve starts; the Server's request handling is safe for concurrent use.
type Server struct {
	// ReadHeaderTimeout bounds reading a request's headers; zero means 5s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and body; zero
	// means 15s. It does not limit how long the work behind a call takes.
	ReadTimeout time.Duration
	// IdleTimeout closes a kept-alive connection after this long without a
	// request; zero means 60s.
	IdleTimeout time.Duration
	// ShutdownTimeout bounds how long Serve waits for in-flight answers
	// once its context is done; zero means 5s.
	ShutdownTimeout time.Duration
	// MaxConns bounds the connections served at once; further clients wait
	// in the listen backlog. Zero means 4096: idle connections hold a slot
	// until ReadHeaderTimeout or IdleTimeout closes them, so a small cap
	// lets a leaky or hostile client of the same user (1000 idle
	// connections) starve every other client for as long as it holds them.
	MaxConns int

	h   Handler
	log *slog.Logger
	uid int // the only peer uid served; os.Getuid() but for tests
}

// New returns a Server that answers with h and logs to logger (nil means
// discard).
func New(h Handler, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{h: h, log: logger, uid: os.Getuid()}
}

// Serve answers requests on ln until ctx is done, then stops accepting,
// closes ln, lets in-flight answers finish for up to ShutdownTimeout and
// returns nil. Closing a listener made by Listen removes the socket file.
// It returns an error only if accepting connections fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Handlers run under a context that keeps ctx's values but is not
	// cancelled with it: a shutdown lets them finish, up to the grace
	// period, after which baseCancel cuts them off.
	base, baseCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer baseCancel()
	maxConns := s.MaxConns
	if maxConns <= 0 {
		maxConns = defaultMaxConns
	}
	d := newDispatcher(s, ln, maxConns)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.readHeaderTimeout(),
		// ReadTimeout bounds reading the request only; the work behind a
		// call has its own deadline per route.
		ReadTimeout: orDefault(s.ReadTimeout, defaultReadTimeout),
		// The default write deadline, for answers that never reach a
		// route; routes set their own.
		WriteTimeout:   otherWorkTimeout + writeSlack,
		IdleTimeout:    orDefault(s.IdleTimeout, defaultIdleTimeout),
		MaxHeaderBytes: MaxHeaderBytes,
		BaseContext:    func(net.Listener) context.Context { return base },
		ConnContext:    s.connContext,
		ErrorLog:       slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		_ = srv.Serve(d) // ends when d closes
	}()
	acceptc := make(chan error, 1)
	go func() { acceptc <- d.run(base) }()
	var acceptErr error
	select {
	case acceptErr = <-acceptc:
	case <-ctx.Done():
		d.Close()
		<-acceptc // net.ErrClosed
	}
	d.Close()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), orDefault(s.ShutdownTimeout, defaultShutdownTimeout))
	defer cancel()
	// Frames in flight and connections not yet classified belong to the
	// dispatcher; net/http has the rest.
	framesDone := make(chan struct{})
	go func() { d.wg.Wait(); close(framesDone) }()
	err := srv.Shutdown(sctx)
	if err == nil {
		select {
		case <-framesDone:
		case <-sctx.Done():
			err = sctx.Err()
		}
	}
	if err != nil {
		s.log.Warn("ipc_shutdown_forced", "err", err)
		baseCancel()
		srv.Close()
		<-framesDone
	}
	<-httpDone
	if acceptErr != nil {
		return fmt.Errorf("serving socket API: %w", acceptErr)
	}
	return nil
}

func (s *Server) readHeaderTimeout() time.Duration {
	return orDefault(s.ReadHeaderTimeout, defaultReadHeaderTimeout)
}

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// ServeHTTP answers one request. It is exported for http.Server; requests
// that did not come through Serve carry no peer credentials and are
// answered 403.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	a := s.handle(w, r)
	writeJSON(w, a.status, a.body)
	s.logRequest(r.Context(), r.Method, r.URL.Path, start, a)
}

// logRequest writes the debug line of one answered request.
func (s *Server) logRequest(ctx context.Context, method, path string, start time.Time, a answer) {
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("path", path),
		slog.Int("status", a.status),
		slog.Duration("duration", time.Since(start)),
	}
	if a.tenant != "" {
		attrs = append(attrs, slog.String("tenant", a.tenant))
	}
	if a.code != "" {
		attrs = append(attrs, slog.String("code", a.code))
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "ipc_request", attrs...)
}

// answer is what ServeHTTP writes and logs.
type answer struct {
	status int
	body   any
	tenant string // logged; the only request value that is
	code   string // error code, logged
}

func okAnswer(body any) answer { return answer{status: http.StatusOK, body: body} }

func errAnswer(code, msg, hint string) answer {
	if hint == "" {
		hint = ipc.Hint(code)
	}
	return answer{
		status: ipc.HTTPStatus(code),
		body:   ipc.ErrorBody{Error: ipc.ErrorDetail{Code: code, Message: msg, Hint: hint}},
		code:   code,
	}
}

// route describes one path of the API.
type route struct {
	method  string
	timeout time.Duration
	serve   func(s *Server, ctx context.Context, r *http.Request, body []byte) answer
}

var routes = map[string]route{
	ipc.PathToken:  {http.MethodGet, tokenWorkTimeout, (*Server).serveToken},
	ipc.PathStatus: {http.MethodGet, otherWorkTimeout, (*Server).serveStatus},
	ipc.PathLogin:  {http.MethodPost, loginWorkTimeout, (*Server).serveLogin},
	ipc.PathLogout: {http.MethodPost, otherWorkTimeout, (*Server).serveLogout},
	ipc.PathImport: {http.MethodPost, otherWorkTimeout, (*Server).serveImport},
	ipc.PathReload: {http.MethodPost, otherWorkTimeout, (*Server).serveReload},
}

func (s *Server) handle(w http.ResponseWriter, r *http.Request) answer {
	if p, _ := r.Context().Value(peerKey{}).(*peer); !s.serves(p) {
		return errAnswer(ipc.CodeForbidden, "the agent serves only its own user", ipc.HintForbidden)
	}
	rt, found := routes[r.URL.Path]
	if !found {
		return errAnswer(ipc.CodeNotFound, "no such path: "+r.URL.Path, ipc.HintVersion)
	}
	if r.Method != rt.method {
		w.Header().Set("Allow", rt.method)
		return errAnswer(ipc.CodeMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path, ipc.HintVersion)
	}
	rc := http.NewResponseController(w)
	body, a, ok := readBody(r, w)
	if !ok {
		return a
	}
	// The request is read (net/http lifts the read deadline here, so a
	// long login is not cut off by ReadTimeout); give the answer time to
	// be written after the work is done.
	_ = rc.SetWriteDeadline(time.Now().Add(rt.timeout + writeSlack))
	a, aborted := s.work(r.Context(), rt.timeout, r.URL.Path, func(ctx context.Context) answer {
		return rt.serve(s, ctx, r, body)
	})
	if aborted {
		panic(http.ErrAbortHandler)
	}
	return a
}

// work runs serve under a work deadline of timeout and turns a panic into
// an internal error. It reports whether serve panicked with
// http.ErrAbortHandler, which asks for the connection to be dropped
// without an answer.
func (s *Server) work(ctx context.Context, timeout time.Duration, path string, serve func(context.Context) answer) (a answer, aborted bool) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				aborted = true
				return
			}
			s.log.Error("ipc_handler_panic", "path", path, "panic", v)
			a = errAnswer(ipc.CodeInternal, "internal error in the agent; see its log", ipc.HintLog)
		}
	}()
	return serve(ctx), false
}

// readBody reads at most MaxBodyBytes of the request body.
func readBody(r *http.Request, w http.ResponseWriter) ([]byte, answer, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, errAnswer(ipc.CodeTooLarge, fmt.Sprintf("request body over %d bytes", MaxBodyBytes), ipc.HintTooLarge), false
		}
		return nil, errAnswer(ipc.CodeBadRequest, "reading request body: "+err.Error(), ipc.HintVersion), false
	}
	return body, answer{}, true
}

// decodeStrict decodes exactly one JSON value into v, refusing unknown
// fields and trailing data. An empty body is an error unless emptyOK.
func decodeStrict(body []byte, v any, emptyOK bool) (answer, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		if emptyOK {
			return answer{}, true
		}
		return errAnswer(ipc.CodeBadRequest, "request body required", ipc.HintVersion), false
	}
	if bytes.TrimSpace(body)[0] != '{' {
		// null, arrays and scalars would decode into a zero request.
		return errAnswer(ipc.CodeBadRequest, "request body must be a JSON object", ipc.HintVersion), false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		// The decoder's messages name fields and types, never values.
		return errAnswer(ipc.CodeBadRequest, "decoding request body: "+jsonErrorText(err), ipc.HintVersion), false
	}
	if _, err := dec.Token(); err != io.EOF {
		return errAnswer(ipc.CodeBadRequest, "decoding request body: data after the JSON object", ipc.HintVersion), false
	}
	return answer{}, true
}

// jsonErrorText describes a decoding error without quoting the input.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "invalid JSON at offset " + strconv.FormatInt(se.Offset, 10)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "wrong type for field " + strconv.Quote(te.Field)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return "truncated JSON"
	}
	// Unknown fields: "json: unknown field \"x\"" names the field only.
	return err.Error()
}

// result turns a Handler's answer into an answer.
func (s *Server) result(ctx context.Context, path string, v any, isNil bool, err error) answer {
	if err != nil {
		if e, ok := errors.AsType[*ipc.Error](err); ok && e.Code != "" {
			return errAnswer(e.Code, e.Message, e.Hint)
		}
		s.log.ErrorContext(ctx, "ipc_handler_error", "path", path, "err", err)
		return errAnswer(ipc.CodeInternal, "internal error in the agent; see its log", ipc.HintLog)
	}
	if isNil {
		s.log.ErrorContext(ctx, "ipc_handler_nil_answer", "path", path)
		return errAnswer(ipc.CodeInternal, "internal error in the agent; see its log", ipc.HintLog)
	}
	return okAnswer(v)
}

func (s *Server) serveToken(ctx context.Context, r *http.Request, body []byte) answer {
	if len(body) != 0 {
		return errAnswer(ipc.CodeBadRequest, "GET "+ipc.PathToken+" takes no body", ipc.HintVersion)
	}
	return s.tokenHTTP(ctx, r.URL.RawQuery)
}

// tokenHTTP answers a token request with the query string rawQuery.
func (s *Server) tokenHTTP(ctx context.Context, rawQuery string) answer {
	tenant, minValid, refusal := tokenQuery(rawQuery)
	if refusal != nil {
		return *refusal
	}
	return s.token(ctx, tenant, minValid)
}

// token answers a token request, from the HTTP API or a frame.
func (s *Server) token(ctx context.Context, tenant string, minValid time.Duration) answer {
	resp, err := s.h.Token(ctx, tenant, minValid)
	a := s.result(ctx, ipc.PathToken, resp, resp == nil, err)
	a.tenant = tenant
	return a
}

// tokenQuery reads a token request's query: the tenant and min_valid, or
// the answer that refuses the query.
func tokenQuery(rawQuery string) (tenant string, minValid time.Duration, refusal *answer) {
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		a := errAnswer(ipc.CodeBadRequest, "malformed query string", ipc.HintVersion)
		return "", 0, &a
	}
	// In key order, so that a request with several faults always gets the
	// same answer.
	for _, k := range slices.Sorted(maps.Keys(q)) {
		switch k {
		case "tenant", "min_valid":
			if len(q[k]) != 1 {
				a := errAnswer(ipc.CodeBadRequest, "query parameter "+k+" given more than once", ipc.HintVersion)
				return "", 0, &a
			}
		default:
			a := errAnswer(ipc.CodeBadRequest, "unknown query parameter "+strconv.Quote(k), ipc.HintVersion)
			return "", 0, &a
		}
	}
	tenant = q.Get("tenant")
	minValid = ipc.NoMinValid
	if mv, ok := q["min_valid"]; ok {
		n, err := strconv.ParseInt(mv[0], 10, 64)
		if err != nil || n < 0 || n > math.MaxInt64/int64(time.Second) {
			a := errAnswer(ipc.CodeBadRequest, "query parameter min_valid must be a non-negative integer number of seconds", ipc.HintVersion)
			a.tenant = tenant
			return "", 0, &a
		}
		minValid = time.Duration(n) * time.Second
	}
	return tenant, minValid, nil
}

func (s *Server) serveStatus(ctx context.Context, r *http.Request, body []byte) answer {
	if len(body) != 0 {
		return errAnswer(ipc.CodeBadRequest, "GET "+ipc.PathStatus+" takes no body", ipc.HintVersion)
	}
	resp, err := s.h.Status(ctx)
	return s.result(ctx, r.URL.Path, resp, resp == nil, err)
}

func (s *Server) serveLogin(ctx context.Context, r *http.Request, body []byte) answer {
	return serveJSON(s, ctx, r, body, s.h.Login, func(q *ipc.LoginRequest) string { return q.Tenant })
}

func (s *Server) serveLogout(ctx context.Context, r *http.Request, body []byte) answer {
	logout := func(ctx context.Context, q *ipc.LogoutRequest) (*ipc.TenantStatus, error) {
		return s.h.Logout(ctx, q.Tenant)
	}
	return serveJSON(s, ctx, r, body, logout, func(q *ipc.LogoutRequest) string { return q.Tenant })
}

func (s *Server) serveImport(ctx context.Context, r *http.Request, body []byte) answer {
	return serveJSON(s, ctx, r, body, s.h.Import, func(q *ipc.ImportRequest) string { return q.Tenant })
}

// serveJSON decodes a POST body strictly into a Req, calls the handler with
// it, and names the request's tenant in the answer's log line.
func serveJSON[Req, Resp any](s *Server, ctx context.Context, r *http.Request, body []byte,
	call func(context.Context, *Req) (*Resp, error), tenant func(*Req) string) answer {
	var req Req
	if a, ok := decodeStrict(body, &req, false); !ok {
		return a
	}
	resp, err := call(ctx, &req)
	a := s.result(ctx, r.URL.Path, resp, resp == nil, err)
	a.tenant = tenant(&req)
	return a
}

func (s *Server) serveReload(ctx context.Context, r *http.Request, body []byte) answer {
	var req struct{}
	if a, ok := decodeStrict(body, &req, true); !ok {
		return a
	}
	resp, err := s.h.Reload(ctx)
	return s.result(ctx, r.URL.Path, resp, resp == nil, err)
}

// writeJSON writes v as the whole answer. The JSON is buffered so that
// every answer has a Content-Length and is never chunked: the ipc client
// relies on it.
func writeJSON(w http.ResponseWriter, status int, v any) {
	status, b := encodeAnswer(status, v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// encodeAnswer returns the status and body of an answer: v as JSON and a
// newline, or an internal error if v does not encode.
func encodeAnswer(status int, v any) (int, []byte) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b, _ = json.Marshal(ipc.ErrorBody{Error: ipc.ErrorDetail{Code: ipc.CodeInternal, Message: "encoding the answer", Hint: ipc.HintLog}})
	}
	return status, append(b, '\n')
}

// tokenInstant calls TokenInstant; a panic in it counts as "not at once",
// so that the request takes the Token path, which answers a panic.
func tokenInstant(it InstantTokener, tenant string, minValid time.Duration) (resp *ipc.TokenResponse, ok bool) {
	defer func() {
		if recover() != nil {
			resp, ok = nil, false
		}
	}()
	resp, ok = it.TokenInstant(tenant, minValid)
	return resp, ok && resp != nil
}
