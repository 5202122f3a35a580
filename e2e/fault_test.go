package e2e

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
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
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// faultFailures is how many refresh attempts each fault makes fail before
// upstream comes back.
const faultFailures = 4

// faultCase is one kind of upstream failure. A fault the fake injects on
// refresh grants is set in fault; the others are made by the front in
// front of the fake: arm makes refreshes fail, disarm brings upstream back.
type faultCase struct {
	name   string
	tls    bool             // the tenant is reached through a TLS front
	fault  *tapistest.Fault // injected by the fake on refresh grants
	arm    func(fr *front)
	disarm func(fr *front)
}

// inject makes refreshes fail: the fake's fault for times requests (0:
// until lifted), or the front's for as long as it is armed.
func (tc faultCase) inject(fake *tapistest.Server, fr *front, times int) {
	if tc.fault != nil {
		f := *tc.fault
		f.GrantType, f.Times = "refresh_token", times
		fake.Inject(tapistest.RouteTokens, f)
		return
	}
	tc.arm(fr)
}

// lift brings upstream back.
func (tc faultCase) lift(fake *tapistest.Server, fr *front) {
	if tc.fault != nil {
		fake.ClearFaults()
		return
	}
	tc.disarm(fr)
}

var faultCases = []faultCase{
	{name: "refused", arm: (*front).refuse, disarm: (*front).reopen},
	{name: "hang", fault: &tapistest.Fault{Hang: true}},
	{name: "5xx", fault: &tapistest.Fault{Status: 503}},
	{name: "html500", fault: &tapistest.Fault{Status: 500}},
	{name: "truncated-json", fault: &tapistest.Fault{Status: 200, ContentType: "application/json",
		Body: `{"message":"Token created successfully.","metadata":{},"result":{"access_token":{"access_token":"eyJhbGciOi`}},
	{name: "2MiB-body", fault: &tapistest.Fault{Status: 200, ContentType: "application/json",
		Body: `{"message":"` + strings.Repeat("a", 2<<20) + `","metadata":{},"result":null,"status":"success","version":"dev"}`}},
	{name: "slow-drip", fault: &tapistest.Fault{DripEvery: 200 * time.Millisecond}},
	{name: "dropped", fault: &tapistest.Fault{Drop: true}},
	{name: "tls-handshake", tls: true, arm: func(fr *front) { fr.presentBad(true) }, disarm: func(fr *front) { fr.presentBad(false) }},
}

// faultFigures are the suite's totals, for the closing report.
var faultFigures struct {
	faults, requests, served, expired, failedAnswers atomic.Int64
}

// faultWorld starts a fake tenant issuing tokens that live ttl, a front
// for it (TLS for tc.tls), and an in-process agent logged in through the
// front with a 1 s upstream timeout.
func faultWorld(t *testing.T, tc faultCase, ttl time.Duration) (*tapistest.Server, *front, *inproc) {
	t.Helper()
	fake := tapistest.New(t, tapistest.Config{AccessTTL: ttl, Users: map[string]string{"jdoe": "secret"}})
	// A configured client: the login is one grant, not four calls (find
	// or register the host's client), each within the 1 s timeout.
	if err := fake.AddClient("jdoe", "c1", "k1"); err != nil {
		t.Fatal(err)
	}
	tenant := &config.Tenant{Name: "dev", Username: "jdoe", ClientID: "c1", ClientKey: "k1"}
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
	// The login is not under test, and on a loaded machine a grant may
	// take more than the 1 s timeout: try it a few times.
	var err error
	for range 5 {
		_, err = p.client().Login(context.Background(), &ipc.LoginRequest{Tenant: "dev", Username: "jdoe", Password: "secret"})
		var ie *ipc.Error
		if !errors.As(err, &ie) || ie.Code != ipc.CodeUpstreamUnavailable {
			break
		}
	}
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	return fake, fr, p
}

