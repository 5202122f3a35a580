package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/jwt"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// settlePeriod is how long the agent lets a config file that would end
// sessions stay unchanged before it puts it in force (the daemon's
// settleDelay).
const settlePeriod = 5 * time.Second

// twoTenants is an agent with tenants dev and prod, each its own fake
// tenant, both logged in.
type twoTenants struct {
	*env
	prod    *tapistest.Server
	content string                      // the config file's
	tokens  map[string]string           // each tenant's access token after the login
	before  map[string]ipc.TenantStatus // each tenant's status after the login
}

func newTwoTenants(t *testing.T) *twoTenants {
	t.Helper()
	e := newEnv(t, tapistest.Config{})
	prod := tapistest.New(t, tapistest.Config{TenantID: "prod", Users: map[string]string{"jdoe": "secret"}})
	w := &twoTenants{env: e, prod: prod, tokens: map[string]string{}, before: map[string]ipc.TenantStatus{}}
	w.content = fmt.Sprintf("default_tenant = \"dev\"\n\n[tenants.dev]\nbase_url = %q\nusername = \"jdoe\"\n\n[tenants.prod]\nbase_url = %q\nusername = \"jdoe\"\n",
		e.fake.URL(), prod.URL())
	e.writeConfig(w.content)
	e.startAgent()
	e.login()
	e.mustToken("secret\n", "login", "prod", "--password-stdin")
	for _, name := range []string{"dev", "prod"} {
		w.tokens[name] = e.mustToken("", name).stdout
		w.before[name] = e.status(name)
	}
	return w
}

// passwordGrants is how many password grants both fakes have seen.
func (w *twoTenants) passwordGrants() int {
	return w.fake.GrantCalls("password") + w.prod.GrantCalls("password")
}

// sessionsKept checks that both sessions are the ones logged in at the
// start: ready, the same access token served, no refresh since.
func (w *twoTenants) sessionsKept(when string) {
	w.t.Helper()
	for _, name := range []string{"dev", "prod"} {
		r := w.token("", name)
		if r.code != 0 || r.stdout != w.tokens[name] {
			w.t.Errorf("%s: tapis-token %s: exit %d, same token %v, stderr %q; want the token of the session logged in",
				when, name, r.code, r.stdout == w.tokens[name], r.stderr)
		}
		before := w.before[name]
		s := w.status(name)
		if s.State != ipc.StateReady || s.RefreshCount != before.RefreshCount || !s.AccessExpiresAt.Equal(*before.AccessExpiresAt) {
			w.t.Errorf("%s: %s is %s, refresh_count %d, expires %v; want ready, %d, %v",
				when, name, s.State, s.RefreshCount, s.AccessExpiresAt, before.RefreshCount, before.AccessExpiresAt)
		}
	}
}

// agentStatus returns the agent's whole status.
func (e *env) agentStatus() *ipc.StatusResponse {
	e.t.Helper()
	st, err := e.client().Status(context.Background())
	if err != nil {
		e.t.Fatalf("status: %v", err)
	}
	return st
}

// configured reports whether status lists tenant name.
func (e *env) configured(name string) bool {
	e.t.Helper()
	for _, ts := range e.agentStatus().Tenants {
		if ts.Tenant == name {
			return true
		}
	}
	return false
}

// saveSlowly saves content over path the way `cat >`, some editors and a
// slow network file system do: the open truncates the file, the first
// head bytes are written at once, the rest after pause. during runs at the
// start of the pause, with the pause's end as its deadline; saveSlowly
// returns when the file is written and closed.
func saveSlowly(t *testing.T, path, content string, head int, pause time.Duration, during func(end time.Time)) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	start := time.Now()
	if _, err := f.WriteString(content[:head]); err != nil {
		t.Fatal(err)
	}
	end := start.Add(pause)
	during(end)
	if late := time.Since(end); late > 0 {
		t.Fatalf("the checks during the pause of %s overran it by %s", pause, late)
	}
	time.Sleep(time.Until(end))
	if _, err := f.WriteString(content[head:]); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestSlowSaveKeepsSessions: a save that truncates the config file and
