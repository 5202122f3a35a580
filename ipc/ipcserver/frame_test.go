package ipcserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
)

// instantHandler is a fakeHandler that holds the tokens of every tenant
// but "slow", and answers them at once (InstantTokener).
type instantHandler struct {
	fakeHandler
	mu      sync.Mutex // guards instant
	instant int        // tokens answered by TokenInstant
}

func (h *instantHandler) TokenInstant(tenant string, minValid time.Duration) (*ipc.TokenResponse, bool) {
	if tenant == "slow" || tenant == "nope" {
		return nil, false
	}
	h.mu.Lock()
	h.instant++
	h.mu.Unlock()
	resp, _ := h.Token(context.Background(), tenant, minValid)
	return resp, true
}

func (h *instantHandler) instantCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.instant
}

// exchange sends raw on a new connection, half-closes nothing, and
// returns all the server sent until it closed.
func exchange(t *testing.T, path, raw string) string {
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
	b, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, net.ErrClosed) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("reading answer to %q: %v", raw, err)
	}
	return string(b)
}

// TestFrames: the frame over a real socket, answered in the accept loop
// (the handler holds the token) and by a goroutine (it must wait), gives
// the same answers.
func TestFrames(t *testing.T) {
	h := &instantHandler{}
	ts := newTestServer(t, h, nil)
	c := &ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}
	for _, tenant := range []string{"dev", "slow"} {
		tr, err := c.Token(context.Background(), tenant, 90*time.Second)
		if err != nil {
			t.Fatalf("Token(%s) = %v", tenant, err)
		}
		want := &ipc.TokenResponse{Tenant: tenant, AccessToken: "jwt", ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ExpiresIn: 90}
		if *tr != *want {
			t.Errorf("Token(%s) = %+v; want %+v", tenant, tr, want)
		}
	}
	if n := h.instantCount(); n != 1 {
		t.Errorf("TokenInstant answered %d calls; want 1 (dev)", n)
	}
	tr, err := c.Token(context.Background(), "", ipc.NoMinValid)
	if err != nil || tr.Tenant != "" || tr.ExpiresIn != -1 {
		t.Errorf("Token(default) = %+v, %v; want the default tenant and min_valid", tr, err)
	}
	errs := &ipcclient.Client{Path: newTestServer(t, &frameHandler{}, nil).path, Timeout: 10 * time.Second}
	_, err = errs.Token(context.Background(), "nope", time.Minute)
	var e *ipc.Error
	if !errors.As(err, &e) || e.Code != ipc.CodeUnknownTenant || e.Hint == "" {
		t.Errorf("Token(nope) = %v; want unknown_tenant with a hint", err)
	}
	if log := ts.log.String(); !strings.Contains(log, `"method":"FRAME"`) || !strings.Contains(log, `"tenant":"slow"`) {
		t.Errorf("log lacks the frame requests:\n%s", log)
	}
}

// TestHostileFrames: a malformed frame gets an error frame or a closed
// connection, never a hang, and a legitimate client is answered while
// others misbehave.
func TestHostileFrames(t *testing.T) {
	h := &instantHandler{}
	ts := newTestServer(t, h, func(s *Server) { s.readHeaderTimeout = 300 * time.Millisecond })
	cases := []struct {
		name, raw string
		want      string // prefix of the answer; "" means closed without one
	}{
		{"truncated", "@tapis-agent/1 token dev", ""},
		{"magic only", "@", ""},
		{"oversized", "@tapis-agent/1 token " + strings.Repeat("x", 600), "@tapis-agent/1 error too_large "},
		{"oversized with LF", "@tapis-agent/1 token " + strings.Repeat("x", 600) + " 1\n", "@tapis-agent/1 error too_large "},
		{"version 2", "@tapis-agent/2 token dev 60\n", "@tapis-agent/1 error bad_request "},
		{"NUL", "@tapis-agent/1 token d\x00v 60\n", "@tapis-agent/1 error bad_request "},
		{"NULs", "@" + strings.Repeat("\x00", 100) + "\n", "@tapis-agent/1 error bad_request "},
		{"CRLF", "@tapis-agent/1 token dev 60\r\n", "@tapis-agent/1 error bad_request "},
		{"two requests", "@tapis-agent/1 token dev 60\n@tapis-agent/1 token dev 60\n", "@tapis-agent/1 error bad_request "},
		{"bad min_valid", "@tapis-agent/1 token dev 1e3\n", "@tapis-agent/1 error bad_request "},
		{"unknown verb", "@tapis-agent/1 status\n", "@tapis-agent/1 error bad_request "},
		{"binary", "@\xff\xfe\xfd\n", "@tapis-agent/1 error bad_request "},
	}
	// A client that sends part of a frame and stalls holds no one up.
	slow, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	io.WriteString(slow, "@tapis-agent/1 tok")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := exchange(t, ts.path, tc.raw)
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("answer to %q = %q; want one starting %q", tc.raw, got, tc.want)
			}
			if got != "" {
				if _, err := ipc.ParseAnswer([]byte(got)); err == nil || err.(*ipc.Error).Code == ipc.CodeInternal {
					t.Fatalf("answer %q does not parse as an error frame: %v", got, err)
				}
			}
			if _, err := (&ipcclient.Client{Path: ts.path, Timeout: 10 * time.Second}).Token(context.Background(), "dev", time.Minute); err != nil {
				t.Fatalf("a legitimate client after %s: %v", tc.name, err)
			}
		})
	}
	slow.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := io.ReadAll(slow); len(b) != 0 || err != nil {
		t.Errorf("stalled frame client got %q, %v; want the connection closed after the header timeout", b, err)
	}
}