// TestUpstreamFaults drives every kind of upstream failure against an
// agent holding a still-valid token. For each: the token keeps being
// served and no expired one ever is, callers asking for more than it has
// get an error rather than a stale token, the retries back off, status
// shows the last error, and the session recovers when upstream returns.
// Then, for each kind again, the fault outlasts a short-lived token: once
// it has expired callers get upstream_unavailable and nothing else. The
// agent runs in this process so that its upstream timeout can be 1 s.
func TestUpstreamFaults(t *testing.T) {
	// Not t.Parallel: the callers judge each token on the wall clock at
	// receipt, 50 ms short of what they asked at most, which a loaded
	// machine's scheduling delays can eat.
	var mu sync.Mutex
	gaps := make([][]float64, faultFailures-1) // gaps[k]: seconds between failures k+1 and k+2, every case
	t.Run("cases", func(t *testing.T) {
		// Every case at once, not t.Parallel's GOMAXPROCS at a time: they
		// mostly wait, and the suite must stay short on two cores.
		var wg sync.WaitGroup
		for _, tc := range faultCases {
			wg.Go(func() {
				t.Run(tc.name, func(t *testing.T) {
					g := runFault(t, tc)
					mu.Lock()
					for k := range g {
						gaps[k] = append(gaps[k], g[k])
					}
					mu.Unlock()
				})
			})
			wg.Go(func() {
				t.Run(tc.name+"/outlasting-the-token", func(t *testing.T) { runOutlast(t, tc) })
			})
		}
		wg.Wait()
	})
	t.Logf("faults injected %d, token requests sent %d, tokens served %d, expired tokens served %d, failed answers while the token was still valid %d",
		faultFigures.faults.Load(), faultFigures.requests.Load(), faultFigures.served.Load(), faultFigures.expired.Load(), faultFigures.failedAnswers.Load())
	if n := faultFigures.expired.Load(); n != 0 {
		t.Errorf("%d expired tokens served", n)
	}
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
}

// caller asks the agent for a token valid minValid every period until
// stopped, checking each one served on the wall clock at receipt.
type caller struct {
	c        *ipcclient.Client
	minValid time.Duration
	stop     chan struct{}
	done     chan struct{}

	// Written by the caller's goroutine; read after done.
	requests, served, failed int
	codes                    map[string]int // error codes of failed answers
	problems                 []string
	// afterExpiry counts answers asked for once the first token served
	// had expired, and afterServed those that were tokens.
	afterExpiry, afterServed int
}

func startCaller(c *ipcclient.Client, minValid, period time.Duration, expiry func() time.Time) *caller {
	k := &caller{c: c, minValid: minValid, stop: make(chan struct{}), done: make(chan struct{}), codes: map[string]int{}}
	go func() {
		defer close(k.done)
		for {
			select {
			case <-k.stop:
				return
			case <-time.After(period):
			}
			asked := time.Now()
			dead := expiry != nil && !asked.Before(expiry())
			k.requests++
			faultFigures.requests.Add(1)
			if dead {
				k.afterExpiry++
			}
			tr, err := c.Token(context.Background(), "dev", minValid)
			if err != nil {
				k.failed++
				k.codes[ipcCode(err)]++
				continue
			}
			k.served++
			if dead {
				k.afterServed++
			}
			if msg := servedCheck(tr, minValid, time.Now()); msg != "" {
				k.problems = append(k.problems, msg)
				if strings.Contains(msg, "expired") {
					faultFigures.expired.Add(1)
				}
			}
		}
	}()
	return k
}

// end stops the caller and adds its figures to the suite's.
func (k *caller) end() {
	close(k.stop)
	<-k.done
	faultFigures.served.Add(int64(k.served))
}

