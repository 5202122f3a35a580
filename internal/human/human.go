// Package human writes durations the way people read them: 4h rather
// than 3h59m51.2s, 30s rather than 30.452s.
package human

import (
	"strconv"
	"time"
)

// Duration renders d rounded to the nearest unit that matters: whole days
// from two days on (3d), minutes from an hour on (3h12m, 4h), seconds
// from a minute on (4m10s, 48m), whole seconds below (30s, and 0s or 1s
// for less than a second). A negative d is rendered as its absolute
// value.
func Duration(d time.Duration) string { return format(d, true) }

// DurationDown is Duration rounded down: what a token valid for 3h59m51s
// still holds is "3h59m", never "4h", which would claim more than there
// is ("only 4h, less than the 4h asked").
func DurationDown(d time.Duration) string { return format(d, false) }

func format(d time.Duration, nearest bool) string {
	if d < 0 {
		d = -d
	}
	cut := func(unit time.Duration) time.Duration {
		if nearest {
			return d.Round(unit)
		}
		return d.Truncate(unit)
	}
	// Round at the unit of d's size, then again at the unit of the
	// rounded size: 59m59.7s rounds to 1h, which is shown in minutes.
	unit := unitOf(d)
	d = cut(unit)
	if u := unitOf(d); u > unit {
		d = cut(u)
	}
	switch {
	case d >= 48*time.Hour:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	case d >= time.Hour:
		return join(int64(d/time.Hour), "h", int64(d%time.Hour/time.Minute), "m")
	case d >= time.Minute:
		return join(int64(d/time.Minute), "m", int64(d%time.Minute/time.Second), "s")
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// unitOf is the unit a duration of d's size is shown in.
func unitOf(d time.Duration) time.Duration {
	switch {
	case d >= 48*time.Hour:
		return 24 * time.Hour
	case d >= time.Hour:
		return time.Minute
	}
	return time.Second
}

// join writes a and its unit, and b and its unit unless b is 0: 3h12m, 2h.
func join(a int64, ua string, b int64, ub string) string {
	s := strconv.FormatInt(a, 10) + ua
	if b != 0 {
		s += strconv.FormatInt(b, 10) + ub
	}
	return s
}

// Flag renders d, rounded down to the second, as a value for a flag such
// as --min-valid that time.ParseDuration reads: 54h, 3h36m, 90s → 1m30s.
func Flag(d time.Duration) string {
	d = d.Truncate(time.Second)
	if d <= 0 {
		return "0s"
	}
	h, m, s := int64(d/time.Hour), int64(d%time.Hour/time.Minute), int64(d%time.Minute/time.Second)
	out := ""
	if h > 0 {
		out += strconv.FormatInt(h, 10) + "h"
	}
	if m > 0 {
		out += strconv.FormatInt(m, 10) + "m"
	}
	if s > 0 {
		out += strconv.FormatInt(s, 10) + "s"
	}
	return out
}
