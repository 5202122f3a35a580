// Package ipcserver serves the agent's socket (package ipc): the token
// frame, and the HTTP API with net/http, with one peer check, size and
// time limits for both.
//
// Every accepted connection is classified by its first byte (ipc.IsFrame,
// accept.go): a token frame is answered by serveFrame (frame.go), anything
// else goes to net/http (http.go). It is a package of its own so that the
// helper tapis-token, which links package ipc, does not link net/http.
package ipcserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// Handler does the work behind the socket; the agent implements it. Its
// methods are called concurrently, one goroutine per request, with a
// context that ends when the client goes away or the call's time is up.
//
// An *ipc.Error is answered with its code, message and hint (over HTTP
// under the status ipc.HTTPStatus(code)). Any other error is logged and
// answered as internal with a generic message, so that an upstream detail
// never reaches the client by accident.
type Handler interface {
	Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error)
	Status(ctx context.Context) (*ipc.StatusResponse, error)
	Login(ctx context.Context, req *ipc.LoginRequest) (*ipc.LoginResponse, error)
	Logout(ctx context.Context, tenant string) (*ipc.TenantStatus, error)
	Import(ctx context.Context, req *ipc.ImportRequest) (*ipc.TenantStatus, error)
	Reload(ctx context.Context) (*ipc.StatusResponse, error)
	Lease(ctx context.Context, req *ipc.LeaseRequest) (*ipc.LeaseStatus, error)
}

// InstantTokener is implemented by a Handler that can tell at once,
// without waiting for anything, whether it holds a token for a request.
// The Server then answers token frames in its accept loop (accept_linux.go).
type InstantTokener interface {
	// TokenInstant returns what Token would answer for tenant and
	// minValid, if that is a token it holds; otherwise false, and the
	// request takes the Token path. It must not block.
	TokenInstant(tenant string, minValid time.Duration) (*ipc.TokenResponse, bool)
}

// Limits and defaults of a Server.
const (
	MaxBodyBytes   = 64 << 10 // bounds a request body; a larger one is answered too_large
	MaxHeaderBytes = 8 << 10  // bounds a request's header block

	idleTimeout = 60 * time.Second // closes a kept-alive HTTP connection or kept frame connection
	writeSlack  = 10 * time.Second // to write an answer once the work is done

	// Work deadlines per call, a little below the clients' timeouts so
	// that a slow call ends with the agent's answer.
	tokenWorkTimeout = ipc.TokenTimeout - 5*time.Second
	loginWorkTimeout = ipc.LoginTimeout - 5*time.Second
	otherWorkTimeout = ipc.DefaultTimeout - 5*time.Second
)

// Server answers the agent's socket. Create it with New, then call Serve
// once. Its request handling is safe for concurrent use.
type Server struct {
	h   Handler
	log *slog.Logger
	uid int // the only peer uid served; os.Getuid() but for tests

	// Limits, set by New; tests shorten them.
	readHeaderTimeout time.Duration // to read a request frame or an HTTP request's headers
	readTimeout       time.Duration // to read a whole HTTP request; the work behind it has its own
	keptIdle          time.Duration // closes a kept token-frame connection that sends no request
	shutdownTimeout   time.Duration // for in-flight answers once Serve's context is done
	// maxConns bounds the connections served at once; further clients
	// wait in the listen backlog. An idle connection holds a slot until a
	// timeout closes it, so a small cap would let a leaky or hostile
	// client of the same user starve every other one.
	maxConns int
}

// New returns a Server that answers with h and logs to logger (nil means
// discard).
func New(h Handler, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{h: h, log: logger, uid: os.Getuid(), readHeaderTimeout: 5 * time.Second,
		readTimeout: 15 * time.Second, keptIdle: idleTimeout, shutdownTimeout: 5 * time.Second, maxConns: 4096}
}