// TestFrameClientGone: a client that goes away while its token is being
// fetched cancels the work, as net/http cancels a request's context.
func TestFrameClientGone(t *testing.T) {
	cancelled := make(chan struct{})
	h := &fakeHandler{token: func(ctx context.Context, tenant string, _ time.Duration) (*ipc.TokenResponse, error) {
		<-ctx.Done()
		close(cancelled)
		return nil, ctx.Err()
	}}
	ts := newTestServer(t, h, nil)
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, "@tapis-agent/1 token dev 60\n")
	time.Sleep(50 * time.Millisecond) // let the request reach the handler
	c.Close()
	select {
	case <-cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the token call was not cancelled when its client went away")
	}
}

// frameHandler answers deterministically from the request alone, so that
// the frame and the HTTP API can be compared: tenants "nope" and "down"
// fail with a code, "boom" with a plain error, "nil" with nothing.
type frameHandler struct{ fakeHandler }

func (*frameHandler) Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
	switch tenant {
	case "nope":
		return nil, &ipc.Error{Code: ipc.CodeUnknownTenant, Message: "unknown tenant nope"}
	case "down":
		return nil, &ipc.Error{Code: ipc.CodeUpstreamUnavailable, Message: "down", Hint: "wait"}
	case "boom":
		return nil, errors.New("secret upstream detail")
	case "nil":
		return nil, nil
	}
	secs := int64(minValid / time.Second)
	return &ipc.TokenResponse{Tenant: tenant, BaseURL: "https://" + tenant + ".tapis.io", Username: "u\"" + tenant,
		AccessToken: "tok." + tenant + "." + strconv.FormatInt(secs, 10),
		ExpiresAt:   time.Unix(1796112000+secs, secs%1000*1e6).UTC(), ExpiresIn: secs}, nil
}

