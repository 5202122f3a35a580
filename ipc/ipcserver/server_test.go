package ipcserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

// fakeHandler answers every call with canned values; hooks override
// single calls.
type fakeHandler struct {
	token func(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error)
	login func(ctx context.Context, req *ipc.LoginRequest) (*ipc.LoginResponse, error)
}

func (f *fakeHandler) Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
	if f.token != nil {
		return f.token(ctx, tenant, minValid)
	}
	// ExpiresIn echoes minValid in seconds, and -1 for ipc.NoMinValid.
	in := int64(minValid / time.Second)
	if minValid == ipc.NoMinValid {
		in = -1
	}
	return &ipc.TokenResponse{Tenant: tenant, AccessToken: "jwt", ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ExpiresIn: in}, nil
}

func (f *fakeHandler) Status(ctx context.Context) (*ipc.StatusResponse, error) {
	return &ipc.StatusResponse{Version: "test"}, nil
}

func (f *fakeHandler) Login(ctx context.Context, req *ipc.LoginRequest) (*ipc.LoginResponse, error) {
	if f.login != nil {
		return f.login(ctx, req)
	}
	return &ipc.LoginResponse{Tenant: ipc.TenantStatus{Tenant: req.Tenant, State: ipc.StateReady}}, nil
}

func (f *fakeHandler) Logout(ctx context.Context, tenant string) (*ipc.TenantStatus, error) {
	return &ipc.TenantStatus{Tenant: tenant}, nil
}

func (f *fakeHandler) Import(ctx context.Context, req *ipc.ImportRequest) (*ipc.TenantStatus, error) {
	return &ipc.TenantStatus{Tenant: req.Tenant}, nil
}

func (f *fakeHandler) Reload(ctx context.Context) (*ipc.StatusResponse, error) {
	return &ipc.StatusResponse{Version: "reloaded"}, nil
}

func (f *fakeHandler) Lease(ctx context.Context, req *ipc.LeaseRequest) (*ipc.LeaseStatus, error) {
	return &ipc.LeaseStatus{Job: req.Job, Tenant: req.Tenant}, nil
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex // guards b
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "ta")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

type testServer struct {
	path   string
	log    *syncBuffer
	cancel context.CancelFunc
	done   chan error
}

// start serves s on ln until the test ends.
func start(t *testing.T, s *Server, ln net.Listener, path string) *testServer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{path: path, cancel: cancel, done: make(chan error, 1)}
	go func() { ts.done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	return ts
}