// writes it back after a pause longer than the watcher's debounce (but
// shorter than the settle period) ends no session, whether the pause
// comes before the first byte or in the middle of the file, and the agent
// says meanwhile that it waits for the file to settle. A file emptied and
// left so is put in force once the settle period has passed.
func TestSlowSaveKeepsSessions(t *testing.T) {
	t.Parallel()
	// cut returns how many bytes of the config are written before the
	// pause.
	type cut func(config string) int
	nothing := func(string) int { return 0 }
	cases := []struct {
		name  string
		pause time.Duration
		cut   cut
		third bool // the content written back adds a tenant
		// settling: the pause shows nothing but an empty file, whose wait
		// for the settle period status and the log must tell.
		settling bool
	}{
		{name: "truncated for 1s", pause: time.Second, cut: nothing, settling: true},
		{name: "truncated for 3s", pause: 3 * time.Second, cut: nothing, settling: true},
		{name: "truncated for 1s, a tenant added", pause: time.Second, cut: nothing, third: true, settling: true},
		{name: "half written for 1s", pause: time.Second, cut: func(c string) int { return len(c) / 2 }},
		{name: "cut after the first tenant for 1s", pause: time.Second,
			cut: func(c string) int { return strings.Index(c, "[tenants.prod]") }},
		{name: "cut inside the second tenant for 3s", pause: 3 * time.Second,
			cut: func(c string) int {
				i := strings.Index(c, "[tenants.prod]")
				return i + strings.Index(c[i:], "username")
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newTwoTenants(t)
			content := w.content
			var extra *tapistest.Server
			if tc.third {
				extra = tapistest.New(t, tapistest.Config{TenantID: "extra", Users: map[string]string{"jdoe": "secret"}})
				content += fmt.Sprintf("\n[tenants.extra]\nbase_url = %q\nusername = \"jdoe\"\n", extra.URL())
			}
			head := tc.cut(content)
			if head < 0 || head >= len(content) {
				t.Fatalf("cut at %d of %d bytes", head, len(content))
			}
			grants := w.passwordGrants()
			settlingBefore := strings.Count(w.agentLog(), "msg=config_settling")
			truncated := time.Now()
			sawWait := false
			saveSlowly(t, w.config, content, head, tc.pause, func(end time.Time) {
				// Tokens are served throughout.
				w.sessionsKept("while the save pauses")
				if !tc.settling {
					return
				}
				// The agent reloads the empty file a debounce after the
				// truncation: it must say that it waits.
				want := "would end the sessions of dev, prod"
				for time.Until(end) > 300*time.Millisecond {
					if strings.Contains(w.agentStatus().ConfigError, want) {
						sawWait = true
						break
					}
					time.Sleep(25 * time.Millisecond)
				}
				if tc.pause >= 3*time.Second && !sawWait {
					t.Errorf("during a pause of %s, status never said the agent waits for the file to settle (%q); config error %q",
						tc.pause, want, w.agentStatus().ConfigError)
				}
				w.sessionsKept("while the agent waits for the file to settle")
			})
			w.waitFor("the config error to clear", reloadWithin, func() bool { return w.agentStatus().ConfigError == "" })
			w.sessionsKept("after the save")
			if tc.third {
				w.waitFor("the added tenant in status", reloadWithin, func() bool { return w.configured("extra") })
				if s := w.status("extra"); s.State != ipc.StateLoginRequired || s.BaseURL != extra.URL() {
					t.Errorf("added tenant: %s at %s; want login_required at %s", s.State, s.BaseURL, extra.URL())
				}
			}
			if tc.settling {
				if n := strings.Count(w.agentLog(), "msg=config_settling"); n <= settlingBefore {
					t.Errorf("the agent's log does not say it waited for the file to settle (config_settling):\n%s", w.agentLog())
				}
				t.Logf("status said the agent waits for the file to settle during the pause: %v", sawWait)
			}
			// Past the settle period of the truncated file: still kept.
			time.Sleep(time.Until(truncated.Add(settlePeriod + time.Second)))
			w.sessionsKept("past the settle period")
			if st := w.agentStatus(); st.ConfigError != "" {
				t.Errorf("config error past the settle period: %q", st.ConfigError)
			}
			if n := w.passwordGrants() - grants; n != 0 {
				t.Errorf("%d password grants during the save; want none: the sessions were kept", n)
			}
		})
	}

	// The honest counterpart: a file emptied on purpose and left so logs
	// every tenant out once it has settled, and says so meanwhile.
	t.Run("emptied and left", func(t *testing.T) {
		t.Parallel()
		w := newTwoTenants(t)
		emptied := time.Now()
		w.writeConfig("")
		w.waitFor("status to say the agent waits", reloadWithin, func() bool {
			return strings.Contains(w.agentStatus().ConfigError, "would end the sessions of dev, prod")
		})
		msg := w.agentStatus().ConfigError
		if !strings.Contains(msg, "once it has stayed unchanged for 5s") {
			t.Errorf("config error while the file settles = %q; want it to say how long", msg)
		}
		if st := w.mustToken("", "status").stdout; !strings.Contains(st, "would end the sessions of dev, prod") {
			t.Errorf("tapis-token status does not say the agent waits for the file to settle:\n%s", st)
		}
		// A login meanwhile would go by the config in force, not the file.
		if r := w.token("secret\n", "login", "dev", "--password-stdin"); r.code != 1 ||
			!strings.Contains(r.stderr, "the config file is not in force") || !strings.Contains(r.stderr, "would end the sessions of dev, prod") {
			t.Errorf("login while the emptied file settles: exit %d, stderr %q; want 1, the file not in force and why", r.code, r.stderr)
		}
		// Just before the settle period ends, the sessions are still there.
		time.Sleep(time.Until(emptied.Add(settlePeriod - time.Second)))
		if time.Since(emptied) < settlePeriod-200*time.Millisecond {
			w.sessionsKept("before the settle period ended")
		}
		w.waitFor("the tenants to leave status", settlePeriod+5*time.Second, func() bool {
			return !w.configured("dev") && !w.configured("prod")
		})
		took := time.Since(emptied)
		t.Logf("emptied config put in force %s after the file was emptied (settle period %s)", took.Round(time.Millisecond), settlePeriod)
		if took < settlePeriod {
			t.Errorf("tenants removed %s after the file was emptied; want after the settle period of %s", took, settlePeriod)
		}
		if msg := w.agentStatus().ConfigError; msg != "" {
			t.Errorf("config error once the empty file is in force: %q", msg)
		}
		if !strings.Contains(w.agentLog(), `msg=reload reason="config file settled"`) {
			t.Errorf("the agent's log does not say the settled file was reloaded:\n%s", w.agentLog())
		}
		// The sessions are gone: the tenants are unknown now, and naming
		// one again in the file needs a new login.
		if r := w.token("", "dev"); r.code != 4 {
			t.Errorf("token of dev once the empty config is in force: exit %d, stderr %q; want 4 (login required)", r.code, r.stderr)
		}
		w.writeConfig(w.content)
		w.waitFor("dev back in status", reloadWithin, func() bool { return w.configured("dev") })
		if s := w.status("dev"); s.State != ipc.StateLoginRequired {
			t.Errorf("dev named again after the empty config: %s; want login_required", s.State)
		}
	})
}

