package tapistest

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// idleListener never accepts a connection. It lets a Server live inside
// a synctest bubble, where the tests drive ServeHTTP directly.
type idleListener struct {
	done chan struct{}
	once sync.Once
}

func newIdleListener() *idleListener { return &idleListener{done: make(chan struct{})} }

func (l *idleListener) Accept() (net.Conn, error) {
	<-l.done
	return nil, net.ErrClosed
}

func (l *idleListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *idleListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9} }

// bubbleServer starts a Server inside the current synctest bubble.
func bubbleServer(t *testing.T) *Server {
	t.Helper()
	s, err := NewServer(Config{Users: map[string]string{"u": "p"}}, newIdleListener())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func serve(s *Server, ctx context.Context, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, method, path, nil))
	return rec
}

func TestHangAndMaxInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := bubbleServer(t)
		s.Inject(RouteUserinfo, Fault{Hang: true})
		ctx, cancel := context.WithCancel(t.Context())
		const n = 7
		var wg sync.WaitGroup
		recs := make([]*httptest.ResponseRecorder, n)
		for i := range n {
			wg.Go(func() { recs[i] = serve(s, ctx, "GET", "/v3/oauth2/userinfo") })
		}
		synctest.Wait()
		if got := s.MaxInFlight(RouteUserinfo); got != n {
			t.Errorf("MaxInFlight = %d; want %d", got, n)
		}
		if got := s.Calls(RouteUserinfo); got != n {
			t.Errorf("Calls = %d; want %d", got, n)
		}
		cancel()
		wg.Wait()
		for _, r := range recs {
			if r.Body.Len() != 0 {
				t.Errorf("hanging request answered %q", r.Body)
			}
		}
		// The hang holds until cleared; Close ends it too.
		done := make(chan struct{})
		go func() {
			serve(s, t.Context(), "GET", "/v3/oauth2/userinfo")
			close(done)
		}()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("request did not hang")
		default:
		}
		s.Close()
		<-done
		if got := s.MaxInFlight(RouteUserinfo); got != n {
			t.Errorf("MaxInFlight after = %d; want %d", got, n)
		}
	})
}

func TestDelay(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := bubbleServer(t)
		s.Inject("/v3/oauth2/hello", Fault{Delay: 3 * time.Second, Times: 1})
		start := time.Now()
		rec := serve(s, t.Context(), "GET", "/v3/oauth2/hello")
		if el := time.Since(start); el != 3*time.Second {
			t.Errorf("delayed answer after %v; want 3s", el)
		}
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), "Hello from Tapis") {
			t.Errorf("delayed answer = %d %q; want the normal answer", rec.Code, rec.Body)
		}
		// Consumed: the next one is immediate.
		start = time.Now()
		serve(s, t.Context(), "GET", "/v3/oauth2/hello")
		if el := time.Since(start); el != 0 {
			t.Errorf("second answer after %v; want 0", el)
		}
		// A cancelled request returns early, unanswered.
		s.Inject("/v3/oauth2/hello", Fault{Delay: time.Hour})
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		start = time.Now()
		rec = serve(s, ctx, "GET", "/v3/oauth2/hello")
		if el := time.Since(start); el != time.Second || rec.Body.Len() != 0 {
			t.Errorf("cancelled delay: %v, body %q; want 1s and no body", el, rec.Body)
		}
	})
}

func TestDrip(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := bubbleServer(t)
		want := serve(s, t.Context(), "GET", "/v3/oauth2/ready").Body.String()
		s.Inject("/v3/oauth2/ready", Fault{DripEvery: 10 * time.Millisecond})
		start := time.Now()
		rec := serve(s, t.Context(), "GET", "/v3/oauth2/ready")
		if el, min := time.Since(start), time.Duration(len(want))*10*time.Millisecond; el != min {
			t.Errorf("drip took %v; want %v", el, min)
		}
		if rec.Body.String() != want || rec.Header().Get("Content-Type") != "application/json" || !rec.Flushed {
			t.Errorf("dripped answer = %q (%q); want %q", rec.Body, rec.Header().Get("Content-Type"), want)
		}
	})
}

func TestFaultOrderAndFilter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := bubbleServer(t)
		s.Inject(RouteTokens, Fault{Status: 502, Times: 1})
		s.Inject(RouteTokens, Fault{Status: 503, Times: 2, GrantType: "password"})
		post := func(body string) int {
			req := httptest.NewRequestWithContext(t.Context(), "POST", "/v3/oauth2/tokens", strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			return rec.Code
		}
		pw := `{"grant_type":"password","username":"u","password":"p"}`
		rt := `{"grant_type":"refresh_token"}`
		got := []int{post(rt), post(rt), post(pw), post(pw), post(pw)}
		want := []int{502, 400, 503, 503, 200}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("answers = %v; want %v", got, want)
				break
			}
		}
		if s.GrantCalls("password") != 3 || s.GrantCalls("refresh_token") != 2 || s.Calls(RouteTokens) != 5 {
			t.Errorf("counters = %d/%d/%d; want 3/2/5", s.GrantCalls("password"), s.GrantCalls("refresh_token"), s.Calls(RouteTokens))
		}
		s.Inject(RouteTokens, Fault{Status: http.StatusServiceUnavailable})
		s.ClearFaults()
		if c := post(pw); c != 200 {
			t.Errorf("after ClearFaults: %d; want 200", c)
		}
	})
}
