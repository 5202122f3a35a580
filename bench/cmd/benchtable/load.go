package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tapis-agent/tapis-agent/bench"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

// loadCase is one way of asking one agent, measured under load.
type loadCase struct {
	call  tokenCall
	done  func() // run after each round; nil for none
	rates bench.Sample
	lats  []time.Duration
}

// measureLoad runs every case for rounds rounds of length d with clients
// callers each, rotating their order every round so that noise of the
// machine falls on all alike.
func measureLoad(cases []*loadCase, clients, rounds int, d time.Duration) error {
	for i := range rounds {
		for j := range cases {
			c := cases[(i+j)%len(cases)]
			rate, lats, err := load(c.call, clients, d)
			if c.done != nil {
				c.done()
			}
			if err != nil {
				return err
			}
			c.rates, c.lats = append(c.rates, rate), append(c.lats, lats...)
		}
	}
	return nil
}

// load runs clients goroutines asking for tenant dev's token with call for
// d, and returns the rate and every call's latency.
func load(call tokenCall, clients int, d time.Duration) (float64, []time.Duration, error) {
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
				if _, err := call("dev", time.Minute); err != nil {
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

// String formats the case's figures for the table.
func (c *loadCase) String() string {
	l := bench.Durations(c.lats)
	return fmt.Sprintf("%s, p50 %s, p99 %s", bench.RateRange(c.rates), bench.Seconds(l.Median()), bench.Seconds(l.Quantile(0.99)))
}

// throughput measures token answers per second of the agent, with a new
// connection per call over the frame (tapis-token's way) and over HTTP
// (the JSON API's way), and over kept-alive HTTP connections,
// against the agent of the baseline revision over HTTP, its only way.
func throughput(w *world, p params) ([]bench.Row, error) {
	var frameRows, httpRows, keepRows []bench.Row
	for _, n := range []int{1, 4, 16} {
		frame := &loadCase{call: frameCall(w.cur.agent.sock)}
		curHTTP := newHTTPCase(w.cur.agent.sock, n, false)
		curKeep := newHTTPCase(w.cur.agent.sock, n, true)
		var oldHTTP, oldKeep *loadCase
		perConn, keep := []*loadCase{frame, curHTTP}, []*loadCase{curKeep}
		if w.old != nil {
			oldHTTP = newHTTPCase(w.old.agent.sock, n, false)
			oldKeep = newHTTPCase(w.old.agent.sock, n, true)
			perConn, keep = append(perConn, oldHTTP), append(keep, oldKeep)
		}
		if err := measureLoad(perConn, n, p.loadRounds, p.loadTime); err != nil {
			return nil, fmt.Errorf("new connection per call, %d clients: %w", n, err)
		}
		if err := measureLoad(keep, n, p.loadRounds, p.loadTime); err != nil {
			return nil, fmt.Errorf("keep-alive, %d clients: %w", n, err)
		}
		clients := fmt.Sprintf("%d clients", n)
		if n == 1 {
			clients = "1 client"
		}
		frameRows = append(frameRows, w.loadRow("token answers, new connection per call, frame (`tapis-token`'s way), "+clients, frame, oldHTTP, "HTTP, its `tapis-token`'s way"))
		httpRows = append(httpRows, w.loadRow("token answers, new connection per call, HTTP (the JSON API's way), "+clients, curHTTP, oldHTTP, "HTTP"))
		keepRows = append(keepRows, w.loadRow("token answers, kept-alive HTTP connections, "+clients, curKeep, oldKeep, "kept-alive HTTP"))
	}
	return append(append(frameRows, httpRows...), keepRows...), nil
}

// newHTTPCase asks over HTTP, see httpCall.
func newHTTPCase(sock string, clients int, keepAlive bool) *loadCase {
	call, done := httpCall(sock, clients, keepAlive)
	return &loadCase{call: call, done: done}
}

// loadRow compares the current agent's figures cur with those of the
// baseline revision's agent old, asked over how; old is nil when the
// baseline revision is missing.
func (w *world) loadRow(what string, cur, old *loadCase, how string) bench.Row {
	if old == nil {
		return bench.Row{What: what, Measured: cur.String(), Baseline: w.oldAgent() + " not measured: " + w.oldMissing, Ratio: "–"}
	}
	return bench.Row{What: what, Measured: cur.String(), Baseline: fmt.Sprintf("%s, %s: %s", w.oldAgent(), how, old),
		Ratio: bench.Ratio(cur.rates.Median(), old.rates.Median())}
}

// forceAll waits until the token of every tenant has less than its
// lifetime left by at least two seconds, then has n callers per tenant ask
// for min_valid = lifetime − 2 s at once, which only a refresh satisfies.
func forceAll(call tokenCall, tenants []string, callers int) ([]time.Duration, error) {
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
				tr, err := call(t, time.Hour-2*time.Second)
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

// storm has 1000 callers force a refresh at once, each agent asked its
// tapis-token's way, and counts upstream refreshes; the baselines are one
// caller forcing one alone, and the agent of the baseline revision.
func storm(w *world, p params) ([]bench.Row, error) {
	const callers = 1000
	type side struct {
		call  tokenCall
		calls []int
		lats  bench.Sample
	}
	cur := &side{call: frameCall(w.cur.agent.sock)}
	sides := []*side{cur}
	var old *side
	if w.old != nil {
		call, _ := httpCall(w.old.agent.sock, callers, false)
		old = &side{call: call}
		sides = append(sides, old)
	}
	// force has n callers force one refresh, which the fake answers
	// after 200 ms so that every caller arrives while it is in flight.
	force := func(call tokenCall, n int) (int, []time.Duration, error) {
		before := w.fake.GrantCalls("refresh_token")
		w.fake.Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Delay: 200 * time.Millisecond, Times: 1})
		l, err := forceAll(call, []string{"dev"}, n)
		return w.fake.GrantCalls("refresh_token") - before, l, err
	}
	var lone bench.Sample
	for range 2 {
		_, l, err := force(cur.call, 1)
		if err != nil {
			return nil, err
		}
		lone = append(lone, bench.Durations(l)...)
		for _, s := range sides {
			calls, l, err := force(s.call, callers)
			if err != nil {
				return nil, err
			}
			s.calls = append(s.calls, calls)
			s.lats = append(s.lats, bench.Durations(l)...)
		}
	}
	latency := func(s *side) string {
		return fmt.Sprintf("p50 %s, p99 %s", bench.Seconds(s.lats.Median()), bench.Seconds(s.lats.Quantile(0.99)))
	}
	latWhat := fmt.Sprintf("refresh storm: latency of each of the %d callers (200 ms upstream)", callers)
	rows := []bench.Row{
		{What: fmt.Sprintf("refresh storm: %d concurrent callers forcing a refresh → upstream refresh calls", callers),
			Measured: fmt.Sprintf("%v (in 2 storms)", cur.calls), Baseline: fmt.Sprintf("%d callers", callers),
			Ratio: bench.Ratio(float64(cur.calls[0]), callers)},
		{What: latWhat, Measured: latency(cur),
			Baseline: "one caller alone " + bench.MedianRange(lone), Ratio: bench.Ratio(cur.lats.Quantile(0.99), lone.Median()) + " (p99)"},
	}
	if old == nil {
		return append(rows, missingRow(latWhat+", "+w.oldAgent(), w.oldMissing)), nil
	}
	return append(rows, bench.Row{What: latWhat, Measured: latency(cur),
		Baseline: fmt.Sprintf("%s over HTTP: %s; upstream refresh calls %v", w.oldAgent(), latency(old), old.calls),
		Ratio:    bench.Ratio(cur.lats.Quantile(0.99), old.lats.Quantile(0.99)) + " (p99)"}), nil
}