// healWithin is how soon after upstream comes back a caller that needs a
// token must get one.
const healWithin = 2 * time.Second

// TestOutageHealsQuickly: after an outage of the token endpoint long
// enough that the refresh backoff has grown well past seconds, a caller
// that needs a token (the current one expired, or short of its
// --min-valid) gets one within 2 s of upstream coming back, not when the
// backoff timer fires. The callers asking during the outage never cause
// more than one refresh attempt a second, one at a time. With no caller,
// the backoff timer still refreshes.
func TestOutageHealsQuickly(t *testing.T) {
	// Not t.Parallel: the 2 s bound is measured on the wall clock, and
	// the tests that run beside parallel ones share two CPUs.
	cases := []struct {
		name     string
		ttl      time.Duration // of access tokens
		minValid time.Duration // what callers ask; 0: the default
		// asking: the callers go on asking through the heal; otherwise
		// they stop before it and the first caller after it measures.
		asking bool
	}{
		{name: "expired token", ttl: 4 * time.Second},
		{name: "token short of min_valid, callers asking through the heal", ttl: time.Minute, minValid: 55 * time.Second, asking: true},
	}
	var figures []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			figures = append(figures, fmt.Sprintf("%s: %s", tc.name, outageHeals(t, tc.ttl, tc.minValid, tc.asking)))
		})
	}
	t.Run("no caller", func(t *testing.T) {
		e := newEnv(t, tapistest.Config{AccessTTL: 4 * time.Second})
		e.startAgent()
		e.login()
		e.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: 500})
		// The proactive refresh fails, and its retries back off. (The log
		// says a repeated warning once a minute: count upstream.)
		e.waitFor("three failed refreshes", 30*time.Second, func() bool {
			return e.fake.GrantCalls("refresh_token") >= 3
		})
		st := e.status("dev")
		healed := time.Now()
		e.fake.ClearFaults()
		// Nobody asks: the backoff timer retries.
		wait := 10 * time.Second
		if st.NextRefresh != nil {
			wait += time.Until(*st.NextRefresh)
		}
		e.waitFor("the retry by the backoff timer", wait, func() bool {
			s := e.status("dev")
			return s.State == ipc.StateReady && s.RefreshCount >= 1
		})
		figures = append(figures, fmt.Sprintf("no caller: refreshed by the backoff timer %s after the heal", time.Since(healed).Round(time.Millisecond)))
	})
	for _, f := range figures {
		t.Log(f)
	}
}

