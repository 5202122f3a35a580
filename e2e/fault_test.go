package e2e

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/agent"
	"github.com/tapis-agent/tapis-agent/config"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// faultFailures is how many refresh attempts each fault makes fail before
// upstream comes back.
const faultFailures = 4

// faultCase is one kind of upstream failure: arm makes the refresh fail,
// disarm (nil when the fake's fault consumes itself after faultFailures
// uses) brings upstream back.
type faultCase struct {
	name   string
	tls    bool // the tenant is reached through a TLS front
	arm    func(fake *tapistest.Server, fr *front)
	disarm func(fake *tapistest.Server, fr *front)
}

// refreshFault returns an arm func injecting f on refresh grants for
// faultFailures requests.
func refreshFault(f tapistest.Fault) func(*tapistest.Server, *front) {
	f.GrantType, f.Times = "refresh_token", faultFailures
	return func(fake *tapistest.Server, _ *front) { fake.Inject(tapistest.RouteTokens, f) }
}

var faultCases = []faultCase{
	{name: "refused", arm: func(_ *tapistest.Server, fr *front) { fr.refuse() }, disarm: func(_ *tapistest.Server, fr *front) { fr.reopen() }},
	{name: "hang", arm: refreshFault(tapistest.Fault{Hang: true})},
	{name: "5xx", arm: refreshFault(tapistest.Fault{Status: 503})},
	{name: "html500", arm: refreshFault(tapistest.Fault{Status: 500})},
	{name: "truncated-json", arm: refreshFault(tapistest.Fault{Status: 200, ContentType: "application/json",
		Body: `{"message":"Token created successfully.","metadata":{},"result":{"access_token":{"access_token":"eyJhbGciOi`})},
	{name: "2MiB-body", arm: refreshFault(tapistest.Fault{Status: 200, ContentType: "application/json",
		Body: `{"message":"` + strings.Repeat("a", 2<<20) + `","metadata":{},"result":null,"status":"success","version":"dev"}`})},
	{name: "slow-drip", arm: refreshFault(tapistest.Fault{DripEvery: 200 * time.Millisecond})},
	{name: "dropped", arm: refreshFault(tapistest.Fault{Drop: true})},
	{name: "tls-handshake", tls: true, arm: func(_ *tapistest.Server, fr *front) { fr.presentBad(true) }, disarm: func(_ *tapistest.Server, fr *front) { fr.presentBad(false) }},
}

// faultFigures are the suite's totals, for the closing report.
var faultFigures struct {
	faults, served, expired, failedAnswers atomic.Int64
}

// TestUpstreamFaults drives every kind of upstream failure against an
// agent holding a still-valid token. For each: the token keeps being
// served and no expired one ever is, callers asking for more than it has
// get an error rather than a stale token, the retries back off, status
// shows the last error, and the session recovers when upstream returns.
// The agent runs in this process so that its upstream timeout can be 1 s.
func TestUpstreamFaults(t *testing.T) {
	var mu sync.Mutex
	gaps := make([][]float64, faultFailures-1) // gaps[k]: seconds between failures k+1 and k+2, every case
	t.Run("cases", func(t *testing.T) {
		for _, tc := range faultCases {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				g := runFault(t, tc)
				mu.Lock()
				for k := range g {
					gaps[k] = append(gaps[k], g[k])
				}
				mu.Unlock()
			})
		}
	})
	if t.Failed() {
		return
	}
	// Full jitter makes single intervals random; across every case the
	// later intervals must be clearly longer than the first ones.
	mean := func(xs []float64) float64 {
		s := 0.0
		for _, x := range xs {
			s += x
		}
		return s / float64(len(xs))
	}
	first, last := mean(gaps[0]), mean(gaps[len(gaps)-1])
	t.Logf("mean interval between failed attempts: %v", func() []string {
		var out []string
		for _, g := range gaps {
			out = append(out, fmt.Sprintf("%.2fs", mean(g)))
		}
		return out
	}())
	if !(last > first) || math.IsNaN(first) {
		t.Errorf("retry intervals do not grow: first %.2fs, last %.2fs", first, last)
	}
	t.Logf("faults injected %d, tokens served %d, expired tokens served %d, failed answers for a still-valid token %d",
		faultFigures.faults.Load(), faultFigures.served.Load(), faultFigures.expired.Load(), faultFigures.failedAnswers.Load())
}

