package e2e

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func verify(e *env, tok string) (jwt.Claims, error) {
	c, err := jwt.Decode(tok)
	if err != nil {
		return nil, err
	}
	if c.Issuer() != e.fake.URL()+"/v3/tokens" {
		return nil, fmt.Errorf("iss %q", c.Issuer())
	}
	return c, nil
}

// TestProactiveRefresh: with a 3 s lifetime the agent refreshes at about
// 2 s on its own, rotating the refresh token, and no caller ever gets a
// token with less validity than asked.
func TestProactiveRefresh(t *testing.T) {
	// Not t.Parallel: the callers judge each token on the wall clock at
	// receipt, 50 ms short of what they asked at most.
	e := newEnv(t, tapistest.Config{AccessTTL: 3 * time.Second})
	e.startAgent()
	e.login()
	first := e.status("dev")
	e.waitFor("two proactive refreshes", 15*time.Second, func() bool {
		return e.status("dev").RefreshCount >= 2
	})
	if n := e.fake.GrantCalls("refresh_token"); n < 2 {
		t.Errorf("refresh grants upstream = %d; want ≥ 2", n)
	}
	if first.RefreshCount != 0 {
		t.Errorf("refresh_count after login = %d; want 0", first.RefreshCount)
	}
	// Callers asking for 1 s never get less, across refreshes.
	c := e.client()
	for range 40 {
		tr, err := c.Token(context.Background(), "dev", time.Second)
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		cl, _ := jwt.Decode(tr.AccessToken)
		exp, _ := cl.Expiry()
		// exp is whole seconds, expires_at up to 1 s later: allow that.
		if left := time.Until(exp); left < 0 {
			t.Fatalf("served a token with %s left; asked for 1s", left)
		}
		if left := time.Until(tr.ExpiresAt); left < time.Second-50*time.Millisecond {
			t.Fatalf("served a token valid %s; asked for 1s", left)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestOnDemandRefreshOnce: 1000 concurrent callers asking for more validity
// than is left cause exactly one upstream refresh.
func TestOnDemandRefreshOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{AccessTTL: 60 * time.Second})
	e.startAgent()
	e.login()
	// Expiries are the JWT's exp, in whole seconds: a fresh 60 s token
	// may have only 59 s left when it arrives, and less after the 300 ms
	// below. Asking 55 s forces a refresh of a token with less than 54.5 s
	// left, and every fresh one satisfies it with seconds to spare for
	// answering a thousand callers on a busy machine.
	e.waitRemainingBelow(54500 * time.Millisecond)
	before := e.fake.GrantCalls("refresh_token")
	// Slow the refresh down so that every caller arrives while it runs.
	e.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Delay: 300 * time.Millisecond, Times: 1})
	var wg sync.WaitGroup
	var failed atomic.Int32
	var firstErr atomic.Value
	for range 1000 {
		wg.Go(func() {
			tr, err := e.client().Token(context.Background(), "dev", 55*time.Second)
			if err != nil || time.Until(tr.ExpiresAt) < 54*time.Second {
				failed.Add(1)
				if err != nil {
					firstErr.CompareAndSwap(nil, err.Error())
				}
			}
		})
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of 1000 callers failed (first: %v)", n, firstErr.Load())
	}
	if n := e.fake.GrantCalls("refresh_token") - before; n != 1 {
		t.Errorf("upstream refreshes = %d; want exactly 1", n)
	}
}

// TestUpstreamDownTokenStillValid: while Tapis fails, the still-valid token
// is served, retries back off, and the agent recovers when Tapis returns.
func TestUpstreamDownTokenStillValid(t *testing.T) {
	t.Parallel()
	faults := []struct {
		name  string
		fault tapistest.Fault
	}{
		{"5xx", tapistest.Fault{GrantType: "refresh_token", Status: 503}},
		{"html500", tapistest.Fault{GrantType: "refresh_token", Status: 500}},
		{"dropped", tapistest.Fault{GrantType: "refresh_token", Drop: true}},
		{"try-later", tapistest.Fault{GrantType: "refresh_token", Status: 400, ContentType: "application/json",
			Body: `{"message":"Failure to generate an access token; please try again later.","metadata":{},"result":null,"status":"error","version":"dev"}` + "\n"}},
	}
	for _, tc := range faults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, tapistest.Config{AccessTTL: 6 * time.Second})
			e.startAgent()
			e.login()
			tok := e.mustToken("", "dev").stdout
			e.fake.Inject(tapistest.RouteTokens, tc.fault)
			// The proactive refresh (at ~4 s) fails; the agent retries.
			e.waitFor("a failed refresh", 10*time.Second, func() bool {
				return e.status("dev").LastError != ""
			})
			st := e.status("dev")
			if st.State != ipc.StateRetrying && st.State != ipc.StateRefreshing {
				t.Errorf("state while upstream fails = %s; want retrying", st.State)
			}
			if r := e.mustToken("", "dev", "--min-valid", "0"); r.stdout != tok {
				t.Errorf("the still-valid token was not served while upstream failed")
			}
			e.fake.ClearFaults()
			e.waitFor("recovery", 10*time.Second, func() bool {
				s := e.status("dev")
				return s.State == ipc.StateReady && s.RefreshCount >= 1
			})
			if r := e.mustToken("", "dev"); r.stdout == tok {
				t.Errorf("after recovery the old token is still served")
			}
		})
	}
}

