package ipcserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// route describes one path of the HTTP API.
type route struct {
	method  string
	timeout time.Duration
	serve   func(s *Server, ctx context.Context, r *http.Request, body []byte) answer
}

var routes = map[string]route{
	ipc.PathToken:  {http.MethodGet, tokenWorkTimeout, (*Server).serveToken},
	ipc.PathStatus: {http.MethodGet, otherWorkTimeout, (*Server).serveStatus},
	ipc.PathLogin: {http.MethodPost, loginWorkTimeout, func(s *Server, ctx context.Context, r *http.Request, body []byte) answer {
		return serveJSON(s, ctx, r, body, s.h.Login, func(q *ipc.LoginRequest) string { return q.Tenant })
	}},
	ipc.PathLogout: {http.MethodPost, otherWorkTimeout, func(s *Server, ctx context.Context, r *http.Request, body []byte) answer {
		logout := func(ctx context.Context, q *ipc.LogoutRequest) (*ipc.TenantStatus, error) {
			return s.h.Logout(ctx, q.Tenant)
		}
		return serveJSON(s, ctx, r, body, logout, func(q *ipc.LogoutRequest) string { return q.Tenant })
	}},
	// An import may log in with a password: it gets a login's time.
	ipc.PathImport: {http.MethodPost, loginWorkTimeout, func(s *Server, ctx context.Context, r *http.Request, body []byte) answer {
		return serveJSON(s, ctx, r, body, s.h.Import, func(q *ipc.ImportRequest) string { return q.Tenant })
	}},
	ipc.PathReload: {http.MethodPost, otherWorkTimeout, (*Server).serveReload},
	ipc.PathLease: {http.MethodPost, otherWorkTimeout, func(s *Server, ctx context.Context, r *http.Request, body []byte) answer {
		return serveJSON(s, ctx, r, body, s.h.Lease, func(q *ipc.LeaseRequest) string { return q.Tenant })
	}},
}

// ServeHTTP answers one HTTP request. It is exported for http.Server;
// requests that did not come through Serve carry no peer credentials and
// are answered forbidden.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	a := s.handle(w, r)
	// Buffered, so that every answer has a Content-Length.
	b, err := json.Marshal(a.body)
	if err != nil {
		a = errAnswer(ipc.CodeInternal, "encoding the answer", ipc.HintLog)
		b, _ = json.Marshal(a.body)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)+1))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(a.status)
	_, _ = w.Write(append(b, '\n'))
	s.logRequest(r.Context(), r.Method, r.URL.Path, start, a)
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
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
		return errAnswer(ipc.CodeTooLarge, "request body over "+strconv.Itoa(MaxBodyBytes)+" bytes", ipc.HintTooLarge)
	} else if err != nil {
		return errAnswer(ipc.CodeBadRequest, "reading request body: "+err.Error(), ipc.HintVersion)
	}
	// The request is read (net/http lifts the read deadline here, so a
	// long login is not cut off by ReadTimeout); give the answer time to
	// be written after the work is done.
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(rt.timeout + writeSlack))
	return s.work(r.Context(), rt.timeout, r.URL.Path, func(ctx context.Context) answer {
		return rt.serve(s, ctx, r, body)
	})
}

// decodeStrict decodes exactly one JSON object into v, refusing unknown
// fields and trailing data; an empty body only when emptyOK. Its errors
// name fields and types, never values.
func decodeStrict(body []byte, v any, emptyOK bool) (answer, bool) {
	trimmed := bytes.TrimSpace(body)
	switch {
	case len(trimmed) == 0 && emptyOK:
		return answer{}, true
	case len(trimmed) == 0:
		return errAnswer(ipc.CodeBadRequest, "request body required", ipc.HintVersion), false
	case trimmed[0] != '{': // null, arrays and scalars would decode into a zero request
		return errAnswer(ipc.CodeBadRequest, "request body must be a JSON object", ipc.HintVersion), false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	var msg string
	se, isSyntax := errors.AsType[*json.SyntaxError](err)
	te, isType := errors.AsType[*json.UnmarshalTypeError](err)
	switch {
	case isSyntax:
		msg = "invalid JSON at offset " + strconv.FormatInt(se.Offset, 10)
	case isType:
		msg = "wrong type for field " + strconv.Quote(te.Field)
	case errors.Is(err, io.ErrUnexpectedEOF):
		msg = "truncated JSON"
	case err != nil:
		msg = err.Error() // unknown field: `json: unknown field "x"`
	default:
		if _, err := dec.Token(); err == io.EOF {
			return answer{}, true
		}
		msg = "data after the JSON object"
	}
	return errAnswer(ipc.CodeBadRequest, "decoding request body: "+msg, ipc.HintVersion), false
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
	a := result(s, ctx, r.URL.Path, resp, err)
	a.tenant = tenant(&req)
	return a
}

func (s *Server) serveReload(ctx context.Context, r *http.Request, body []byte) answer {
	if a, ok := decodeStrict(body, &struct{}{}, true); !ok {
		return a
	}
	resp, err := s.h.Reload(ctx)
	return result(s, ctx, r.URL.Path, resp, err)
}

func (s *Server) serveStatus(ctx context.Context, r *http.Request, body []byte) answer {
	if len(body) != 0 {
		return errAnswer(ipc.CodeBadRequest, "GET "+ipc.PathStatus+" takes no body", ipc.HintVersion)
	}
	resp, err := s.h.Status(ctx)
	return result(s, ctx, r.URL.Path, resp, err)
}

func (s *Server) serveToken(ctx context.Context, r *http.Request, body []byte) answer {
	if len(body) != 0 {
		return errAnswer(ipc.CodeBadRequest, "GET "+ipc.PathToken+" takes no body", ipc.HintVersion)
	}
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return errAnswer(ipc.CodeBadRequest, "malformed query string", ipc.HintVersion)
	}
	// In key order, so that a request with several faults always gets the
	// same answer.
	for _, k := range slices.Sorted(maps.Keys(q)) {
		if k != "tenant" && k != "min_valid" {
			return errAnswer(ipc.CodeBadRequest, "unknown query parameter "+strconv.Quote(k), ipc.HintVersion)
		}
		if len(q[k]) != 1 {
			return errAnswer(ipc.CodeBadRequest, "query parameter "+k+" given more than once", ipc.HintVersion)
		}
	}
	minValid := ipc.NoMinValid
	if mv, ok := q["min_valid"]; ok {
		n, err := strconv.ParseInt(mv[0], 10, 64)
		if err != nil || n < 0 || n > (1<<63-1)/int64(time.Second) {
			a := errAnswer(ipc.CodeBadRequest, "query parameter min_valid must be a non-negative integer number of seconds", ipc.HintVersion)
			a.tenant = q.Get("tenant")
			return a
		}
		minValid = time.Duration(n) * time.Second
	}
	return s.token(ctx, q.Get("tenant"), minValid)
}
