package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapis-agent/tapis-agent/bench"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/ipc/ipcclient"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
	"golang.org/x/sys/unix"
)

// startup times tapis-token with a cached token against a hello-world Go
// binary and /bin/true, rotating the order every round.
//
// The binaries are first dropped from the page cache and started once,
// so that the kernel caches each as it caches any binary read from disk.
// Left as written, the linker's output and a copied file are cached
// differently, and exec maps them at speeds up to a tenth apart: two
// start-up times compare only between files cached alike.
func startup(w *world, p params) ([]bench.Row, error) {
	type prog struct {
		name string
		argv []string
		s    []time.Duration
	}
	progs := []*prog{
		{name: "tapis-token", argv: []string{w.tokenBin, "dev"}},
		{name: "hello", argv: []string{w.hello}},
		{name: "true", argv: []string{"/bin/true"}},
	}
	run := func(pr *prog) (time.Duration, error) {
		cmd := exec.Command(pr.argv[0], pr.argv[1:]...)
		cmd.Env = w.env
		cmd.Stdout = io.Discard
		start := time.Now()
		if err := cmd.Run(); err != nil {
			return 0, fmt.Errorf("running %s: %w", pr.name, err)
		}
		return time.Since(start), nil
	}
	for _, pr := range progs {
		if err := evict(pr.argv[0]); err != nil {
			return nil, err
		}
		if _, err := run(pr); err != nil {
			return nil, err
		}
	}
	for i := range p.startRounds {
		for j := range progs {
			pr := progs[(i+j)%len(progs)]
			d, err := run(pr)
			if err != nil {
				return nil, err
			}
			pr.s = append(pr.s, d)
		}
	}
	tok, hello, tru := bench.Durations(progs[0].s), bench.Durations(progs[1].s), bench.Durations(progs[2].s)
	what := fmt.Sprintf("`tapis-token` with a cached token, fork to exit (%d runs)", p.startRounds)
	return []bench.Row{
		{What: what, Measured: bench.MedianRange(tok), Baseline: "hello-world Go binary " + bench.MedianRange(hello), Ratio: bench.Ratio(tok.Median(), hello.Median())},
		{What: what, Measured: bench.MedianRange(tok), Baseline: "`/bin/true` " + bench.MedianRange(tru), Ratio: bench.Ratio(tok.Median(), tru.Median())},
	}, nil
}

// evict drops the file at path from the page cache, once its pages are on
// disk.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return fmt.Errorf("evicting %s: %w", path, err)
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("evicting %s: %w", path, err)
	}
	return nil
}

// caller makes one token request and reports its error.
type caller func() error

// connPerRequest calls GET /v1/token on a new connection each time, as
// tapis-token and the Python client do.
func connPerRequest(sock string) caller {
	c := &ipcclient.Client{Path: sock, Timeout: 10 * time.Second}
	return func() error {
		tr, err := c.Token(context.Background(), "dev", time.Minute)
		if err == nil && tr.AccessToken == "" {
			err = errors.New("empty token")
		}
		return err
	}
}

// keepAlive calls GET /v1/token over reused connections. Call the
// returned func after each round: idle kept-alive connections hold slots of
// the agent's connection limit.
func keepAlive(sock string, clients int) (caller, func()) {
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		MaxIdleConnsPerHost: clients,
		MaxConnsPerHost:     clients,
	}}
	return func() error {
		resp, err := hc.Get("http://tapis-agent" + ipc.PathToken + "?tenant=dev&min_valid=60")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		var tr ipc.TokenResponse
		if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}, hc.CloseIdleConnections
}

