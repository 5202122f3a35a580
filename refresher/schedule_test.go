package refresher

import (
	"testing"
	"time"
)

func TestRefreshAt(t *testing.T) {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	four := Lifetime{IssuedAt: t0, ExpiresAt: t0.Add(4 * time.Hour)}
	cases := []struct {
		name   string
		l      Lifetime
		now    time.Time
		margin time.Duration
		jitter float64
		rnd    float64
		want   time.Time
	}{
		{"two thirds, no jitter", four, t0, 0, -1, 0.9, t0.Add(160 * time.Minute)},
		{"two thirds, centre of jitter", four, t0, 0, 0.1, 0.5, t0.Add(160 * time.Minute)},
		{"two thirds, earliest", four, t0, 0, 0.1, 0, t0.Add(144 * time.Minute)},
		{"two thirds, latest", four, t0, 0, 0.1, 1, t0.Add(176 * time.Minute)},
		{"two thirds from issue, not from now", four, t0.Add(time.Hour), 0, -1, 0, t0.Add(160 * time.Minute)},
		{"small margin does not delay", four, t0, 30 * time.Minute, -1, 0, t0.Add(160 * time.Minute)},
		{"small margin keeps the jitter, earliest", four, t0, 30 * time.Minute, 0.1, 0, t0.Add(144 * time.Minute)},
		{"small margin keeps the jitter, latest", four, t0, 30 * time.Minute, 0.1, 1, t0.Add(176 * time.Minute)},
		{"margin of a third", four, t0, 80 * time.Minute, -1, 0, t0.Add(160 * time.Minute)},
		{"margin above a third", four, t0, 90 * time.Minute, -1, 0, t0.Add(150 * time.Minute)},
		{"margin above a third, centre of jitter", four, t0, 90 * time.Minute, 0.1, 0.5, t0.Add(145*time.Minute + 30*time.Second)},
		{"large margin brings it forward", four, t0, 2 * time.Hour, -1, 0.5, t0.Add(120 * time.Minute)},
		{"large margin, earliest", four, t0, 2 * time.Hour, 0.1, 1, t0.Add(108 * time.Minute)},
		{"large margin, latest", four, t0, 2 * time.Hour, 0.1, 0, t0.Add(120 * time.Minute)},
		{"large margin on an imported token", Lifetime{ExpiresAt: t0.Add(3 * time.Hour)}, t0, 2 * time.Hour, -1, 0, t0.Add(time.Hour)},
		{"margin longer than lifetime", four, t0, 5 * time.Hour, -1, 0, t0.Add(160 * time.Minute)},
		{"margin equal to lifetime", four, t0, 4 * time.Hour, -1, 0, t0.Add(160 * time.Minute)},
		{"past refresh point", four, t0.Add(3 * time.Hour), 0, 0.1, 0.5, t0.Add(3 * time.Hour)},
		{"expired", four, t0.Add(5 * time.Hour), 0, 0.1, 0.5, t0.Add(5 * time.Hour)},
		{"margin past refresh point", four, t0.Add(220 * time.Minute), 30 * time.Minute, -1, 0, t0.Add(220 * time.Minute)},
		{"unknown issue time counts from now", Lifetime{ExpiresAt: t0.Add(3 * time.Hour)}, t0, 0, -1, 0, t0.Add(2 * time.Hour)},
		{"issue time after expiry counts from now", Lifetime{IssuedAt: t0.Add(9 * time.Hour), ExpiresAt: t0.Add(3 * time.Hour)}, t0, 0, -1, 0, t0.Add(2 * time.Hour)},
		{"no token", Lifetime{}, t0, 0, 0.1, 0.5, t0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := refreshAt(tc.l, tc.now, tc.margin, tc.jitter, tc.rnd)
			if !got.Equal(tc.want) {
				t.Errorf("refreshAt(%v, %v, %v, %v, %v) = %v; want %v", tc.l, tc.now, tc.margin, tc.jitter, tc.rnd, got, tc.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	cases := []struct {
		attempt int
		rnd     float64
		want    time.Duration
	}{
		{1, 0.5, 500 * time.Millisecond},
		{2, 0.5, time.Second},
		{3, 0.5, 2 * time.Second},
		{9, 0.5, 128 * time.Second},
		{10, 0.5, 150 * time.Second}, // 256 s capped at 300 s
		{11, 0.5, 150 * time.Second},
		{1000, 0.5, 150 * time.Second}, // no overflow
		{5, 0, 0},
		{5, 0.999, time.Duration(0.999 * float64(16*time.Second))},
	}
	for _, tc := range cases {
		got := Backoff(tc.attempt, tc.rnd)
		if got != tc.want {
			t.Errorf("Backoff(%d, %v) = %v; want %v", tc.attempt, tc.rnd, got, tc.want)
		}
	}
}

func TestBackoffCapMonotonic(t *testing.T) {
	prev := time.Duration(0)
	for n := 1; n <= 100; n++ {
		c := backoffCap(n)
		if c < prev || c > 5*time.Minute {
			t.Fatalf("backoffCap(%d) = %v after %v; want non-decreasing and at most 5m", n, c, prev)
		}
		prev = c
	}
	if prev != 5*time.Minute {
		t.Errorf("backoffCap(100) = %v; want 5m", prev)
	}
}