// FuzzFrameVsHTTP: for every request frame, the frame's answer carries
// what the HTTP API answers for the same request: the same token, expiry
// and fields, or the same error code, message and hint. A frame the
// server refuses gets bad_request or too_large.
func FuzzFrameVsHTTP(f *testing.F) {
	for _, seed := range []string{"dev 60", "- -", "nope 1", "down 0", "boom 5", "nil -", "a\"b 7", "dev 9223372036", "dev 007", "é 1"} {
		f.Add([]byte("@tapis-agent/1 token " + seed + "\n"))
	}
	s := New(&frameHandler{}, nil)
	f.Fuzz(func(t *testing.T, line []byte) {
		tenant, minValid, err := ipc.ParseTokenRequest(line)
		if err != nil {
			if e := err.(*ipc.Error); e.Code != ipc.CodeBadRequest && e.Code != ipc.CodeTooLarge {
				t.Fatalf("ParseTokenRequest(%q) = %v; want bad_request or too_large", line, err)
			}
			return
		}
		a := s.work(context.Background(), tokenWorkTimeout, ipc.PathToken, func(ctx context.Context) answer {
			return s.token(ctx, tenant, minValid)
		})
		frameTok, frameErr := ipc.ParseAnswer(appendFrame(nil, a))

		q := url.Values{}
		if tenant != "" {
			q.Set("tenant", tenant)
		}
		if minValid != ipc.NoMinValid {
			q.Set("min_valid", strconv.FormatInt(int64(minValid/time.Second), 10))
		}
		req := httptest.NewRequest(http.MethodGet, ipc.PathToken+"?"+q.Encode(), nil)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req.WithContext(context.WithValue(context.Background(), peerKey{}, &peer{uid: s.uid})))
		if rec.Code != http.StatusOK {
			var eb ipc.ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil {
				t.Fatalf("HTTP error answer %q: %v", rec.Body.Bytes(), err)
			}
			var fe *ipc.Error
			if !errors.As(frameErr, &fe) || fe.Code != eb.Error.Code || fe.Message != eb.Error.Message || fe.Hint != eb.Error.Hint {
				t.Fatalf("frame %q: answer %+v, %v; HTTP %d %+v", line, frameTok, frameErr, rec.Code, eb.Error)
			}
			return
		}
		var httpTok ipc.TokenResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &httpTok); err != nil {
			t.Fatalf("HTTP answer %q: %v", rec.Body.Bytes(), err)
		}
		if frameErr != nil || !frameTok.ExpiresAt.Equal(httpTok.ExpiresAt) {
			t.Fatalf("frame %q: answer %+v, %v; HTTP %+v", line, frameTok, frameErr, httpTok)
		}
		frameTok.ExpiresAt, httpTok.ExpiresAt = time.Time{}, time.Time{}
		if *frameTok != httpTok {
			t.Fatalf("frame %q: answer %+v; HTTP %+v", line, frameTok, httpTok)
		}
	})
}

// keptClient speaks keep requests on one connection.
type keptClient struct {
	t *testing.T
	c net.Conn
	r *bufio.Reader
}

func dialKept(t *testing.T, path string) *keptClient {
	t.Helper()
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &keptClient{t: t, c: c, r: bufio.NewReader(c)}
}

// ask sends line and returns the answer line; "" when the server closed
// the connection instead.
func (k *keptClient) ask(line string) string {
	k.t.Helper()
	k.c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(k.c, line); err != nil {
		return ""
	}
	ans, err := k.r.ReadString('\n')
	if err != nil {
		return ""
	}
	return ans
}

// closed reports whether the server closes the connection, with nothing
// more to read, within d.
func (k *keptClient) closed(d time.Duration) bool {
	k.c.SetReadDeadline(time.Now().Add(d))
	_, err := k.r.ReadByte()
	return err == io.EOF
}

// TestKeptFrames: keep requests are answered one after another on one
// connection, through TokenInstant or the Handler's Token alike, errors
// included; a token request or a malformed one ends the connection.
func TestKeptFrames(t *testing.T) {
	h := &instantHandler{}
	ts := newTestServer(t, h, nil)
	k := dialKept(t, ts.path)
	for i, tc := range []struct{ req, want string }{
		{"@tapis-agent/1 keep dev 60\n", `@tapis-agent/1 ok 60 1893553445 "jwt" "dev" "" ""` + "\n"},
		{"@tapis-agent/1 keep slow 90\n", `@tapis-agent/1 ok 90 1893553445 "jwt" "slow" "" ""` + "\n"},
		{"@tapis-agent/1 keep - -\n", `@tapis-agent/1 ok -1 1893553445 "jwt" "" "" ""` + "\n"},
		{"@tapis-agent/1 token dev 60\n", `@tapis-agent/1 ok 60 1893553445 "jwt" "dev" "" ""` + "\n"},
	} {
		if got := k.ask(tc.req); got != tc.want {
			t.Fatalf("request %d %q on a kept connection: %q; want %q", i, tc.req, got, tc.want)
		}
	}
	if !k.closed(5 * time.Second) {
		t.Error("the connection stayed open after a token request")
	}
	if n := h.instantCount(); n != 3 {
		t.Errorf("TokenInstant answered %d calls; want 3 (all but slow)", n)
	}

	// An error answer keeps the connection; a malformed request ends it.
	errs := dialKept(t, newTestServer(t, &frameHandler{}, nil).path)
	if got := errs.ask("@tapis-agent/1 keep nope 60\n"); !strings.HasPrefix(got, "@tapis-agent/1 error unknown_tenant ") {
		t.Fatalf("keep nope: %q; want unknown_tenant", got)
	}
	if got := errs.ask("@tapis-agent/1 keep dev 60\n"); !strings.HasPrefix(got, `@tapis-agent/1 ok 60 `) {
		t.Fatalf("keep dev after an error: %q; want a token", got)
	}
	if got := errs.ask("@tapis-agent/1 keep dev sixty\n"); !strings.HasPrefix(got, "@tapis-agent/1 error bad_request ") {
		t.Fatalf("malformed keep: %q; want bad_request", got)
	}
	if !errs.closed(5 * time.Second) {
		t.Error("the connection stayed open after a malformed request")
	}
}

