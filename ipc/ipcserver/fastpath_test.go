package ipcserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
)

// helperRequest is what the ipc client, and so tapis-token, sends for a
// token.
const helperRequest = "GET /v1/token?tenant=dev&min_valid=60 HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\nAccept: application/json\r\nContent-Length: 0\r\n\r\n"

// contractHandler is a fakeHandler whose token calls count those that
// came through the fast path (no http.Server in their context) and fail
// for some tenants.
type contractHandler struct {
	fakeHandler
	fast    atomic.Int64 // Token calls through the fast path
	instant atomic.Int64 // tokens answered by TokenInstant
}

func (h *contractHandler) Token(ctx context.Context, tenant string, minValid time.Duration) (*ipc.TokenResponse, error) {
	if ctx.Value(http.ServerContextKey) == nil {
		h.fast.Add(1)
	}
	switch tenant {
	case "nope":
		return nil, &ipc.Error{Code: ipc.CodeUnknownTenant, Message: "no tenant nope"}
	case "gone":
		return nil, &ipc.Error{Code: ipc.CodeLoginRequired, Message: "log in again", Hint: "tapis-token login gone"}
	case "plain":
		return nil, errors.New("dial tcp: secret detail")
	case "nil":
		return nil, nil
	case "panic":
		panic("handler bug")
	}
	return h.fakeHandler.Token(ctx, tenant, minValid)
}

// TokenInstant answers at once what Token answers for the tenants it
// treats normally, except "slow", whose token needs the Token path; and
// panics for "instant-panic", which must fall back to the Token path too.
func (h *contractHandler) TokenInstant(tenant string, minValid time.Duration) (*ipc.TokenResponse, bool) {
	switch tenant {
	case "nope", "gone", "plain", "nil", "panic", "slow":
		return nil, false
	case "instant-panic":
		panic("instant bug")
	}
	h.instant.Add(1)
	resp, _ := h.fakeHandler.Token(context.Background(), tenant, minValid)
	return resp, true
}

// exchange is what a client sees of one request: the raw answer, Date
// masked, whether the server closed the connection after it, and the log
// lines the request caused, times and durations masked.
type exchange struct {
	answer string
	closed bool
	log    string
}

var (
	dateRE     = regexp.MustCompile(`\r\nDate: [^\r]*\r\n`)
	logTimesRE = regexp.MustCompile(`"(time|duration)":("[^"]*"|\d+)`)
)

func doExchange(t *testing.T, ts *testServer, raw string) exchange {
	t.Helper()
	logBefore := len(ts.log.String())
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, raw); err != nil {
		t.Fatal(err)
	}
	var rec bytes.Buffer
	br := bufio.NewReader(io.TeeReader(c, &rec))
	resp, err := http.ReadResponse(br, &http.Request{Method: strings.Fields(raw + " GET")[0]})
	if err != nil {
		t.Fatalf("reading answer: %v", err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatalf("reading body: %v", err)
	}
	resp.Body.Close()
	answer := rec.Bytes()[:rec.Len()-br.Buffered()]
	if bytes.Contains(answer, []byte("application/json")) && !dateRE.Match(answer) {
		t.Errorf("answer without a Date header: %q", answer)
	}
	// The server either closes at once or keeps the connection for the
	// next request; a short wait tells them apart.
	c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	_, err = br.ReadByte()
	closed := err == io.EOF
	if err == nil || (!closed && !errors.Is(err, os.ErrDeadlineExceeded)) {
		t.Errorf("after the answer: %v; want EOF or nothing", err)
	}
	return exchange{
		answer: dateRE.ReplaceAllString(string(answer), "\r\nDate: *\r\n"),
		closed: closed,
		log:    logTimesRE.ReplaceAllString(ts.log.String()[logBefore:], `"$1":*`),
	}
}