// newTestServer starts a Server for h on a fresh socket; configure may
// adjust it first.
func newTestServer(t *testing.T, h Handler, configure func(*Server)) *testServer {
	t.Helper()
	path := filepath.Join(shortDir(t), "agent.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	buf := &syncBuffer{}
	s := New(h, slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if configure != nil {
		configure(s)
	}
	ts := start(t, s, ln, path)
	ts.log = buf
	return ts
}

// roundTrip sends raw bytes and parses the answer with net/http.
func roundTrip(t *testing.T, path, raw string) (*http.Response, []byte) {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	req := &http.Request{Method: strings.Fields(raw + " GET")[0]}
	resp, err := http.ReadResponse(bufio.NewReader(c), req)
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	// net/http answers some broken requests (431) and closes at once,
	// which may reset the connection while our request is unread.
	if err != nil && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("reading body: %v", err)
	}
	return resp, body
}

func get(target string) string {
	return "GET " + target + " HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\n\r\n"
}

func post(target, body string) string {
	return fmt.Sprintf("POST %s HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", target, len(body), body)
}

func TestMalformedRequests(t *testing.T) {
	h := &fakeHandler{}
	ts := newTestServer(t, h, nil)
	client := &ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}
	cases := []struct {
		name       string
		raw        string
		wantStatus int
		wantCode   string // empty: net/http's own plain-text answer
		wantMsg    string // substring of the message
		wantAllow  string
	}{
		{"garbage", "\x00\x01garbage\r\n\r\n", 400, "", "", ""},
		{"oversized headers", "GET /v1/status HTTP/1.1\r\nHost: x\r\nX: " + strings.Repeat("a", 2*MaxHeaderBytes) + "\r\n\r\n", 431, "", "", ""},
		{"oversized body", post(ipc.PathImport, `{"tenant":"`+strings.Repeat("a", MaxBodyBytes)+`"}`), 413, ipc.CodeTooLarge, "", ""},
		{"bad JSON", post(ipc.PathLogin, `{"tenant":`), 400, ipc.CodeBadRequest, "truncated JSON", ""},
		{"not JSON", post(ipc.PathLogin, `{tenant=x}`), 400, ipc.CodeBadRequest, "invalid JSON", ""},
		{"unknown field", post(ipc.PathLogin, `{"tenant":"t","pasword":"x"}`), 400, ipc.CodeBadRequest, "pasword", ""},
		{"wrong type", post(ipc.PathLogout, `{"tenant":5}`), 400, ipc.CodeBadRequest, "tenant", ""},
		{"trailing data", post(ipc.PathLogout, `{"tenant":"t"} {}`), 400, ipc.CodeBadRequest, "data after", ""},
		{"empty body", post(ipc.PathImport, ``), 400, ipc.CodeBadRequest, "body required", ""},
		{"null body", post(ipc.PathLogout, `null`), 400, ipc.CodeBadRequest, "JSON object", ""},
		{"array body", post(ipc.PathReload, ` []`), 400, ipc.CodeBadRequest, "JSON object", ""},
		{"reload unknown field", post(ipc.PathReload, `{"x":1}`), 400, ipc.CodeBadRequest, "", ""},
		{"min_valid negative", get("/v1/token?tenant=t&min_valid=-1"), 400, ipc.CodeBadRequest, "min_valid", ""},
		{"min_valid duration", get("/v1/token?min_valid=1h"), 400, ipc.CodeBadRequest, "min_valid", ""},
		{"min_valid fraction", get("/v1/token?min_valid=1.5"), 400, ipc.CodeBadRequest, "min_valid", ""},
		{"min_valid empty", get("/v1/token?min_valid="), 400, ipc.CodeBadRequest, "min_valid", ""},
		{"min_valid overflow", get("/v1/token?min_valid=99999999999999999999"), 400, ipc.CodeBadRequest, "min_valid", ""},
		{"min_valid twice", get("/v1/token?min_valid=1&min_valid=2"), 400, ipc.CodeBadRequest, "min_valid", ""},
		{"unknown parameter", get("/v1/token?tenant=t&mni_valid=5"), 400, ipc.CodeBadRequest, "mni_valid", ""},
		{"bad escape", get("/v1/token?tenant=%zz"), 400, ipc.CodeBadRequest, "query", ""},
		{"body on GET", "GET /v1/status HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}", 400, ipc.CodeBadRequest, "no body", ""},
		{"POST token", post(ipc.PathToken, `{}`), 405, ipc.CodeMethodNotAllowed, "", "GET"},
		{"GET login", get(ipc.PathLogin), 405, ipc.CodeMethodNotAllowed, "", "POST"},
		{"HEAD status", "HEAD /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", 405, "", "", "GET"},
		{"unknown path", get("/v1/nope"), 404, ipc.CodeNotFound, "", ""},
		{"root", get("/"), 404, ipc.CodeNotFound, "", ""},
		{"unversioned", get("/token"), 404, ipc.CodeNotFound, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := roundTrip(t, ts.path, tc.raw)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d; want %d (body %q)", resp.StatusCode, tc.wantStatus, body)
			}
			if tc.wantAllow != "" && resp.Header.Get("Allow") != tc.wantAllow {
				t.Errorf("Allow = %q; want %q", resp.Header.Get("Allow"), tc.wantAllow)
			}
			if tc.wantCode != "" {
				checkJSONHeaders(t, resp, body)
				var eb ipc.ErrorBody
				if err := jsonUnmarshal(body, &eb); err != nil {
					t.Fatalf("error body %q: %v", body, err)
				}
				if eb.Error.Code != tc.wantCode || !strings.Contains(eb.Error.Message, tc.wantMsg) {
					t.Errorf("error = %+v; want code %s, message containing %q", eb.Error, tc.wantCode, tc.wantMsg)
				}
				if eb.Error.Hint == "" {
					t.Errorf("error = %+v; want a hint naming the next step", eb.Error)
				}
			}
			// The server still answers a good request.
			if _, err := client.Token(context.Background(), "t", time.Minute); err != nil {
				t.Fatalf("good request after %s: %v", tc.name, err)
			}
		})
	}
}