// load runs clients goroutines calling f for d and returns the rate and
// every call's latency.
func load(f caller, clients int, d time.Duration) (float64, []time.Duration, error) {
	var (
		mu   sync.Mutex
		lats []time.Duration
		ferr atomic.Value
		wg   sync.WaitGroup
	)
	start := time.Now()
	end := start.Add(d)
	for range clients {
		wg.Go(func() {
			var mine []time.Duration
			for time.Now().Before(end) {
				t0 := time.Now()
				if err := f(); err != nil {
					ferr.CompareAndSwap(nil, err)
					return
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lats = append(lats, mine...)
			mu.Unlock()
		})
	}
	wg.Wait()
	if err, _ := ferr.Load().(error); err != nil {
		return 0, nil, err
	}
	return float64(len(lats)) / time.Since(start).Seconds(), lats, nil
}

// throughput compares the agent's token answers with a minimal net/http
// handler on a Unix socket.
func throughput(w *world, p params) ([]bench.Row, error) {
	tr, err := w.agent.client().Token(context.Background(), "dev", time.Minute)
	if err != nil {
		return nil, err
	}
	minSock, stop, err := w.startMinHTTP(len(tr.AccessToken))
	if err != nil {
		return nil, err
	}
	defer stop()
	var rows []bench.Row
	for _, mode := range []string{"conn/request", "keep-alive"} {
		for _, n := range []int{16, 64} {
			mk := func(sock string) (caller, func()) {
				if mode == "keep-alive" {
					return keepAlive(sock, n)
				}
				return connPerRequest(sock), func() {}
			}
			agentCall, agentDone := mk(w.agent.sock)
			baseCall, baseDone := mk(minSock)
			var aRate, bRate bench.Sample
			var aLat, bLat []time.Duration
			for range p.loadRounds {
				r, l, err := load(agentCall, n, p.loadTime)
				agentDone()
				if err != nil {
					return nil, fmt.Errorf("agent, %s, %d clients: %w", mode, n, err)
				}
				aRate, aLat = append(aRate, r), append(aLat, l...)
				r, l, err = load(baseCall, n, p.loadTime)
				baseDone()
				if err != nil {
					return nil, fmt.Errorf("baseline, %s, %d clients: %w", mode, n, err)
				}
				bRate, bLat = append(bRate, r), append(bLat, l...)
			}
			al, bl := bench.Durations(aLat), bench.Durations(bLat)
			rows = append(rows, bench.Row{
				What:     fmt.Sprintf("token answers, %s, %d clients", mode, n),
				Measured: fmt.Sprintf("%s, p50 %s, p99 %s", bench.RateRange(aRate), bench.Seconds(al.Median()), bench.Seconds(al.Quantile(0.99))),
				Baseline: fmt.Sprintf("minimal net/http %s, p50 %s, p99 %s", bench.RateRange(bRate), bench.Seconds(bl.Median()), bench.Seconds(bl.Quantile(0.99))),
				Ratio:    bench.Ratio(aRate.Median(), bRate.Median()),
			})
		}
	}
	return rows, nil
}

// forceAll waits until the token of every tenant has less than its
// lifetime left by at least two seconds, then has n callers per tenant ask
// for min_valid = lifetime − 2 s at once, which only a refresh satisfies.
func forceAll(c *ipcclient.Client, tenants []string, callers int) ([]time.Duration, error) {
	time.Sleep(2100 * time.Millisecond) // expiries are whole seconds: let two pass
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lats []time.Duration
		ferr atomic.Value
	)
	gate := make(chan struct{})
	for _, t := range tenants {
		for range callers {
			wg.Go(func() {
				<-gate
				t0 := time.Now()
				tr, err := c.Token(context.Background(), t, time.Hour-2*time.Second)
				if err == nil && time.Until(tr.ExpiresAt) < time.Hour-3*time.Second {
					err = fmt.Errorf("%s: token valid for %s", t, time.Until(tr.ExpiresAt))
				}
				if err != nil {
					ferr.CompareAndSwap(nil, err)
					return
				}
				mu.Lock()
				lats = append(lats, time.Since(t0))
				mu.Unlock()
			})
		}
	}
	close(gate)
	wg.Wait()
	if err, _ := ferr.Load().(error); err != nil {
		return nil, err
	}
	return lats, nil
}

// storm has 1000 callers force a refresh at once and counts upstream
// refreshes; the baseline is one caller forcing one alone.
func storm(w *world, p params) ([]bench.Row, error) {
	const callers = 1000
	c := w.agent.client()
	var lone, stormLat bench.Sample
	var calls []int
	for range 2 {
		w.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Delay: 200 * time.Millisecond, Times: 1})
		l, err := forceAll(c, []string{"dev"}, 1)
		if err != nil {
			return nil, err
		}
		lone = append(lone, bench.Durations(l)...)
		before := w.fake.GrantCalls("refresh_token")
		w.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Delay: 200 * time.Millisecond, Times: 1})
		l, err = forceAll(c, []string{"dev"}, callers)
		if err != nil {
			return nil, err
		}
		calls = append(calls, w.fake.GrantCalls("refresh_token")-before)
		stormLat = append(stormLat, bench.Durations(l)...)
	}
	return []bench.Row{
		{What: fmt.Sprintf("refresh storm: %d concurrent callers forcing a refresh → upstream refresh calls", callers),
			Measured: fmt.Sprintf("%v (in 2 storms)", calls), Baseline: fmt.Sprintf("%d callers", callers),
			Ratio: bench.Ratio(float64(calls[0]), callers)},
		{What: fmt.Sprintf("refresh storm: latency of each of the %d callers (200 ms upstream)", callers),
			Measured: fmt.Sprintf("p50 %s, p99 %s", bench.Seconds(stormLat.Median()), bench.Seconds(stormLat.Quantile(0.99))),
			Baseline: "one caller alone " + bench.MedianRange(lone), Ratio: bench.Ratio(stormLat.Quantile(0.99), lone.Median()) + " (p99)"},
	}, nil
}