// keptHandlers are the two ways a kept connection is served: with an
// InstantTokener, on a thread of its own (serveKept, on Linux); without,
// through package net (serveFrame).
func keptHandlers(token func(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error)) map[string]Handler {
	return map[string]Handler{
		"instant":     &instantHandler{fakeHandler: fakeHandler{token: token}},
		"not instant": &fakeHandler{token: token},
	}
}

// TestKeptFrameIdle: a kept connection that sends nothing is closed after
// keptIdle, and an idle one does not hold up the server's shutdown.
func TestKeptFrameIdle(t *testing.T) {
	for name, h := range keptHandlers(nil) {
		t.Run(name, func(t *testing.T) {
			ts := newTestServer(t, h, func(s *Server) { s.keptIdle = 200 * time.Millisecond })
			k := dialKept(t, ts.path)
			if got := k.ask("@tapis-agent/1 keep dev 60\n"); !strings.HasPrefix(got, "@tapis-agent/1 ok ") {
				t.Fatalf("keep dev: %q", got)
			}
			if !k.closed(5 * time.Second) {
				t.Error("an idle kept connection was not closed")
			}

			ts = newTestServer(t, h, func(s *Server) { s.shutdownTimeout = time.Minute })
			k = dialKept(t, ts.path)
			if got := k.ask("@tapis-agent/1 keep dev 60\n"); !strings.HasPrefix(got, "@tapis-agent/1 ok ") {
				t.Fatalf("keep dev: %q", got)
			}
			ts.cancel()
			select {
			case err := <-ts.done:
				ts.done <- err // for the cleanup
			case <-time.After(10 * time.Second):
				t.Fatal("Serve did not return while a kept connection idled")
			}
			if !k.closed(5 * time.Second) {
				t.Error("the kept connection outlived the server")
			}
		})
	}
}

// TestKeptFrameShutdownAnswers: a request on a kept connection that is
// being worked on when the server shuts down still gets its answer.
func TestKeptFrameShutdownAnswers(t *testing.T) {
	release := make(chan struct{})
	working := make(chan struct{}, 1)
	for name, h := range keptHandlers(func(ctx context.Context, tenant string, _ time.Duration) (*ipc.TokenResponse, error) {
		if tenant == "slow" {
			working <- struct{}{}
			<-release
		}
		return &ipc.TokenResponse{Tenant: tenant, AccessToken: "jwt", ExpiresAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC), ExpiresIn: 60}, nil
	}) {
		t.Run(name, func(t *testing.T) {
			release = make(chan struct{})
			ts := newTestServer(t, h, func(s *Server) { s.shutdownTimeout = time.Minute })
			k := dialKept(t, ts.path)
			if got := k.ask("@tapis-agent/1 keep dev 60\n"); !strings.HasPrefix(got, "@tapis-agent/1 ok ") {
				t.Fatalf("keep dev: %q", got)
			}
			answered := make(chan string, 1)
			go func() { answered <- k.ask("@tapis-agent/1 keep slow 60\n") }()
			<-working
			ts.cancel()
			time.Sleep(100 * time.Millisecond) // the shutdown under way
			close(release)
			if got := <-answered; !strings.HasPrefix(got, `@tapis-agent/1 ok 60 1893553445 "jwt" "slow"`) {
				t.Errorf("the request in flight at shutdown got %q; want its token", got)
			}
			if !k.closed(5 * time.Second) {
				t.Error("the kept connection stayed open after the shutdown")
			}
		})
	}
}

// TestManyKeptFrames: more kept connections than get threads of their
// own are all served, each request after request.
func TestManyKeptFrames(t *testing.T) {
	ts := newTestServer(t, &instantHandler{}, nil)
	var conns []*keptClient
	for range 3 * maxKeptRaw {
		conns = append(conns, dialKept(t, ts.path))
	}
	for round := range 3 {
		for i, k := range conns {
			if got := k.ask("@tapis-agent/1 keep dev 60\n"); !strings.HasPrefix(got, "@tapis-agent/1 ok 60 ") {
				t.Fatalf("round %d, connection %d: %q", round, i, got)
			}
		}
	}
}
