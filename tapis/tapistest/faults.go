package tapistest

import (
	"bytes"
	"encoding/json"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Route names a group of endpoints for fault injection and counters.
// Client routes include /v3/oauth2/clients/{id}; tenants and sites routes
// include their {id} forms. Health endpoints count under their own path.
type Route string

// Routes of the fake tenant.
const (
	RouteTokens     Route = "/v3/oauth2/tokens"
	RouteClients    Route = "/v3/oauth2/clients"
	RouteRevoke     Route = "/v3/oauth2/tokens/revoke"
	RouteUserinfo   Route = "/v3/oauth2/userinfo"
	RouteDeviceCode Route = "/v3/oauth2/device/code"
	RouteTenants    Route = "/v3/tenants"
	RouteSites      Route = "/v3/sites"
	RouteBrowser    Route = "/v3/oauth2/authorize" // with /login and /device: the pages a browser sees
	RouteWellKnown  Route = "/v3/oauth2/.well-known/oauth-authorization-server"
)

// Fault is a misbehaviour injected on a route. Several kinds combine: a
// Delay runs first, then Hang, Drop, Status or DripEvery decide the
// answer. The zero Fault does nothing (but still counts against Times).
type Fault struct {
	GrantType   string        // tokens route only: apply only to this grant_type ("" = any)
	Delay       time.Duration // wait before answering (return early if the request context ends)
	Hang        bool          // never answer until the request context ends or the server closes
	Status      int           // answer with this status (0 = no status fault, continue normally after Delay)
	Body        string        // raw body for Status (default: a JSON envelope error or the Flask HTML 500 page for 500)
	ContentType string        // content type for Body (default application/json, or text/html for the 500 page)
	Drop        bool          // hijack the connection and close it without answering
	DripEvery   time.Duration // answer normally but write the body one byte per DripEvery
	Times       int           // how many requests it applies to; 0 = until ClearFaults
}

// FaultTryLater returns a fault that answers token requests with the
// authenticator's "try again later" error (400, §2.6 row 23), times times
// (0 = until cleared).
func FaultTryLater(times int) Fault {
	return Fault{Status: http.StatusBadRequest, Body: EnvelopeError(MsgTryLater), ContentType: "application/json", Times: times}
}

// Fault500 returns a fault that answers with Flask's HTML 500 page, times
// times (0 = until cleared).
func Fault500(times int) Fault {
	return Fault{Status: http.StatusInternalServerError, Times: times}
}

type faultState struct {
	f    Fault
	left int // remaining uses; unlimited when f.Times == 0
}

// Inject queues a fault on route. Faults are consumed in the order they
// were injected: a request takes the first matching one.
func (s *Server) Inject(r Route, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults[r] = append(s.faults[r], &faultState{f: f, left: f.Times})
}

// ClearFaults removes every injected fault.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.faults)
}

// takeFault returns the fault that applies to this request, consuming one
// use of it, or nil.
func (s *Server) takeFault(r Route, grant string) *Fault {
	s.mu.Lock()
	defer s.mu.Unlock()
	q := s.faults[r]
	for i, fs := range q {
		if fs.f.GrantType != "" && fs.f.GrantType != grant {
			continue
		}
		f := fs.f
		if f.Times > 0 {
			fs.left--
			if fs.left <= 0 {
				s.faults[r] = append(q[:i:i], q[i+1:]...)
			}
		}
		return &f
	}
	return nil
}

// applyFault carries out f and reports whether the request was answered
// (or abandoned); false means the endpoint should answer normally.
func (s *Server) applyFault(w http.ResponseWriter, r *http.Request, f *Fault, ep *endpoint) bool {
	ctx := r.Context()
	if f.Delay > 0 && !s.waitCtx(ctx, f.Delay) {
		return true
	}
	switch {
	case f.Hang:
		select {
		case <-ctx.Done():
		case <-s.closed:
		}
		return true
	case f.Drop:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
		return true
	case f.Status != 0:
		body, ctype := f.Body, f.ContentType
		if body == "" {
			if f.Status == http.StatusInternalServerError {
				body, ctype = FlaskHTML500, "text/html; charset=utf-8"
			} else {
				body = EnvelopeError(http.StatusText(f.Status))
			}
		}
		if ctype == "" {
			ctype = "application/json"
		}
		w.Header().Set("Content-Type", ctype)
		w.WriteHeader(f.Status)
		w.Write([]byte(body))
		return true
	case f.DripEvery > 0:
		buf := &bufferWriter{header: make(http.Header)}
		s.dispatch(buf, r, ep)
		for k, v := range buf.header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Length", strconv.Itoa(buf.body.Len()))
		w.WriteHeader(buf.status)
		rc := http.NewResponseController(w)
		rc.Flush()
		for _, c := range buf.body.Bytes() {
			if !s.waitCtx(ctx, f.DripEvery) {
				return true
			}
			w.Write([]byte{c})
			rc.Flush()
		}
		return true
	}
	return false
}

// bufferWriter collects an answer to drip it out later.
type bufferWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (b *bufferWriter) Header() http.Header { return b.header }

func (b *bufferWriter) WriteHeader(code int) {
	if b.status == 0 {
		b.status = code
	}
}

func (b *bufferWriter) Write(p []byte) (int, error) {
	if b.status == 0 {
		b.status = http.StatusOK
	}
	return b.body.Write(p)
}

// sniffGrant extracts grant_type from a token request body for counters
// and fault filters; "" when there is none or the body is unreadable.
func sniffGrant(ctype string, body []byte) string {
	mt, _, _ := mime.ParseMediaType(ctype)
	switch strings.ToLower(mt) {
	case "application/json":
		var v struct {
			GrantType any `json:"grant_type"`
		}
		if json.Unmarshal(body, &v) == nil {
			if g, ok := v.GrantType.(string); ok {
				return g
			}
		}
	case "application/x-www-form-urlencoded":
		if q, err := url.ParseQuery(string(body)); err == nil {
			return q.Get("grant_type")
		}
	}
	return ""
}