func checkJSONHeaders(t *testing.T, resp *http.Response, body []byte) {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q; want application/json", ct)
	}
	if len(resp.TransferEncoding) != 0 || resp.ContentLength != int64(len(body)) {
		t.Errorf("Transfer-Encoding %v, Content-Length %d for a %d-byte body; want an exact Content-Length", resp.TransferEncoding, resp.ContentLength, len(body))
	}
}

func TestGoodRequests(t *testing.T) {
	ts := newTestServer(t, &fakeHandler{}, nil)
	cases := []struct {
		name string
		raw  string
		want string // substring of the JSON body
	}{
		{"token without min_valid", get("/v1/token?tenant=t"), `"expires_in":-1`}, // ipc.NoMinValid: the handler's default
		{"token min_valid 0", get("/v1/token?min_valid=0"), `"expires_in":0`},
		{"token min_valid", get("/v1/token?tenant=a%20b&min_valid=7200"), `"tenant":"a b","base_url":"","username":"","access_token":"jwt","expires_at":"2030-01-02T03:04:05Z","expires_in":7200}`},
		{"status", get(ipc.PathStatus), `"version":"test"`},
		{"reload empty", post(ipc.PathReload, ``), `"version":"reloaded"`},
		{"reload object", post(ipc.PathReload, `{}`), `"version":"reloaded"`},
		{"keep-alive client", "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n", `"version":"test"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := roundTrip(t, ts.path, tc.raw)
			if resp.StatusCode != 200 || !strings.Contains(string(body), tc.want) {
				t.Fatalf("answer %d %q; want 200 containing %q", resp.StatusCode, body, tc.want)
			}
			checkJSONHeaders(t, resp, body)
		})
	}
}

func TestHandlerFailures(t *testing.T) {
	h := &fakeHandler{token: func(ctx context.Context, tenant string, _ time.Duration) (*ipc.TokenResponse, error) {
		switch tenant {
		case "nil":
			return nil, nil
		case "panic":
			panic("handler bug")
		case "plain":
			return nil, errors.New("dial tcp 10.0.0.1: secret detail")
		case "wrapped":
			return nil, fmt.Errorf("refreshing: %w", &ipc.Error{Code: ipc.CodeLoginRequired, Message: "log in again", Hint: "tapis-token login wrapped"})
		case "upstream":
			return nil, &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: "tenant down"}
		}
		return nil, errors.New("unexpected")
	}}
	ts := newTestServer(t, h, nil)
	c := &ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}
	generic := "internal error in the agent; see its log"
	cases := []struct {
		tenant string
		want   ipc.Error
	}{
		{"nil", ipc.Error{Status: 500, Code: ipc.CodeInternal, Message: generic, Hint: ipc.HintLog}},
		{"panic", ipc.Error{Status: 500, Code: ipc.CodeInternal, Message: generic, Hint: ipc.HintLog}},
		{"plain", ipc.Error{Status: 500, Code: ipc.CodeInternal, Message: generic, Hint: ipc.HintLog}},
		{"wrapped", ipc.Error{Status: 409, Code: ipc.CodeLoginRequired, Message: "log in again", Hint: "tapis-token login wrapped"}},
		// A handler's error without a hint gets one for its code.
		{"upstream", ipc.Error{Status: 503, Code: ipc.CodeUpstreamUnavailable, Message: "tenant down", Hint: ipc.Hint(ipc.CodeUpstreamUnavailable)}},
	}
	// Both exchanges answer alike; a frame carries no HTTP status.
	for _, tc := range cases {
		t.Run(tc.tenant+"/frame", func(t *testing.T) {
			_, err := c.Token(context.Background(), tc.tenant, time.Minute)
			want := tc.want
			want.Status = 0
			var e *ipc.Error
			if !errors.As(err, &e) || *e != want {
				t.Fatalf("Token(%s) = %#v; want %#v", tc.tenant, err, &want)
			}
		})
		t.Run(tc.tenant+"/http", func(t *testing.T) {
			resp, body := roundTrip(t, ts.path, get(ipc.PathToken+"?tenant="+tc.tenant+"&min_valid=60"))
			var eb ipc.ErrorBody
			if err := json.Unmarshal(body, &eb); err != nil {
				t.Fatalf("GET %s: body %q: %v", tc.tenant, body, err)
			}
			got := ipc.Error{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, Hint: eb.Error.Hint}
			if got != tc.want {
				t.Fatalf("GET token %s = %#v; want %#v", tc.tenant, got, tc.want)
			}
		})
	}
	if log := ts.log.String(); !strings.Contains(log, "secret detail") || !strings.Contains(log, "handler bug") {
		t.Errorf("log does not record the real errors:\n%s", log)
	}
}

// TestWorkDeadline: a call whose work deadline passed is answered
// upstream_unavailable, not an internal error.
func TestWorkDeadline(t *testing.T) {
	s := New(&fakeHandler{}, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithDeadline(context.Background(), time.Now())
	defer cancel()
	<-ctx.Done()
	a := result[ipc.TokenResponse](s, ctx, ipc.PathToken, nil, fmt.Errorf("refreshing: %w", context.DeadlineExceeded))
	if a.code != ipc.CodeUpstreamUnavailable || a.status != 503 {
		t.Errorf("answer after the work deadline = %d %s; want 503 %s", a.status, a.code, ipc.CodeUpstreamUnavailable)
	}
}

func TestRequestLog(t *testing.T) {
	ts := newTestServer(t, &fakeHandler{}, nil)
	c := &ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}
	if _, err := c.Login(context.Background(), &ipc.LoginRequest{Tenant: "designsafe", Username: "jdoe", Password: "hunter2-pw"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Token(context.Background(), "designsafe", 1234*time.Second); err != nil {
		t.Fatal(err)
	}
	log := ts.log.String()
	for _, want := range []string{`"msg":"ipc_request"`, `"method":"POST"`, `"path":"/v1/login"`, `"status":200`, `"tenant":"designsafe"`, `"duration":`, `"path":"/v1/token"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
	// The min_valid of 1234s, however it would be written: not the bare
	// digits, which a timestamp or a duration in nanoseconds may hold.
	for _, secret := range []string{"hunter2-pw", "jdoe", "jwt", "min_valid", ":1234,", ":1234}", "1234s", "20m34s", "1234000000000"} {
		if strings.Contains(log, secret) {
			t.Errorf("log contains %q:\n%s", secret, log)
		}
	}
}

// TestForeignPeer: a peer whose uid differs from the server's is refused
// and logged with its pid and uid.
func TestForeignPeer(t *testing.T) {
	ts := newTestServer(t, &fakeHandler{}, func(s *Server) { s.uid = os.Getuid() + 1 })
	_, err := (&ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}).Status(context.Background())
	var e *ipc.Error
	if !errors.As(err, &e) || e.Status != 403 || e.Code != ipc.CodeForbidden || e.Hint != ipc.HintForbidden {
		t.Fatalf("Status() = %#v; want 403 forbidden with a hint", err)
	}
	log := ts.log.String()
	want := fmt.Sprintf(`"peer_uid":%d,"peer_pid":%d`, os.Getuid(), os.Getpid())
	if !strings.Contains(log, "ipc_peer_refused") || !strings.Contains(log, want) {
		t.Errorf("log lacks the refusal with %s:\n%s", want, log)
	}
}

// TestSlowClient: a client that sends half a header and stalls is cut off
// after the header timeout, and others are served meanwhile.
func TestSlowClient(t *testing.T) {
	ts := newTestServer(t, &fakeHandler{}, func(s *Server) { s.readHeaderTimeout = 200 * time.Millisecond })
	slow, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	if _, err := io.WriteString(slow, "GET /v1/status HTTP/1.1\r\nHo"); err != nil {
		t.Fatal(err)
	}
	if _, err := (&ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}).Status(context.Background()); err != nil {
		t.Fatalf("Status() while a client stalls: %v", err)
	}
	start := time.Now()
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(slow)
	if ne, ok := errors.AsType[net.Error](err); ok && ne.Timeout() {
		t.Fatalf("stalled connection still open after %v", time.Since(start))
	}
}

// TestMaxConns: with one slot, a second client waits until the first
// connection closes.
func TestMaxConns(t *testing.T) {
	ts := newTestServer(t, &fakeHandler{}, func(s *Server) { s.maxConns = 1 })
	first, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	// Make sure the server accepted first: a full request/answer on it.
	io.WriteString(first, "GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(first), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	done := make(chan error, 1)
	go func() {
		_, err := (&ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}).Status(context.Background())
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("second client answered (%v) while the only slot was taken", err)
	case <-time.After(200 * time.Millisecond):
	}
	first.Close()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("second client not served after the first closed")
	}
}

func jsonUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}
