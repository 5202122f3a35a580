package refresher

import "time"

// refreshAt returns the wall-clock time at which the token described by l
// should be refreshed, given the current time now and a uniform random
// number rnd in [0, 1).
//
// The refresh lands at IssuedAt + 2/3 of the lifetime, jittered by ±jitter
// of that delay (Vault Agent's rule: spread the load and keep a third of the
// lifetime to ride out an upstream outage). A margin can only bring it
// forward: when ExpiresAt − margin comes earlier, the refresh lands there
// instead, moved earlier still by up to jitter·margin, so at least the
// margin always remains and refreshes stay spread. A small margin therefore
// changes nothing; a margin that does not fit in the lifetime is ignored
// rather than refreshing continuously. A token past its refresh point
// refreshes at once: the result is never before now.
//
// A zero IssuedAt (an imported token whose issue time is unknown) counts as
// issued at now.
func refreshAt(l Lifetime, now time.Time, margin time.Duration, jitter, rnd float64) time.Time {
	if l.ExpiresAt.IsZero() {
		return now
	}
	issued := l.IssuedAt
	if issued.IsZero() || !issued.Before(l.ExpiresAt) {
		issued = now
	}
	lifetime := l.ExpiresAt.Sub(issued)
	at := issued.Add(jittered(lifetime*2/3, jitter, rnd))
	if margin > 0 && margin < lifetime {
		early := margin
		if jitter > 0 {
			early += time.Duration(float64(margin) * jitter * rnd)
		}
		if m := l.ExpiresAt.Add(-early); m.Before(at) {
			at = m
		}
	}
	if at.Before(now) {
		return now
	}
	return at
}

// jittered spreads d uniformly over d·(1 ± jitter), using rnd in [0, 1).
func jittered(d time.Duration, jitter, rnd float64) time.Duration {
	if jitter <= 0 {
		return d
	}
	return d + time.Duration(float64(d)*jitter*(2*rnd-1))
}

// Bounds of the backoff after transient failures.
const (
	minBackoff = time.Second
	maxBackoff = 5 * time.Minute
)

// backoffCap returns the upper bound of the delay before retry number
// attempt (1 for the retry after the first failure): minBackoff·2^(attempt−1),
// capped at maxBackoff.
func backoffCap(attempt int) time.Duration {
	d := minBackoff
	for i := 1; i < attempt; i++ {
		if d >= maxBackoff/2 {
			return maxBackoff
		}
		d *= 2
	}
	return min(d, maxBackoff)
}

// Backoff returns the delay before retry number attempt (1 for the retry
// after the first failure) with full jitter (AWS, "Exponential Backoff and
// Jitter"): rnd, in [0, 1), times 1 s·2^(attempt−1) capped at 5 min. Full
// jitter spreads the retries of many clients that failed together, so a
// recovering upstream is not hit by a synchronised wave.
func Backoff(attempt int, rnd float64) time.Duration {
	return time.Duration(rnd * float64(backoffCap(attempt)))
}