// runFault runs one fault case and returns the intervals between its
// failed attempts, in seconds.
func runFault(t *testing.T, tc faultCase) []float64 {
	fake := tapistest.New(t, tapistest.Config{AccessTTL: time.Minute, Users: map[string]string{"jdoe": "secret"}})
	tenant := &config.Tenant{Name: "dev", Username: "jdoe"}
	var fr *front
	target := strings.TrimPrefix(fake.URL(), "http://")
	if tc.tls {
		good, pemBytes := selfSigned(t, "trusted")
		bad, _ := selfSigned(t, "untrusted")
		ca := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(ca, pemBytes, 0o600); err != nil {
			t.Fatal(err)
		}
		fr = newFront(t, target, &good, &bad)
		tenant.BaseURL, tenant.CAFile = "https://"+fr.addr, ca
	} else {
		fr = newFront(t, target, nil, nil)
		tenant.BaseURL = "http://" + fr.addr
	}
	p := startInproc(t, agent.Options{UpstreamTimeout: time.Second}, tenant)
	c := p.client()
	if _, err := c.Login(&ipc.LoginRequest{Tenant: "dev", Username: "jdoe", Password: "secret"}); err != nil {
		t.Fatalf("login: %v", err)
	}
	first, err := c.Token("dev", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	// A caller that asks for 10 s, every 50 ms, throughout: the token has
	// 50 s and more, so every answer must be a valid token.
	stop := make(chan struct{})
	checked := make(chan struct{})
	var served, failed int
	var problems []string
	go func() {
		defer close(checked)
		for {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			tr, err := c.Token("dev", 10*time.Second)
			if err != nil {
				failed++
				problems = append(problems, "answer failed: "+err.Error())
				continue
			}
			served++
			if msg := servedCheck(tr, 10*time.Second, time.Now()); msg != "" {
				problems = append(problems, msg)
				if strings.Contains(msg, "expired") {
					faultFigures.expired.Add(1)
				}
			}
		}
	}()

	tc.arm(fake, fr)
	faultFigures.faults.Add(1)
	// A caller asking for the whole lifetime forces the first attempt; it
	// gets an error, not the token that cannot satisfy it.
	var ie *ipc.Error
	if tr, err := c.Token("dev", time.Minute); err == nil {
		t.Errorf("asking for 60s while upstream fails served a token valid %s", time.Until(tr.ExpiresAt))
	} else if !errors.As(err, &ie) || ie.Code != ipc.CodeUpstreamUnavailable {
		t.Errorf("asking for 60s while upstream fails: %v; want %s", err, ipc.CodeUpstreamUnavailable)
	}
	poll(t, "the first failed attempt", 15*time.Second, func() bool { return len(p.log.failedAttempts()) >= 1 })
	st := p.tenantStatus(t, "dev")
	if st.LastError == "" || (st.State != ipc.StateRetrying && st.State != ipc.StateRefreshing) {
		t.Errorf("status after a failed refresh = %s, last_error %q; want retrying with the error", st.State, st.LastError)
	}
	poll(t, fmt.Sprintf("%d failed attempts", faultFailures), 40*time.Second, func() bool {
		return len(p.log.failedAttempts()) >= faultFailures
	})
	if tc.disarm != nil {
		tc.disarm(fake, fr)
	}
	poll(t, "recovery", 40*time.Second, func() bool {
		s := p.tenantStatus(t, "dev")
		return s.State == ipc.StateReady && s.LastError == "" && s.LastRefresh != nil
	})
	tr, err := c.Token("dev", 50*time.Second)
	if err != nil || tr.AccessToken == first.AccessToken {
		t.Errorf("after recovery: %v, same token %v; want a fresh token", err, err == nil && tr.AccessToken == first.AccessToken)
	}
	close(stop)
	<-checked
	faultFigures.served.Add(int64(served))
	faultFigures.failedAnswers.Add(int64(failed))
	if served == 0 {
		t.Errorf("no token served during the fault")
	}
	for _, pr := range problems {
		t.Error(pr)
	}

	// Backoff: no attempt beyond the failures the fault allowed (the
	// fake's own faults are consumed exactly), each retry scheduled within
	// the growing full-jitter bound 1s·2^(n−1).
	fails := p.log.failedAttempts()
	if tc.disarm == nil {
		if len(fails) != faultFailures {
			t.Errorf("failed attempts = %d; want %d", len(fails), faultFailures)
		}
		if n := fake.GrantCalls("refresh_token"); n != faultFailures+1 {
			t.Errorf("refresh grants upstream = %d; want %d failed and 1 good", n, faultFailures+1)
		}
	}
	for i, f := range fails {
		n, _ := f.attrs["attempts"].(int64)
		at, ok := f.attrs["retry_at"].(time.Time)
		if !ok || n != int64(i+1) {
			t.Errorf("failure %d logged attempts=%v retry_at=%v", i+1, f.attrs["attempts"], f.attrs["retry_at"])
			continue
		}
		bound := time.Second << (n - 1)
		if d := at.Sub(f.time); d > bound+100*time.Millisecond {
			t.Errorf("retry %d scheduled %s after the failure; full jitter bounds it by %s", n, d, bound)
		}
	}
	var gaps []float64
	for i := 1; i < faultFailures && i < len(fails); i++ {
		gaps = append(gaps, fails[i].time.Sub(fails[i-1].time).Seconds())
	}
	if len(gaps) != faultFailures-1 {
		t.Fatalf("only %d failed attempts", len(fails))
	}
	return gaps
}

// TestClockJumpPastExpiry: after the wall clock jumps past the token's
// expiry (a laptop resumed), the next answer notices at once: it refreshes
// and serves a new token, or fails with upstream_unavailable when Tapis is
// down, but never serves the dead one.
func TestClockJumpPastExpiry(t *testing.T) {
	clk := &offsetClock{}
	fake := tapistest.New(t, tapistest.Config{AccessTTL: time.Hour, Users: map[string]string{"jdoe": "secret"}, Now: clk.Now})
	p := startInproc(t, agent.Options{Now: clk.Now, UpstreamTimeout: time.Second},
		&config.Tenant{Name: "dev", BaseURL: fake.URL(), Username: "jdoe"})
	c := p.client()
	if _, err := c.Login(&ipc.LoginRequest{Tenant: "dev", Username: "jdoe", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	old, err := c.Token("dev", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// Upstream down, then the jump: no token at all rather than a dead one.
	fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: 503, Times: 1})
	clk.Advance(2 * time.Hour)
	if tr, err := c.Token("dev", 0); err == nil {
		t.Fatalf("after the jump with upstream down, served a token (same as before: %v)", tr.AccessToken == old.AccessToken)
	} else if code := ipcCode(err); code != ipc.CodeUpstreamUnavailable {
		t.Errorf("after the jump with upstream down: %v; want %s", err, ipc.CodeUpstreamUnavailable)
	}
	if st := p.tenantStatus(t, "dev"); st.State != ipc.StateExpired && st.State != ipc.StateRetrying {
		t.Errorf("state after the jump = %s; want expired or retrying", st.State)
	}

	// Upstream back: the next answer after the retry is a fresh token,
	// valid on the jumped clock.
	poll(t, "a fresh token after the jump", 10*time.Second, func() bool {
		tr, err := c.Token("dev", time.Minute)
		if err != nil {
			return false
		}
		if tr.AccessToken == old.AccessToken {
			t.Fatalf("served the token that died during the jump")
		}
		if msg := servedCheck(tr, time.Minute, clk.Now()); msg != "" {
			t.Fatal(msg)
		}
		return true
	})
}

// offsetClock is the wall clock shifted by an offset the test advances.
type offsetClock struct{ offset atomic.Int64 }

func (c *offsetClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *offsetClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

func ipcCode(err error) string {
	var ie *ipc.Error
	if errors.As(err, &ie) {
		return ie.Code
	}
	return ""
}

// TestKillDuringRefresh: kill -9 of the agent while a refresh is in
// flight, then a restart: the stale socket does not block the restart,
// the token file is whole, and a new login works.
func TestKillDuringRefresh(t *testing.T) {
	e := newEnv(t, tapistest.Config{AccessTTL: 30 * time.Second})
	tokenFile := filepath.Join(e.home, "tokens.json")
	e.writeConfig(fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\ntoken_file = %q\n", e.fake.URL(), tokenFile))
	e.startAgent()
	e.login()
	e.waitRemainingBelow(28500 * time.Millisecond)
	e.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Hang: true})
	done := make(chan result, 1)
	go func() { done <- e.token("", "dev", "--min-valid", "29s") }()
	e.waitFor("the refresh to reach upstream", 10*time.Second, func() bool { return e.fake.GrantCalls("refresh_token") >= 1 })
	if err := e.agent.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-e.exited
	if r := <-done; r.code == 0 {
		t.Errorf("the caller waiting on the killed agent exited 0")
	}
	if _, err := os.Lstat(e.sock); err != nil {
		t.Logf("no socket file left behind (%v)", err)
	}
	checkTokenFile(t, tokenFile)

	e.fake.ClearFaults()
	e.startAgent() // fails the test if the stale socket blocks it
	if r := e.token("", "dev"); r.code != 4 {
		t.Errorf("after restart: exit %d; want 4 (the tokens lived in the killed agent's memory)", r.code)
	}
	e.login()
	e.mustToken("", "dev")
	checkTokenFile(t, tokenFile)
	if entries, err := os.ReadDir(filepath.Dir(tokenFile)); err == nil {
		for _, en := range entries {
			if strings.HasPrefix(en.Name(), ".tokens.json") || strings.HasSuffix(en.Name(), ".tmp") {
				t.Errorf("temporary token file left in HOME: %s", en.Name())
			}
		}
	}
}

// checkTokenFile fails unless path is absent or a whole connect_tapis
// token file.
func checkTokenFile(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		AccessToken string `json:"access_token"`
		ExpiresAt   any    `json:"expires_at"`
	}
	if err := jsonStrict(b, &v); err != nil || strings.Count(v.AccessToken, ".") != 2 || v.ExpiresAt == nil {
		t.Errorf("token file is not whole: %v\n%q", err, b)
	}
}