// outageHeals runs one outage of the token endpoint against an agent
// whose tokens live ttl, with ten callers asking for minValid (0: the
// default) during it, and returns its figures.
func outageHeals(t *testing.T, ttl, minValid time.Duration, asking bool) string {
	e := newEnv(t, tapistest.Config{AccessTTL: ttl})
	e.startAgent()
	e.login()
	first := e.mustToken("", "dev").stdout
	args := []string{"dev"}
	if minValid > 0 {
		args = append(args, "--min-valid", minValid.String())
		e.waitRemainingBelow(minValid)
	}

	// The outage: every refresh grant fails with Flask's HTML 500 page.
	e.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: 500})
	outage := time.Now()
	grants := e.fake.GrantCalls("refresh_token")

	// Ten callers ask over the socket every 50 ms. What they are served
	// must satisfy them; mostly they get upstream_unavailable.
	var mu sync.Mutex
	var served, failed int
	var problems []string
	var firstAfterHeal time.Time // the first token a caller got after the heal
	var healed time.Time         // set under mu when upstream comes back
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() {
			c := e.client()
			for {
				select {
				case <-stop:
					return
				case <-time.After(50 * time.Millisecond):
				}
				asked := minValid
				if asked == 0 {
					asked = -1 // the default
				}
				tr, err := c.Token(context.Background(), "dev", asked)
				now := time.Now()
				mu.Lock()
				if err != nil {
					failed++
				} else {
					served++
					if msg := servedCheck(tr, max(minValid, 0), now); msg != "" {
						problems = append(problems, msg)
					}
					if !healed.IsZero() && firstAfterHeal.IsZero() && tr.AccessToken != first {
						firstAfterHeal = now
					}
				}
				mu.Unlock()
			}
		})
	}
	stopCallers := func() {
		select {
		case <-stop:
		default:
			close(stop)
			wg.Wait()
		}
	}
	defer stopCallers()

	// The callers cut the backoff short, one attempt a second at most, so
	// attempts pile up and the backoff's ceiling grows fast.
	// (The log says a repeated warning once a minute: count upstream.)
	e.waitFor("six failed refreshes and 8s of callers", 30*time.Second, func() bool {
		return e.fake.GrantCalls("refresh_token")-grants >= 6 && time.Since(outage) >= 8*time.Second
	})
	if !asking {
		stopCallers()
	}
	// The backoff drawn after a failure is random below its ceiling: wait
	// until the retry the agent schedules is at least 8 s away, letting
	// retries that come sooner fail too.
	var backoff time.Duration
	e.waitFor("a retry scheduled 8s or more away", 90*time.Second, func() bool {
		s := e.status("dev")
		// An expired token's state says so, before that it is retrying.
		if (s.State != ipc.StateRetrying && s.State != ipc.StateExpired) || s.LastError == "" || s.NextRefresh == nil {
			return false
		}
		backoff = time.Until(*s.NextRefresh)
		return backoff >= 8*time.Second
	})
	elapsed := time.Since(outage)
	attempts := e.fake.GrantCalls("refresh_token") - grants
	st := e.status("dev")
	if minValid == 0 && st.State != ipc.StateExpired {
		t.Fatalf("state before the heal = %s; want expired", st.State)
	}
	switch left := time.Until(*st.AccessExpiresAt); {
	case minValid == 0 && left > 0:
		t.Fatalf("the token still has %s left before the heal; want it expired", left)
	case minValid > 0 && left >= minValid:
		t.Fatalf("the token has %s left before the heal; want less than the %s asked", left, minValid)
	}
	// No storm: one attempt in flight at a time, and callers make at most
	// one a second (elapsed+1), however many ask. The backoff timer's own
	// retries come besides, sooner than the callers' only while its
	// ceiling is a few seconds: about two, and hardly ever five.
	if most := int(elapsed/time.Second) + 1 + 5; attempts > most {
		t.Errorf("%d refresh grants in the %s of the outage with ten callers asking; want at most %d (one a second, and the backoff timer's first retries)", attempts, elapsed.Round(time.Millisecond), most)
	}
	if n := e.fake.MaxInFlight(tapistest.RouteTokens); n > 1 {
		t.Errorf("%d token requests in flight at once; want one at a time", n)
	}

	// The heal, measured from just before the fake answers again.
	mu.Lock()
	healed = time.Now()
	e.fake.ClearFaults()
	mu.Unlock()
	// One caller, asking once: it must get the token, not an error,
	// though the last failed attempt may be a moment old.
	r := e.token("", args...)
	took := time.Since(healed)
	if r.code != 0 {
		t.Fatalf("tapis-token right after the heal: exit %d after %s, stderr %q; want a token\nagent log:\n%s", r.code, took, r.stderr, e.agentLog())
	}
	if took > healWithin {
		t.Errorf("a caller needing a token got it %s after upstream came back; want within %s (the backoff timer was %s away)", took, healWithin, backoff.Round(time.Millisecond))
	}
	tok := strings.TrimSpace(r.stdout)
	if tok == first {
		t.Errorf("the token served after the heal is the one from before the outage")
	}
	if c, err := jwt.Decode(tok); err != nil {
		t.Errorf("token after the heal: %v", err)
	} else if exp, _ := c.Expiry(); time.Until(exp) < minValid-time.Second || !time.Now().Before(exp) {
		t.Errorf("token after the heal expires at %s; want valid for %s", exp, minValid)
	}
	var callersTook time.Duration
	if asking {
		e.waitFor("a caller's token after the heal", healWithin+backoff, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return !firstAfterHeal.IsZero()
		})
		mu.Lock()
		callersTook = firstAfterHeal.Sub(healed)
		mu.Unlock()
		if callersTook > healWithin {
			t.Errorf("the callers asking through the heal got a token %s after it; want within %s", callersTook, healWithin)
		}
	}
	stopCallers()
	if len(problems) > 0 {
		t.Errorf("%d tokens served that did not satisfy their caller, first: %s", len(problems), problems[0])
	}
	fig := fmt.Sprintf("outage %s, %d refresh grants during it (%d callers' answers served, %d failed), retry timer %s away at the heal; tapis-token got a token %s after the heal",
		elapsed.Round(time.Millisecond), attempts, served, failed, backoff.Round(time.Millisecond), took.Round(time.Millisecond))
	if asking {
		fig += fmt.Sprintf(", the asking callers %s after it", callersTook.Round(time.Millisecond))
	}
	return fig
}
