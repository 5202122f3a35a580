package agent

import (
	"testing"
	"time"
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