// Serve answers on ln until ctx is done, then stops accepting, closes ln,
// lets in-flight answers finish for up to five seconds and returns nil.
// It returns an error only if accepting connections fails.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// Calls run under a context that keeps ctx's values but is not
	// cancelled with it: a shutdown lets them finish, up to the grace
	// period, after which baseCancel cuts them off.
	base, baseCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer baseCancel()
	d := newDispatcher(s, ln, s.maxConns)
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.readHeaderTimeout,
		ReadTimeout:       s.readTimeout,
		WriteTimeout:      otherWorkTimeout + writeSlack, // routes set their own
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return base },
		ConnContext:       s.connContext,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	httpDone := make(chan struct{})
	go func() { defer close(httpDone); _ = srv.Serve(d) }() // ends when d closes
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
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.shutdownTimeout)
	defer cancel()
	// Frames in flight and connections not yet classified are the
	// dispatcher's; net/http has the rest.
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

// answer is what a call answers, over HTTP or in a frame, and what its log
// line says.
type answer struct {
	status int
	body   any    // *ipc.TokenResponse or another answer type, or ipc.ErrorBody
	tenant string // logged; the only request value that is
	code   string // error code, logged
}

func errAnswer(code, msg, hint string) answer {
	if hint == "" {
		hint = ipc.Hint(code)
	}
	return answer{status: ipc.HTTPStatus(code), code: code,
		body: ipc.ErrorBody{Error: ipc.ErrorDetail{Code: code, Message: msg, Hint: hint}}}
}

// result turns what a Handler returned into an answer.
func result[T any](s *Server, ctx context.Context, path string, v *T, err error) answer {
	ie, isIPC := errors.AsType[*ipc.Error](err)
	switch {
	case isIPC && ie.Code != "":
		return errAnswer(ie.Code, ie.Message, ie.Hint)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		// The client went away (or the agent stops): nobody reads this.
		s.log.DebugContext(ctx, "ipc_call_cancelled", "path", path)
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		// The call's work deadline passed: upstream (or a command
		// standing in for it) did not answer in time.
		s.log.WarnContext(ctx, "ipc_call_timed_out", "path", path)
		return errAnswer(ipc.CodeUpstreamUnavailable, "the agent's work on this call did not finish in time (Tapis or a password_command is slow to answer)",
			"the agent keeps trying; see tapis-token status")
	case err != nil:
		s.log.ErrorContext(ctx, "ipc_handler_error", "path", path, "err", err)
	case v == nil:
		s.log.ErrorContext(ctx, "ipc_handler_nil_answer", "path", path)
	default:
		return answer{status: http.StatusOK, body: v}
	}
	return errAnswer(ipc.CodeInternal, "internal error in the agent; see its log", ipc.HintLog)
}

// work runs call under a work deadline of timeout, and turns a panic into
// an internal error; it re-panics http.ErrAbortHandler, with which net/http
// drops a connection without an answer.
func (s *Server) work(ctx context.Context, timeout time.Duration, path string, call func(context.Context) answer) (a answer) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("ipc_handler_panic", "path", path, "panic", v)
			a = errAnswer(ipc.CodeInternal, "internal error in the agent; see its log", ipc.HintLog)
		}
	}()
	return call(ctx)
}

// token answers a token request, from the HTTP API or a frame.
func (s *Server) token(ctx context.Context, tenant string, minValid time.Duration) answer {
	resp, err := s.h.Token(ctx, tenant, minValid)
	a := result(s, ctx, ipc.PathToken, resp, err)
	a.tenant = tenant
	return a
}

// logRequest writes the debug line of one answered request.
func (s *Server) logRequest(ctx context.Context, method, path string, start time.Time, a answer) {
	if !s.log.Enabled(ctx, slog.LevelDebug) {
		return // the accept loop answers in microseconds: build nothing
	}
	args := []any{"method", method, "path", path, "status", a.status, "duration", time.Since(start)}
	if a.tenant != "" {
		args = append(args, "tenant", a.tenant)
	}
	if a.code != "" {
		args = append(args, "code", a.code)
	}
	s.log.DebugContext(ctx, "ipc_request", args...)
}