// tenants measures an agent holding many tenants, all served by one fake.
func tenants(w *world, p params) ([]bench.Row, error) {
	fake, err := tapistest.NewServer(tapistest.Config{TenantID: "dev", Users: map[string]string{"jdoe": "secret"}, AccessTTL: time.Hour}, nil)
	if err != nil {
		return nil, err
	}
	defer fake.Close()
	var cfg strings.Builder
	names := make([]string, p.tenants)
	for i := range names {
		names[i] = fmt.Sprintf("t%04d", i)
		fmt.Fprintf(&cfg, "[tenants.%s]\nbase_url = %q\nusername = \"jdoe\"\n\n", names[i], fake.URL())
	}
	a, err := startAgent(w.agentBin, filepath.Join(w.dir, "many"), cfg.String())
	if err != nil {
		return nil, err
	}
	defer a.stop()
	time.Sleep(500 * time.Millisecond) // let the start-up garbage settle
	idle, err := a.rss()
	if err != nil {
		return nil, err
	}
	// Four logins at a time: login grants must not mask the refresh
	// concurrency measured below.
	c := a.client()
	work := make(chan string)
	errc := make(chan error, 4)
	start := time.Now()
	for range 4 {
		go func() {
			for n := range work {
				if _, err := c.Login(context.Background(), &ipc.LoginRequest{Tenant: n, Username: "jdoe", Password: "secret"}); err != nil {
					errc <- fmt.Errorf("login %s: %w", n, err)
					for range work {
					}
					return
				}
			}
			errc <- nil
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	for range 4 {
		if err := <-errc; err != nil {
			return nil, err
		}
	}
	loginTime := time.Since(start)
	time.Sleep(500 * time.Millisecond)
	full, err := a.rss()
	if err != nil {
		return nil, err
	}
	loginPeak := fake.MaxInFlight(tapistest.RouteTokens)
	fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Delay: 40 * time.Millisecond})
	before := fake.GrantCalls("refresh_token")
	t0 := time.Now()
	if _, err := forceAll(c, names, 1); err != nil {
		return nil, err
	}
	allTime := time.Since(t0) - 2100*time.Millisecond
	refreshed := fake.GrantCalls("refresh_token") - before
	peak := fake.MaxInFlight(tapistest.RouteTokens)
	n := float64(p.tenants)
	mb := func(v float64) string { return fmt.Sprintf("%.1f MiB", v/(1<<20)) }
	return []bench.Row{
		{What: fmt.Sprintf("agent RSS, %d tenants, all logged in (logins took %s)", p.tenants, loginTime.Round(time.Millisecond)),
			Measured: fmt.Sprintf("%s (%.1f KiB per session)", mb(full), (full-idle)/n/1024),
			Baseline: fmt.Sprintf("same agent idle, %d tenants configured, none logged in: %s", p.tenants, mb(idle)),
			Ratio:    bench.Ratio(full, idle)},
		{What: fmt.Sprintf("%d tenants needing a refresh at once: most upstream refresh calls in flight", p.tenants),
			Measured: fmt.Sprintf("%d (%d refreshes in %s; login phase peak %d with 4 logins at a time)", peak, refreshed, allTime.Round(time.Millisecond), loginPeak),
			Baseline: fmt.Sprintf("%d tenants due", p.tenants),
			Ratio:    bench.Ratio(float64(peak), n)},
	}, nil
}

const pyScript = `
import json, sys, time
sys.path.insert(0, sys.argv[1])
import tapis_agent
path, rounds, calls = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
def via_agent():
    return tapis_agent.token("dev")
def via_file():
    with open(path) as f:
        return json.load(f)["access_token"]
assert via_agent() == via_file()
out = {"agent": [], "file": []}
for r in range(rounds):
    for name, f in (("agent", via_agent), ("file", via_file)) if r % 2 == 0 else (("file", via_file), ("agent", via_agent)):
        t0 = time.perf_counter()
        for _ in range(calls):
            f()
        out[name].append((time.perf_counter() - t0) / calls)
print(json.dumps(out))
`

// python compares the Python client's cost per call with reading a token
// file, inside one interpreter.
func python(w *world, p params) ([]bench.Row, error) {
	mod, _ := filepath.Abs("contrib/python")
	if _, err := os.Stat(filepath.Join(mod, "tapis_agent.py")); err != nil {
		return []bench.Row{{What: "Python client per call", Measured: "not measured: contrib/python/tapis_agent.py is missing", Baseline: "–", Ratio: "–"}}, nil
	}
	tr, err := w.agent.client().Token(context.Background(), "dev", time.Minute)
	if err != nil {
		return nil, err
	}
	file := filepath.Join(w.dir, "tokens.json")
	b, _ := json.Marshal(map[string]string{"access_token": tr.AccessToken, "expires_at": tr.ExpiresAt.Format(time.RFC3339)})
	if err := os.WriteFile(file, b, 0o600); err != nil {
		return nil, err
	}
	cmd := exec.Command("/usr/bin/python3", "-c", pyScript, mod, file, fmt.Sprint(p.pyRounds), fmt.Sprint(p.pyCalls))
	cmd.Env = w.env
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("python: %w", err)
	}
	var res struct{ Agent, File bench.Sample }
	if err := json.Unmarshal(out, &res); err != nil {
		return nil, fmt.Errorf("python output %q: %w", out, err)
	}
	return []bench.Row{{What: "Python client `tapis_agent.token()` per call, one interpreter, connection per call",
		Measured: bench.MedianRange(res.Agent), Baseline: "`json.load` of a token file " + bench.MedianRange(res.File),
		Ratio: bench.Ratio(res.Agent.Median(), res.File.Median())}}, nil
}
