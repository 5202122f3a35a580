// Package bench holds the statistics and the table of tapis-agent's
// benchmarks; the driver that measures is bench/cmd/benchtable (make
// bench). Every figure is compared with a baseline measured in the same
// run, with the measurements of the two interleaved, so that noise from a
// shared machine hits both alike.
package bench

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// Sample is a set of measurements of one quantity. The zero value is an
// empty sample; it is not safe for concurrent use.
type Sample []float64

// Median returns the median, or NaN for an empty sample.
func (s Sample) Median() float64 { return s.Quantile(0.5) }

// Quantile returns the q-quantile (0 ≤ q ≤ 1) by linear interpolation
// between order statistics, or NaN for an empty sample.
func (s Sample) Quantile(q float64) float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	c := slices.Clone(s)
	slices.Sort(c)
	pos := q * float64(len(c)-1)
	lo := int(math.Floor(pos))
	hi := int(math.Ceil(pos))
	return c[lo] + (c[hi]-c[lo])*(pos-float64(lo))
}

// Min returns the smallest value, or NaN for an empty sample.
func (s Sample) Min() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Min(s)
}

// Max returns the largest value, or NaN for an empty sample.
func (s Sample) Max() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	return slices.Max(s)
}

// Durations converts durations to a Sample of seconds.
func Durations(ds []time.Duration) Sample {
	s := make(Sample, len(ds))
	for i, d := range ds {
		s[i] = d.Seconds()
	}
	return s
}

// Ratio returns a / b formatted as "×1.62", or "–" when b is zero or
// either is NaN.
func Ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	r := a / b
	switch {
	case r >= 100:
		return fmt.Sprintf("×%.0f", r)
	case r >= 10:
		return fmt.Sprintf("×%.1f", r)
	case r >= 0.01:
		return fmt.Sprintf("×%.2f", r)
	}
	return fmt.Sprintf("×%.4f", r)
}

// Seconds formats a duration given in seconds with a unit that keeps three
// significant digits: "1.62 ms", "812 µs".
func Seconds(v float64) string {
	switch {
	case math.IsNaN(v):
		return "–"
	case v >= 1:
		return fmt.Sprintf("%.3g s", v)
	case v >= 1e-3:
		return fmt.Sprintf("%.3g ms", v*1e3)
	}
	return fmt.Sprintf("%.3g µs", v*1e6)
}

// MedianRange formats a sample of seconds as "median (min–max)".
func MedianRange(s Sample) string {
	return fmt.Sprintf("%s (%s–%s)", Seconds(s.Median()), Seconds(s.Min()), Seconds(s.Max()))
}

// RateRange formats a sample of rates as "median/s (min–max)".
func RateRange(s Sample) string {
	return fmt.Sprintf("%s/s (%s–%s)", count(s.Median()), count(s.Min()), count(s.Max()))
}

// count formats a non-negative number with a thin grouping of thousands.
func count(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	n := int64(math.Round(v))
	s := fmt.Sprint(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Row is one line of the table: what was measured, the figure, the
// baseline it is compared with and their ratio.
type Row struct {
	What, Measured, Baseline, Ratio string
}

// Table renders rows as a Markdown table.
func Table(rows []Row) string {
	var b strings.Builder
	b.WriteString("| what | measured | baseline (same run) | ratio |\n|---|---|---|---|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", cell(r.What), cell(r.Measured), cell(r.Baseline), cell(r.Ratio))
	}
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