// runFault runs one fault case and returns the intervals between its
// failed attempts, in seconds.
func runFault(t *testing.T, tc faultCase) []float64 {
	fake, fr, p := faultWorld(t, tc, time.Minute)
	c := p.client()
	first, err := c.Token(context.Background(), "dev", 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	// A caller that asks for 10 s, every 50 ms, throughout: the token has
	// 50 s and more, so every answer must be a valid token.
	k := startCaller(c, 10*time.Second, 50*time.Millisecond, nil)

	tc.inject(fake, fr, faultFailures)
	faultFigures.faults.Add(1)
	// A caller asking for the whole lifetime forces the first attempt; it
	// gets an error, not the token that cannot satisfy it.
	var ie *ipc.Error
	if tr, err := c.Token(context.Background(), "dev", time.Minute); err == nil {
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
	if tc.fault == nil {
		tc.lift(fake, fr)
	}
	poll(t, "recovery", 40*time.Second, func() bool {
		s := p.tenantStatus(t, "dev")
		return s.State == ipc.StateReady && s.LastError == "" && s.LastRefresh != nil
	})
	tr, err := c.Token(context.Background(), "dev", 50*time.Second)
	if err != nil || tr.AccessToken == first.AccessToken {
		t.Errorf("after recovery: %v, same token %v; want a fresh token", err, err == nil && tr.AccessToken == first.AccessToken)
	}
	k.end()
	faultFigures.failedAnswers.Add(int64(k.failed))
	if k.served == 0 {
		t.Errorf("no token served during the fault")
	}
	if k.failed > 0 {
		t.Errorf("%d answers failed while the token was still valid for the %s asked: %v", k.failed, k.minValid, k.codes)
	}
	for _, pr := range k.problems {
		t.Error(pr)
	}

	fails := p.log.failedAttempts()
	if tc.fault != nil {
		// No attempt beyond the failures the fault allowed: the fake's
		// faults are consumed exactly, so a hidden retry (by the HTTP
		// transport, say) would show here.
		if len(fails) != faultFailures {
			t.Errorf("failed attempts = %d; want %d", len(fails), faultFailures)
		}
		if n := fake.GrantCalls("refresh_token"); n != faultFailures+1 {
			t.Errorf("refresh grants upstream = %d; want %d failed and 1 good", n, faultFailures+1)
		}
	}
	checkBackoff(t, fails)
	var gaps []float64
	for i := 1; i < faultFailures && i < len(fails); i++ {
		gaps = append(gaps, fails[i].time.Sub(fails[i-1].time).Seconds())
	}
	if len(gaps) != faultFailures-1 {
		t.Fatalf("only %d failed attempts", len(fails))
	}
	return gaps
}

// checkBackoff checks the retries after one fault's failed attempts. Full
// jitter draws each delay uniformly below a ceiling that doubles per
// failure (1 s, 2 s, 4 s, …), so a single interval may be short; what must
// hold is that the ceilings grow, that every retry was scheduled below its
// ceiling, and that no attempt came before its scheduled time: a fault
// that made the agent retry without backoff fails one of these.
func checkBackoff(t *testing.T, fails []logRecord) {
	t.Helper()
	var ceilings []time.Duration
	for i, f := range fails {
		n, _ := f.attrs["attempts"].(int64)
		at, ok := f.attrs["retry_at"].(time.Time)
		if !ok || n != int64(i+1) {
			t.Errorf("failure %d logged attempts=%v retry_at=%v; want attempts=%d, the consecutive failures", i+1, f.attrs["attempts"], f.attrs["retry_at"], i+1)
			continue
		}
		ceiling := time.Second << (n - 1)
		ceilings = append(ceilings, ceiling)
		if d := at.Sub(f.time); d > ceiling+100*time.Millisecond {
			t.Errorf("retry %d scheduled %s after the failure; full jitter bounds it by %s", n, d, ceiling)
		}
		if i+1 < len(fails) {
			// The next failure is logged when that attempt ends, so
			// after the time it was scheduled for.
			if next := fails[i+1].time; next.Before(at.Add(-50 * time.Millisecond)) {
				t.Errorf("attempt %d failed at %s, before its retry was due at %s: no backoff", n+1, next.Format("15:04:05.000"), at.Format("15:04:05.000"))
			}
			// And within the ceiling plus the attempt itself (the
			// upstream timeout, 1 s) plus slack: the upper envelope.
			if gap := fails[i+1].time.Sub(f.time); gap > ceiling+2500*time.Millisecond {
				t.Errorf("%s between failures %d and %d; the retry was due within %s", gap, n, n+1, ceiling)
			}
		}
	}
	if len(ceilings) >= 2 && !(ceilings[len(ceilings)-1] > ceilings[0]) {
		t.Errorf("backoff ceilings %v do not grow", ceilings)
	}
}

// outlastTTL is the lifetime of the tokens in the phase where the fault
// outlasts the token: short, so that it expires during the fault.
const outlastTTL = 6 * time.Second

// runOutlast keeps upstream failing past the expiry of a short-lived
// token. While the token lasts it is served to callers it satisfies;
// after it expired callers get upstream_unavailable (tapis-token exits 5),
// never a token, and status shows the expiry and the last error. Then
// upstream returns and the session recovers.
func runOutlast(t *testing.T, tc faultCase) {
	fake, fr, p := faultWorld(t, tc, outlastTTL)
	c := p.client()
	first, err := c.Token(context.Background(), "dev", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// The expiry on the wall clock by the JWT's exp (whole seconds).
	expiry := first.ExpiresAt.Truncate(time.Second).Add(time.Second)
	tc.inject(fake, fr, 0)
	faultFigures.faults.Add(1)
	k := startCaller(c, time.Second, 100*time.Millisecond, func() time.Time { return expiry })

	// Past the expiry every caller needing a token cuts the backoff short
	// and waits for its attempt, which a hanging upstream holds for the
	// 1 s upstream timeout: give the caller time for a few of those.
	poll(t, "the token to expire during the fault", outlastTTL+6*time.Second, func() bool {
		return time.Now().After(expiry.Add(3500 * time.Millisecond))
	})
	r := runCmd(t, filepath.Join(binDir, "tapis-token"), []string{"TAPIS_AGENT_SOCK=" + p.sock, "HOME=" + t.TempDir()}, "", "dev")
	if r.code != 5 || r.stdout != "" || !strings.Contains(r.stderr, "hint:") {
		t.Errorf("tapis-token after expiry during the fault: exit %d, stdout %q, stderr %q; want exit 5, no token, a hint", r.code, r.stdout, r.stderr)
	}
	var st ipc.TenantStatus
	poll(t, "status to show the expiry and the last error", 10*time.Second, func() bool {
		st = p.tenantStatus(t, "dev")
		return (st.State == ipc.StateExpired || st.State == ipc.StateRetrying) && st.LastError != ""
	})
	if st.AccessExpiresAt == nil || st.AccessExpiresAt.After(time.Now()) {
		t.Errorf("status after expiry: access_expires_at %v; want the past", st.AccessExpiresAt)
	}
	k.end()

	tc.lift(fake, fr)
	poll(t, "recovery after the outage", 40*time.Second, func() bool {
		tr, err := c.Token(context.Background(), "dev", time.Second)
		return err == nil && tr.AccessToken != first.AccessToken && servedCheck(tr, time.Second, time.Now()) == ""
	})

	// A hanging upstream holds each caller for the 1 s upstream timeout.
	if k.afterExpiry < 3 {
		t.Errorf("only %d token requests after the expiry; want 3 or more", k.afterExpiry)
	}
	if k.afterServed != 0 {
		t.Errorf("%d tokens served after the token expired while upstream was down", k.afterServed)
	}
	for code, n := range k.codes {
		if code != ipc.CodeUpstreamUnavailable {
			t.Errorf("%d answers failed with %q; want only %s", n, code, ipc.CodeUpstreamUnavailable)
		}
	}
	if k.served == 0 {
		t.Errorf("the still-valid token was not served before it expired")
	}
	for _, pr := range k.problems {
		t.Error(pr)
	}
	t.Logf("%d requests: %d tokens served, %d answers upstream_unavailable, %d asked after the expiry", k.requests, k.served, k.codes[ipc.CodeUpstreamUnavailable], k.afterExpiry)
}

// TestClockJumpPastExpiry: after the wall clock jumps past the token's
// expiry (a laptop resumed), the next answer notices at once: it refreshes
// and serves a new token, or fails with upstream_unavailable when Tapis is
// down, but never serves the dead one.
func TestClockJumpPastExpiry(t *testing.T) {
	t.Parallel()
	clk := &offsetClock{}
	fake := tapistest.New(t, tapistest.Config{AccessTTL: time.Hour, Users: map[string]string{"jdoe": "secret"}, Now: clk.Now})
	p := startInproc(t, agent.Options{Now: clk.Now, UpstreamTimeout: 10 * time.Second},
		&config.Tenant{Name: "dev", BaseURL: fake.URL(), Username: "jdoe"})
	c := p.client()
	if _, err := c.Login(context.Background(), &ipc.LoginRequest{Tenant: "dev", Username: "jdoe", Password: "secret"}); err != nil {
		t.Fatal(err)
	}
	old, err := c.Token(context.Background(), "dev", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	// Upstream down, then the jump: no token at all rather than a dead one.
	fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: 503, Times: 1})
	clk.Advance(2 * time.Hour)
	if tr, err := c.Token(context.Background(), "dev", 0); err == nil {
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
		tr, err := c.Token(context.Background(), "dev", time.Minute)
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

// TestKillDuringRefresh: kill -9 of the agent at random moments while its
// 2 s tokens are refreshed and the token file rewritten about every
// second, then a restart, several times. Each time: the token file is
// whole JSON or absent, the killed agent's socket is left behind (it
// could not clean up) but is dead and does not stop the restart, and once
// the new agent writes the token file no temporary file is left beside it.
func TestKillDuringRefresh(t *testing.T) {
	t.Parallel()
	const cycles = 5
	e := newEnv(t, tapistest.Config{AccessTTL: 2 * time.Second})
	tokenFile := filepath.Join(e.home, "tokens.json")
	e.writeConfig(fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\ntoken_file = %q\n", e.fake.URL(), tokenFile))
	temps := func() []string {
		m, _ := filepath.Glob(filepath.Join(e.home, ".tokens.json.tmp*"))
		return m
	}
	orphans := 0
	for i := range cycles {
		e.startAgent() // fails the test if the stale socket blocks it
		if r := e.token("", "dev"); i > 0 && r.code != 4 {
			t.Errorf("cycle %d: after restart: exit %d; want 4 (the tokens lived in the killed agent's memory)", i, r.code)
		}
		e.login()
		// The restarted agent has written the token file: any temporary
		// file a kill left is gone.
		if m := temps(); len(m) != 0 {
			t.Errorf("cycle %d: temporary token files left beside the token file: %v", i, m)
		}
		checkTokenFile(t, tokenFile)
		refreshes := e.fake.GrantCalls("refresh_token")
		// A caller keeps asking for a token valid 1 s, forcing
		// refreshes besides the proactive ones at about 1.3 s.
		stop := make(chan struct{})
		callerDone := make(chan struct{})
		go func() {
			defer close(callerDone)
			c := &ipcclient.Client{Path: e.sock, Timeout: 2 * time.Second}
			for {
				select {
				case <-stop:
					return
				case <-time.After(20 * time.Millisecond):
				}
				_, _ = c.Token(context.Background(), "dev", time.Second)
			}
		}()
		// Kill at a random moment 1.5–4 s in: after at least one
		// refresh, amid the next ones.
		time.Sleep(1500*time.Millisecond + rand.N(2500*time.Millisecond))
		if err := e.agent.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		<-e.exited
		close(stop)
		<-callerDone
		if n := e.fake.GrantCalls("refresh_token") - refreshes; n < 1 {
			t.Errorf("cycle %d: no refresh before the kill", i)
		}
		checkTokenFile(t, tokenFile)
		orphans += len(temps())
		// kill -9 leaves the socket file; nothing answers on it.
		fi, err := os.Lstat(e.sock)
		if err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Errorf("cycle %d: after kill -9, socket path %s: %v, %v; want the stale socket left behind", i, e.sock, fi, err)
		}
		if _, err := (&ipcclient.Client{Path: e.sock, Timeout: time.Second}).Status(context.Background()); err == nil {
			t.Fatalf("cycle %d: the killed agent's socket still answers", i)
		}
	}
	e.startAgent()
	e.login()
	e.mustToken("", "dev")
	checkTokenFile(t, tokenFile)
	if m := temps(); len(m) != 0 {
		t.Errorf("temporary token files left: %v", m)
	}
	t.Logf("%d kill -9 cycles, %d refresh grants, %d temporary files orphaned by a kill and removed", cycles, e.fake.GrantCalls("refresh_token"), orphans)
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
