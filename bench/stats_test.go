package bench

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestQuantiles(t *testing.T) {
	cases := []struct {
		name             string
		s                Sample
		med, p99, lo, hi float64
	}{
		{"one", Sample{3}, 3, 3, 3, 3},
		{"odd", Sample{5, 1, 3}, 3, 4.96, 1, 5},
		{"even", Sample{4, 1, 3, 2}, 2.5, 3.97, 1, 4},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.Median(); math.Abs(got-tc.med) > 1e-9 {
				t.Errorf("Median() = %v; want %v", got, tc.med)
			}
			if got := tc.s.Quantile(0.99); math.Abs(got-tc.p99) > 1e-9 {
				t.Errorf("Quantile(0.99) = %v; want %v", got, tc.p99)
			}
			if tc.s.Min() != tc.lo || tc.s.Max() != tc.hi {
				t.Errorf("Min, Max = %v, %v; want %v, %v", tc.s.Min(), tc.s.Max(), tc.lo, tc.hi)
			}
		})
	}
	if !math.IsNaN(Sample{}.Median()) {
		t.Errorf("Median of an empty sample is not NaN")
	}
}

func TestFormatting(t *testing.T) {
	cases := []struct{ got, want string }{
		{Seconds(0.00162), "1.62 ms"},
		{Seconds(812e-6), "812 µs"},
		{Seconds(2.5), "2.5 s"},
		{Seconds(math.NaN()), "–"},
		{Ratio(3, 2), "×1.50"},
		{Ratio(1, 1000), "×0.0010"},
		{Ratio(250, 2), "×125"},
		{Ratio(1, 0), "–"},
		{RateRange(Sample{12000, 9000.4, 15000}), "12,000/s (9,000–15,000)"},
		{MedianRange(Durations([]time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond})), "2 ms (1 ms–3 ms)"},
	}
	for i, tc := range cases {
		if tc.got != tc.want {
			t.Errorf("case %d = %q; want %q", i, tc.got, tc.want)
		}
	}
}

func TestTable(t *testing.T) {
	got := Table([]Row{{"a|b", "1", "2", "×0.50"}})
	want := "| what | measured | baseline (same run) | ratio |\n|---|---|---|---|\n| a\\|b | 1 | 2 | ×0.50 |\n"
	if got != want {
		t.Errorf("Table = %q; want %q", got, want)
	}
	if !strings.HasPrefix(got, "| what") {
		t.Error("no header")
	}
}
