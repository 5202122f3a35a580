package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/tapis-agent/tapis-agent/bench"
	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

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
	a, err := startAgent(w.cur.agentBin, filepath.Join(w.dir, "many"), cfg.String())
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
	if _, err := forceAll(frameCall(a.sock), names, 1); err != nil {
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
