package agent

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tapis-agent/tapis-agent/ipc"
	"github.com/tapis-agent/tapis-agent/tapis/tapistest"
)

func TestTokenSetValidFor(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	hour := &tokenSet{issuedAt: now.Add(-time.Hour), expiresAt: now.Add(time.Hour)}
	// A token that lives 80 s: the default asks half its lifetime, 40 s.
	short := &tokenSet{issuedAt: now.Add(-30 * time.Second), expiresAt: now.Add(50 * time.Second)}
	cases := []struct {
		name     string
		t        *tokenSet
		minValid time.Duration
		want     bool
	}{
		{"asked less than left", hour, 59 * time.Minute, true},
		{"asked exactly what is left", hour, time.Hour, true},
		{"asked more than left", hour, time.Hour + time.Second, false},
		{"default, long-lived token", hour, -1, true},
		{"default, short-lived token", short, -1, true},
		{"asked 60s of a short-lived token", short, DefaultMinValid, false},
		{"default, short-lived token near its end", &tokenSet{issuedAt: now.Add(-50 * time.Second), expiresAt: now.Add(30 * time.Second)}, -1, false},
		{"expired", &tokenSet{issuedAt: now.Add(-time.Hour), expiresAt: now.Add(-time.Second)}, 0, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.t.validFor(now, tc.minValid); got != tc.want {
				t.Errorf("validFor(now, %v) = %v; want %v", tc.minValid, got, tc.want)
			}
		})
	}
	if got := hour.need(-1); got != DefaultMinValid {
		t.Errorf("need(-1) of a 2h token = %v; want %v", got, DefaultMinValid)
	}
	if got := short.need(-1); got != 40*time.Second {
		t.Errorf("need(-1) of an 80s token = %v; want 40s", got)
	}
}

// TestFailedRefreshLogsOnce checks that a failed refresh makes one log
// line, the refresher's, naming the tenant, the failures so far, the
// retry and the error.
func TestFailedRefreshLogsOnce(t *testing.T) {
	w := newWorld(t, "alpha")
	w.login(t, "alpha")
	w.fakes["alpha"].Inject(tapistest.RouteTokens, tapistest.Fault{GrantType: "refresh_token", Status: http.StatusServiceUnavailable, Times: 1})
	w.clock.Advance(time.Hour)
	if _, err := w.a.Token(context.Background(), "alpha", 3*time.Hour+30*time.Minute); code(err) != ipc.CodeUpstreamUnavailable {
		t.Fatalf("refresh against a failing upstream: %v; want %s", err, ipc.CodeUpstreamUnavailable)
	}
	var lines []string
	for l := range strings.Lines(w.log.String()) {
		if strings.Contains(l, "refresh_failed") || strings.Contains(l, "refresh_rejected") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("log lines of the failed refresh = %q; want one", lines)
	}
	for _, attr := range []string{"msg=refresh_failed", "tenant=alpha", "attempts=1", "retry_at=", "err="} {
		if !strings.Contains(lines[0], attr) {
			t.Errorf("log line %q lacks %s", lines[0], attr)
		}
	}
}