// TestFastPathContract sends every request to a server with the fast path
// and to one without: what the client sees, and what the server logs, must
// be the same but for the time, and the fast path must take exactly the
// requests marked fast.
func TestFastPathContract(t *testing.T) {
	const tokenHead = "GET /v1/token?tenant=dev HTTP/1.1\r\nHost: tapis-agent\r\n"
	cases := []struct {
		name    string
		raw     string
		fast    bool // answered by the fast path
		foreign bool // from a peer of another uid
	}{
		{"helper", helperRequest, true, false},
		{"not at once", "GET /v1/token?tenant=slow&min_valid=60 HTTP/1.1\r\nHost: tapis-agent\r\nConnection: close\r\n\r\n", true, false},
		{"instant panics", "GET /v1/token?tenant=instant-panic HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"minimal", tokenHead + "Connection: close\r\n\r\n", true, false},
		{"default tenant", "GET /v1/token? HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"no query", "GET /v1/token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"escaped tenant", "GET /v1/token?tenant=a%20b+c&min_valid=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"header case and space", "GET /v1/token?tenant=dev HTTP/1.1\r\nhost:x\r\nCONNECTION:  Close \r\nuser-agent: t\r\nAccept:\t*/*\r\naccept-encoding: identity\r\n\r\n", true, false},
		{"empty host", "GET /v1/token?tenant=dev HTTP/1.1\r\nHost:\r\nConnection: close\r\n\r\n", true, false},
		{"HTTP/1.0", "GET /v1/token?tenant=dev HTTP/1.0\r\n\r\n", true, false},
		{"HTTP/1.0 close", "GET /v1/token?tenant=dev HTTP/1.0\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", true, false},
		{"unknown tenant", "GET /v1/token?tenant=nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"login required", "GET /v1/token?tenant=gone&min_valid=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"handler error", "GET /v1/token?tenant=plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"handler nil", "GET /v1/token?tenant=nil HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"handler panic", "GET /v1/token?tenant=panic HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"bad min_valid", "GET /v1/token?tenant=dev&min_valid=1h HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"negative min_valid", "GET /v1/token?tenant=dev&min_valid=-1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"unknown parameter", "GET /v1/token?tenant=dev&mni_valid=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"duplicate parameter", "GET /v1/token?tenant=a&tenant=b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"bad escape", "GET /v1/token?tenant=%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", true, false},
		{"semicolon", "GET /v1/token?tenant=dev;min_valid=5 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, false},
		{"body", tokenHead + "Connection: close\r\nContent-Length: 2\r\n\r\n{}", false, false},
		{"chunked body", tokenHead + "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", false, false},
		{"two lengths", tokenHead + "Connection: close\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", false, false},
		{"expect", tokenHead + "Connection: close\r\nExpect: 100-continue\r\n\r\n", false, false},
		{"other header", tokenHead + "Connection: close\r\nX-Trace: 1\r\n\r\n", false, false},
		{"HEAD", "HEAD /v1/token?tenant=dev HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, false},
		{"POST", post(ipc.PathToken, `{}`), false, false},
		{"keep-alive", tokenHead + "\r\n", false, false},
		{"keep-alive header", tokenHead + "Connection: keep-alive\r\n\r\n", false, false},
		{"python client", "GET /v1/token?tenant=dev&min_valid=60 HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: identity\r\nAccept: application/json\r\nConnection: close\r\n\r\n", true, false},
		{"python client keep-alive", "GET /v1/token?tenant=dev&min_valid=60 HTTP/1.1\r\nHost: localhost\r\nAccept-Encoding: identity\r\nAccept: application/json\r\n\r\n", false, false},
		{"HTTP/1.0 keep-alive", "GET /v1/token?tenant=dev HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", false, false},
		{"HTTP/1.1 without Host", "GET /v1/token?tenant=dev HTTP/1.1\r\nConnection: close\r\n\r\n", false, false},
		{"two Hosts", tokenHead + "Host: y\r\nConnection: close\r\n\r\n", false, false},
		{"escaped path", "GET /v1/%74oken?tenant=dev HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false, false},
		{"bare LF", "GET /v1/token?tenant=dev HTTP/1.1\nHost: x\nConnection: close\n\n", false, false},
		{"pipelined", tokenHead + "Connection: close\r\n\r\n" + get(ipc.PathStatus), false, false},
		{"status", get(ipc.PathStatus), false, false},
		{"login", post(ipc.PathLogin, `{"tenant":"dev","username":"u","password":"p"}`), false, false},
		{"foreign helper", helperRequest, false, true},
		{"foreign status", get(ipc.PathStatus), false, true},
	}
	h := &contractHandler{}
	servers := map[bool][2]*testServer{} // by foreign: with and without the fast path
	for _, foreign := range []bool{false, true} {
		var pair [2]*testServer
		for i, noFast := range []bool{false, true} {
			pair[i] = newTestServer(t, h, func(s *Server) {
				s.noFastPath = noFast
				if foreign {
					s.uid = os.Getuid() + 1
				}
			})
		}
		servers[foreign] = pair
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.foreign && takes(tc.raw) != tc.fast {
				t.Errorf("takes(%q) = %v; want %v", tc.raw, !tc.fast, tc.fast)
			}
			pair := servers[tc.foreign]
			fastBefore := h.fast.Load() + h.instant.Load()
			got := doExchange(t, pair[0], tc.raw)
			fastCalls := h.fast.Load() + h.instant.Load() - fastBefore
			want := doExchange(t, pair[1], tc.raw)
			if got != want {
				t.Errorf("with the fast path:\n%q\nclosed %v, log %s\nwithout:\n%q\nclosed %v, log %s", got.answer, got.closed, got.log, want.answer, want.closed, want.log)
			}
			if fastCalls != 0 && !tc.fast {
				t.Errorf("the fast path called Token %d times; want net/http to answer", fastCalls)
			}
			if tc.fast && fastCalls == 0 && strings.Contains(got.log, `"status":200`) {
				t.Errorf("net/http answered; want the fast path")
			}
		})
	}
	if h.fast.Load() == 0 {
		t.Errorf("the fast path never called Token")
	}
	if h.instant.Load() == 0 {
		t.Errorf("no token was answered at once")
	}
}

// takes reports whether the fast path answers raw, written whole.
func takes(raw string) bool {
	i := strings.Index(raw, "\r\n\r\n")
	if i < 0 || i+4 != len(raw) {
		return false
	}
	_, ok := parseTokenHead([]byte(raw))
	return ok
}

// TestFastPathClientGone: a fast token call's context ends when its
// client goes away, as a net/http handler's does.
func TestFastPathClientGone(t *testing.T) {
	called := make(chan struct{})
	ended := make(chan error, 1)
	h := &fakeHandler{token: func(ctx context.Context, tenant string, _ time.Duration) (*ipc.TokenResponse, error) {
		close(called)
		<-ctx.Done()
		ended <- ctx.Err()
		return nil, ctx.Err()
	}}
	ts := newTestServer(t, h, nil)
	c, err := net.Dial("unix", ts.path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(c, helperRequest); err != nil {
		t.Fatal(err)
	}
	<-called
	c.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("call context ended with %v; want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("call context still alive 10s after its client left")
	}
}

// TestFastPathShutdown: Serve waits for a fast answer in flight, and the
// client gets it.
func TestFastPathShutdown(t *testing.T) {
	called, release := make(chan struct{}), make(chan struct{})
	h := &fakeHandler{token: func(ctx context.Context, tenant string, _ time.Duration) (*ipc.TokenResponse, error) {
		close(called)
		<-release
		return &ipc.TokenResponse{Tenant: tenant, AccessToken: "jwt"}, nil
	}}
	ts := newTestServer(t, h, nil)
	got := make(chan error, 1)
	go func() {
		_, err := (&ipc.Client{Path: ts.path, Timeout: 10 * time.Second}).Token("dev", time.Minute)
		got <- err
	}()
	<-called
	ts.cancel()
	select {
	case err := <-ts.done:
		t.Fatalf("Serve returned (%v) while a token answer was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(release)
	if err := <-got; err != nil {
		t.Errorf("Token during shutdown: %v", err)
	}
	select {
	case err := <-ts.done:
		ts.done <- err // for the cleanup
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after the answer")
	}
}

// TestFastPathForcedShutdown: a fast answer that outlasts ShutdownTimeout
// is cut off and Serve returns.
func TestFastPathForcedShutdown(t *testing.T) {
	called := make(chan struct{})
	h := &fakeHandler{token: func(ctx context.Context, tenant string, _ time.Duration) (*ipc.TokenResponse, error) {
		close(called)
		<-ctx.Done()
		return nil, ctx.Err()
	}}
	ts := newTestServer(t, h, func(s *Server) { s.ShutdownTimeout = 100 * time.Millisecond })
	got := make(chan error, 1)
	go func() {
		_, err := (&ipc.Client{Path: ts.path, Timeout: 10 * time.Second}).Token("dev", time.Minute)
		got <- err
	}()
	<-called
	ts.cancel()
	select {
	case err := <-ts.done:
		ts.done <- err
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after ShutdownTimeout")
	}
	if err := <-got; err == nil {
		t.Errorf("Token cut off by shutdown succeeded")
	}
	if log := ts.log.String(); !strings.Contains(log, "ipc_shutdown_forced") {
		t.Errorf("log lacks the forced shutdown:\n%s", log)
	}
}

// BenchmarkTokenFreshConn measures the helper's call as tapis-token makes
// it: one token request on a new connection, with ipc.Client, over a real
// socket to a server in another process (TestHelperBenchServer), with and
// without the fast path. In one process the client and server share a
// scheduler, which hides part of what net/http costs.
func BenchmarkTokenFreshConn(b *testing.B) {
	for _, bc := range []struct {
		name   string
		noFast bool
	}{{"fast", false}, {"net-http", true}} {
		b.Run(bc.name, func(b *testing.B) {
			path := benchServer(b, bc.noFast)
			c := &ipc.Client{Path: path, Timeout: 10 * time.Second}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Token("dev", time.Minute); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

const benchEnv = "IPCSERVER_BENCH_SOCK"

// TestHelperBenchServer is not a test: run by benchServer in a child
// process, it serves a fakeHandler on the socket named by benchEnv, says
// "ready" on stdout, and stops when its stdin closes.
func TestHelperBenchServer(t *testing.T) {
	path := os.Getenv(benchEnv)
	if path == "" {
		t.Skip("helper process only")
	}
	ln, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	s := New(&fakeHandler{}, nil)
	s.noFastPath = os.Getenv(benchEnv+"_NOFAST") != ""
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		cancel()
	}()
	fmt.Println("ready")
	if err := s.Serve(ctx, ln); err != nil {
		t.Fatal(err)
	}
	os.Exit(0)
}

// benchServer starts TestHelperBenchServer on a fresh socket until b ends
// and returns the socket's path.
func benchServer(b *testing.B, noFast bool) string {
	b.Helper()
	path := shortDir(b) + "/agent.sock"
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^TestHelperBenchServer$")
	cmd.Env = append(os.Environ(), benchEnv+"="+path)
	if noFast {
		cmd.Env = append(cmd.Env, benchEnv+"_NOFAST=1")
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			b.Errorf("bench server: %v", err)
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		b.Fatalf("bench server said %q (%v); want ready", line, err)
	}
	return path
}