// TestUpstreamDownTokenExpired: exit 5 with a hint once the token has expired
// and Tapis still fails.
func TestUpstreamDownTokenExpired(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{AccessTTL: 2 * time.Second})
	e.startAgent()
	e.login()
	e.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: 502})
	e.waitFor("the token to expire", 10*time.Second, func() bool {
		return e.status("dev").State == ipc.StateExpired
	})
	r := e.token("", "dev")
	if r.code != 5 || !strings.Contains(r.stderr, "tapis-token: hint:") || r.stdout != "" {
		t.Errorf("expired and upstream down: exit %d, stdout %q, stderr %q; want 5 with a hint", r.code, r.stdout, r.stderr)
	}
}

// TestRefreshRejected: a definitive rejection of the refresh token gives
// exit 4 and a hint to log in.
func TestRefreshRejected(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{AccessTTL: 20 * time.Second})
	e.startAgent()
	e.login()
	e.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: 400, ContentType: "application/json",
		Body: `{"message":"Invalid refresh_token.","metadata":{},"result":null,"status":"error","version":"dev"}` + "\n"})
	e.waitRemainingBelow(18500 * time.Millisecond)
	r := e.token("", "dev", "--min-valid", "19s")
	if r.code != 4 || !strings.Contains(r.stderr, "hint: tapis-token login dev") {
		t.Errorf("refresh rejected: exit %d, stderr %q; want 4 with a login hint", r.code, r.stderr)
	}
	if st := e.status("dev"); st.State != ipc.StateLoginRequired || st.LastError == "" {
		t.Errorf("status = %+v; want login_required with the error", st)
	}
	// The token it still has is served to callers it satisfies.
	if r := e.token("", "dev", "--min-valid", "5s"); r.code != 0 {
		t.Errorf("plain token after rejection: exit %d %s", r.code, r.stderr)
	}
	// Logging in again revives the session.
	e.fake.ClearFaults()
	e.login()
	if st := e.status("dev"); st.State != ipc.StateReady {
		t.Errorf("state after new login = %s", st.State)
	}
}

// TestHostileSocketInput: garbage on the socket is refused and good
// requests keep being answered.
func TestHostileSocketInput(t *testing.T) {
	t.Parallel()
	e := newEnv(t, tapistest.Config{})
	e.startAgent()
	e.login()
	inputs := []string{
		"garbage\r\n\r\n",
		"GET /v1/token?tenant=dev HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-Big: "+strings.Repeat("a", 1000)+"\r\n", 100) + "\r\n",
		"POST /v1/login HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n\r\n" + strings.Repeat("{", 70000),
		"GET /v1/token?tenant=dev&min_valid=-5 HTTP/1.1\r\nHost: x\r\n\r\n",
		"\x00\x01\x02\x03",
	}
	for i, in := range inputs {
		conn, err := net.Dial("unix", e.sock)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		conn.Write([]byte(in))
		buf := make([]byte, 4096)
		n, _ := conn.Read(buf)
		conn.Close()
		if strings.HasPrefix(string(buf[:n]), "HTTP/1.1 200") {
			t.Errorf("input %d answered 200: %q", i, buf[:n])
		}
		if _, err := e.client().Token(context.Background(), "dev", 0); err != nil {
			t.Fatalf("good request after hostile input %d: %v", i, err)
		}
	}
	// A slow client holding a half-sent request does not block others.
	slow, err := net.Dial("unix", e.sock)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	slow.Write([]byte("GET /v1/tok"))
	if _, err := e.client().Token(context.Background(), "dev", 0); err != nil {
		t.Fatalf("good request beside a slow one: %v", err)
	}
	var ie *ipc.Error
	if _, err := e.client().Token(context.Background(), "nope", 0); !errors.As(err, &ie) || ie.Code != ipc.CodeLoginRequired {
		t.Errorf("unknown tenant: %v; want login_required", err)
	}
}
