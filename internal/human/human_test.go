package human

import (
	"testing"
	"time"
)

func TestDuration(t *testing.T) {
	const (
		s = time.Second
		m = time.Minute
		h = time.Hour
	)
	cases := []struct {
		d          time.Duration
		near, down string
	}{
		{0, "0s", "0s"},
		{450 * time.Millisecond, "0s", "0s"},
		{959 * time.Millisecond, "1s", "0s"},
		{30*s + 452*time.Millisecond, "30s", "30s"},
		{30*s + 600*time.Millisecond, "31s", "30s"},
		{59*s + 700*time.Millisecond, "1m", "59s"},
		{4*m + 10*s, "4m10s", "4m10s"},
		{48 * m, "48m", "48m"},
		{59*m + 59*s + 700*time.Millisecond, "1h", "59m59s"},
		{3*h + 59*m + 51*s, "4h", "3h59m"},
		{3*h + 12*m + 59*s, "3h13m", "3h12m"},
		{2 * h, "2h", "2h"},
		{47*h + 59*m + 40*s, "2d", "47h59m"},
		{72 * h, "3d", "3d"},
		{300*24*h + 13*h, "301d", "300d"},
		{-90 * s, "1m30s", "1m30s"},
	}
	for _, tc := range cases {
		if got := Duration(tc.d); got != tc.near {
			t.Errorf("Duration(%v) = %q; want %q", tc.d, got, tc.near)
		}
		if got := DurationDown(tc.d); got != tc.down {
			t.Errorf("DurationDown(%v) = %q; want %q", tc.d, got, tc.down)
		}
	}
}

func TestFlag(t *testing.T) {
	cases := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{90 * time.Second, "1m30s"},
		{3*time.Hour + 36*time.Minute + 400*time.Millisecond, "3h36m"},
		{54 * time.Hour, "54h"},
	}
	for _, tc := range cases {
		got := Flag(tc.d)
		if got != tc.want {
			t.Errorf("Flag(%v) = %q; want %q", tc.d, got, tc.want)
		}
		if back, err := time.ParseDuration(got); err != nil || back != tc.d.Truncate(time.Second) {
			t.Errorf("time.ParseDuration(Flag(%v)) = %v, %v", tc.d, back, err)
		}
	}
}
