package refresher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

var (
	errRejected  = errors.New("refresh token rejected")
	errTransient = errors.New("upstream unavailable")
)

func isRejected(err error) bool { return errors.Is(err, errRejected) }

// upstream is a fake refresh Func: it records its calls and issues tokens of
// a fixed lifetime on its clock.
type upstream struct {
	lifetime time.Duration
	now      func() time.Time     // the clock tokens are issued on; time.Now if nil
	fail     func(call int) error // error of call n (1-based), nil for success
	block    chan struct{}        // if not nil, each call waits for it (or ctx)

	mu    sync.Mutex
	calls []time.Time // bubble time of each call's start
}

func (u *upstream) refresh(ctx context.Context) (Lifetime, error) {
	u.mu.Lock()
	u.calls = append(u.calls, time.Now())
	n := len(u.calls)
	u.mu.Unlock()
	if u.block != nil {
		select {
		case <-u.block:
		case <-ctx.Done():
			return Lifetime{}, fmt.Errorf("refreshing: %w", ctx.Err())
		}
	}
	if u.fail != nil {
		if err := u.fail(n); err != nil {
			return Lifetime{}, fmt.Errorf("refreshing: %w", err)
		}
	}
	now := time.Now()
	if u.now != nil {
		now = u.now()
	}
	return Lifetime{IssuedAt: now, ExpiresAt: now.Add(u.lifetime)}, nil
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.calls)
}

func (u *upstream) times() []time.Time {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]time.Time(nil), u.calls...)
}

// fresh returns a lifetime issued at now.
func fresh(now time.Time, d time.Duration) Lifetime {
	return Lifetime{IssuedAt: now, ExpiresAt: now.Add(d)}
}

// dying returns a 4 h lifetime with only left remaining.
func dying(now time.Time, left time.Duration) Lifetime {
	return Lifetime{IssuedAt: now.Add(left - 4*time.Hour), ExpiresAt: now.Add(left)}
}

func TestProactiveScheduleOverAWeek(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lifetime = 4 * time.Hour
		up := &upstream{lifetime: lifetime}
		start := time.Now()
		r := New(Config{Refresh: up.refresh}, fresh(start, lifetime))
		go r.Run(t.Context())
		time.Sleep(7 * 24 * time.Hour)
		r.Stop()

		calls := up.times()
		// 168 h / (2/3 · 4 h) = 63.
		if n := len(calls); n < 60 || n > 66 {
			t.Errorf("refreshes in a week = %d; want about 63", n)
		}
		lo := time.Duration(float64(lifetime*2/3) * 0.9)
		hi := time.Duration(float64(lifetime*2/3) * 1.1)
		prev := start
		minGap, maxGap := time.Duration(1<<62), time.Duration(0)
		for i, c := range calls {
			gap := c.Sub(prev)
			if gap < lo || gap > hi {
				t.Errorf("refresh %d came %v after the token's issue; want within [%v, %v]", i, gap, lo, hi)
			}
			minGap, maxGap = min(minGap, gap), max(maxGap, gap)
			prev = c
		}
		if maxGap-minGap < 10*time.Minute {
			t.Errorf("refresh delays spread over [%v, %v]; want jitter to spread them over about ±16m", minGap, maxGap)
		}
	})
}

// TestMarginSchedule checks that a margin only ever brings the refresh
// forward: the refresh comes at the earlier of the jittered 2/3 point and
// expiry − margin.
func TestMarginSchedule(t *testing.T) {
	const lifetime = 4 * time.Hour
	cases := []struct {
		name   string
		margin time.Duration
		// Each refresh comes within [lo, hi] after the token's issue.
		lo, hi time.Duration
		// Refreshes in 48 h.
		minN, maxN int
	}{
		// Expiry − 30m is 3h30, later than 2/3 (2h24..2h56): no delay.
		{"small margin keeps 2/3", 30 * time.Minute, 144 * time.Minute, 176 * time.Minute, 16, 20},
		// Expiry − 2h..2h12 is earlier than 2/3 whatever the jitter.
		{"large margin brings it forward", 2 * time.Hour, 108 * time.Minute, 120 * time.Minute, 24, 27},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				up := &upstream{lifetime: lifetime}
				start := time.Now()
				r := New(Config{Refresh: up.refresh, Margin: tc.margin}, fresh(start, lifetime))
				go r.Run(t.Context())
				time.Sleep(48 * time.Hour)
				r.Stop()

				calls := up.times()
				if n := len(calls); n < tc.minN || n > tc.maxN {
					t.Errorf("refreshes in 48 h with margin %v = %d; want %d..%d", tc.margin, n, tc.minN, tc.maxN)
				}
				prev := start
				for i, c := range calls {
					if gap := c.Sub(prev); gap < tc.lo || gap > tc.hi {
						t.Errorf("refresh %d came %v after the token's issue (%v before expiry); want within [%v, %v]", i, gap, lifetime-gap, tc.lo, tc.hi)
					}
					if left := prev.Add(lifetime).Sub(c); left < tc.margin {
						t.Errorf("refresh %d came with %v left; want at least the margin %v", i, left, tc.margin)
					}
					prev = c
				}
			})
		})
	}
}

// TestSetMargin: a margin set on a running Refresher moves the next
// refresh at once.
func TestSetMargin(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const lifetime = 4 * time.Hour
		up := &upstream{lifetime: lifetime}
		start := time.Now()
		r := New(Config{Refresh: up.refresh}, fresh(start, lifetime))
		go r.Run(t.Context())
		defer r.Stop()
		if next := r.Status().NextRefresh.Sub(start); next < 144*time.Minute {
			t.Fatalf("next refresh with the default schedule after %v; want at least 2h24m", next)
		}
		time.Sleep(10 * time.Minute)
		r.SetMargin(3 * time.Hour) // expiry − 3h is 1h after issue
		next := r.Status().NextRefresh.Sub(start)
		if next > time.Hour || next < 42*time.Minute {
			t.Fatalf("next refresh after SetMargin(3h) at %v after issue; want within [42m, 1h]", next)
		}
		time.Sleep(time.Hour + time.Minute)
		if calls := up.times(); len(calls) != 1 || calls[0].Sub(start) > time.Hour {
			t.Fatalf("refreshes by 1h11m = %v; want one, by 1h after issue", calls)
		}
		// A margin that the 2/3 point already meets leaves it there.
		r.SetMargin(time.Minute)
		st := r.Status()
		if got := st.NextRefresh.Sub(st.Lifetime.IssuedAt); got < 144*time.Minute || got > 176*time.Minute {
			t.Errorf("next refresh after SetMargin(1m) %v after issue; want the 2/3 point, 2h24m..2h56m", got)
		}
	})
}

func TestConcurrentEnsureSingleflight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour, block: make(chan struct{})}
		r := New(Config{Refresh: up.refresh}, dying(time.Now(), 10*time.Minute))
		defer r.Stop()

		const callers = 1000
		errs := make(chan error, callers)
		for range callers {
			go func() { errs <- r.Ensure(t.Context(), time.Hour) }()
		}
		synctest.Wait() // every caller waits for the one refresh

		if n := up.count(); n != 1 {
			t.Fatalf("Refresh calls with %d callers waiting = %d; want 1", callers, n)
		}
		if !r.Status().Refreshing {
			t.Errorf("Status().Refreshing = false during a refresh; want true")
		}
		// A caller the current token satisfies is answered at once: were
		// it to wait for the blocked refresh, the bubble would deadlock.
		if err := r.Ensure(t.Context(), 5*time.Minute); err != nil {
			t.Errorf("Ensure(5m) during a refresh with 10m left = %v; want nil", err)
		}
		select {
		case err := <-errs:
			t.Fatalf("an Ensure(1h) returned %v before the refresh ended", err)
		default:
		}

		close(up.block)
		for range callers {
			if err := <-errs; err != nil {
				t.Errorf("Ensure(1h) = %v; want nil", err)
			}
		}
		if n := up.count(); n != 1 {
			t.Errorf("Refresh calls = %d; want 1", n)
		}
		if err := r.Ensure(t.Context(), 3*time.Hour); err != nil {
			t.Errorf("Ensure(3h) after the refresh = %v; want nil", err)
		}
		if r.Status().Refreshing {
			t.Errorf("Status().Refreshing = true after the refresh; want false")
		}
	})
}

func TestEnsureCallerCancelDoesNotAbortRefresh(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour, block: make(chan struct{})}
		r := New(Config{Refresh: up.refresh}, dying(time.Now(), time.Minute))
		defer r.Stop()

		ctx, cancel := context.WithCancel(t.Context())
		impatient := make(chan error, 1)
		go func() { impatient <- r.Ensure(ctx, time.Hour) }()
		patient := make(chan error, 1)
		go func() { patient <- r.Ensure(t.Context(), time.Hour) }()
		synctest.Wait()

		cancel()
		if err := <-impatient; !errors.Is(err, context.Canceled) {
			t.Errorf("Ensure with a cancelled ctx = %v; want context.Canceled", err)
		}
		close(up.block)
		if err := <-patient; err != nil {
			t.Errorf("Ensure of the other caller = %v; want nil", err)
		}
		if n := up.count(); n != 1 {
			t.Errorf("Refresh calls = %d; want 1", n)
		}
	})
}

func TestTransientBackoffAndRecovery(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const failures = 12
		up := &upstream{lifetime: 4 * time.Hour, fail: func(n int) error {
			if n <= failures {
				return errTransient
			}
			return nil
		}}
		r := New(Config{Refresh: up.refresh, Definitive: isRejected}, dying(time.Now(), 10*time.Second))
		go r.Run(t.Context())
		time.Sleep(time.Hour) // well after the sum of the backoffs (< 30 min)

		calls := up.times()
		if len(calls) != failures+1 {
			t.Fatalf("Refresh calls = %d; want %d failures and one success", len(calls), failures+1)
		}
		prevCap := time.Duration(0)
		for i := 1; i < len(calls); i++ {
			gap := calls[i].Sub(calls[i-1])
			limit := backoffCap(i)
			if limit < prevCap || limit > 5*time.Minute {
				t.Errorf("backoff bound %d = %v after %v; want non-decreasing, at most 5m", i, limit, prevCap)
			}
			prevCap = limit
			if gap < 0 || gap > limit {
				t.Errorf("retry %d came %v after the failure; want within [0, %v]", i, gap, limit)
			}
		}
		st := r.Status()
		if st.Retrying || st.Failed || st.Attempts != 0 || st.LastError != nil {
			t.Errorf("Status() after recovery = %+v; want no error, no retry", st)
		}
		if !st.LastRefresh.Equal(calls[failures]) {
			t.Errorf("Status().LastRefresh = %v; want %v", st.LastRefresh, calls[failures])
		}
		if d := st.NextRefresh.Sub(st.LastRefresh); d < 144*time.Minute || d > 176*time.Minute {
			t.Errorf("next refresh %v after recovery; want the 2/3 rule again", d)
		}
		r.Stop()
	})
}

func TestBackoffSequenceExact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour, fail: func(int) error { return errTransient }}
		r := New(Config{Refresh: up.refresh, Rand: func() float64 { return 0.5 }}, dying(time.Now(), 0))
		go r.Run(t.Context())
		time.Sleep(20 * time.Minute)
		r.Stop()

		// Half of 1, 2, 4, … 256 s, then half of the 5 min cap.
		want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second,
			8 * time.Second, 16 * time.Second, 32 * time.Second, 64 * time.Second, 128 * time.Second,
			150 * time.Second, 150 * time.Second}
		calls := up.times()
		if len(calls) < len(want)+1 {
			t.Fatalf("Refresh calls in 20 min = %d; want at least %d", len(calls), len(want)+1)
		}
		for i, w := range want {
			if gap := calls[i+1].Sub(calls[i]); gap != w {
				t.Errorf("gap before retry %d = %v; want %v", i+1, gap, w)
			}
		}
	})
}

// TestEnsureDuringBackoff: callers that come within callerRetryGap of a
// failed attempt wait for the gap and share one attempt, however many they
// are; a caller that comes after the heal gets its token within the gap,
// not an error.
func TestEnsureDuringBackoff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		up := &upstream{lifetime: 4 * time.Hour, fail: func(int) error {
			if down.Load() {
				return errTransient
			}
			return nil
		}}
		r := New(Config{
			Refresh: up.refresh,
			Rand:    func() float64 { return 0.5 },
		}, dying(time.Now(), 0))
		defer r.Stop()
		ctx := t.Context()

		if err := r.Ensure(ctx, time.Minute); !errors.Is(err, errTransient) {
			t.Fatalf("Ensure with upstream down = %v; want %v", err, errTransient)
		}
		failedAt := time.Now()
		st := r.Status()
		if !st.Retrying || st.Attempts != 1 || !errors.Is(st.LastError, errTransient) || !st.NextRefresh.Equal(failedAt.Add(500*time.Millisecond)) {
			t.Errorf("Status() during backoff = %+v; want retrying, 1 attempt, next at +0.5s", st)
		}

		// A hundred callers at once, right after the failure: one attempt,
		// once the gap has passed, and its error for every one.
		var wg sync.WaitGroup
		var wrong atomic.Int32
		for range 100 {
			wg.Go(func() {
				if err := r.Ensure(ctx, time.Minute); !errors.Is(err, errTransient) {
					wrong.Add(1)
				}
			})
		}
		wg.Wait()
		if n := wrong.Load(); n > 0 {
			t.Errorf("%d of 100 callers during the backoff did not get %v", n, errTransient)
		}
		calls := up.times()
		if len(calls) != 2 || calls[1].Sub(calls[0]) != callerRetryGap {
			t.Fatalf("Refresh calls by 100 callers during the backoff at %v; want one more, %v after the first", calls, callerRetryGap)
		}

		// A caller too soon after a failed attempt, an instant after the
		// heal: it waits for the gap and gets its token.
		down.Store(false)
		healed := time.Now()
		if err := r.Ensure(ctx, time.Minute); err != nil {
			t.Fatalf("Ensure after upstream recovered = %v; want nil", err)
		}
		if d := time.Since(healed); d != callerRetryGap {
			t.Errorf("Ensure right after the heal took %v; want the gap, %v", d, callerRetryGap)
		}
		if n, st := up.count(), r.Status(); n != 3 || st.Attempts != 0 || st.Retrying {
			t.Errorf("after recovery: calls = %d, status %+v; want 3 calls, no retry", n, st)
		}
	})
}

// TestEnsureWaitEndsWithContext: a caller waiting for the retry gap gives
// up when its context ends, and starts no attempt.
func TestEnsureWaitEndsWithContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour, fail: func(int) error { return errTransient }}
		r := New(Config{Refresh: up.refresh, Rand: func() float64 { return 0.99 }}, dying(time.Now(), 0))
		defer r.Stop()
		if err := r.Ensure(t.Context(), time.Minute); !errors.Is(err, errTransient) {
			t.Fatalf("Ensure with upstream down = %v; want %v", err, errTransient)
		}
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		if err := r.Ensure(ctx, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Ensure with a context ending within the gap = %v; want %v", err, context.DeadlineExceeded)
		}
		if n := up.count(); n != 1 {
			t.Errorf("Refresh calls = %d; want 1", n)
		}
	})
}

// TestEnsureCutsLongBackoffShort: after a long outage the backoff runs to
// minutes, but a caller needing a token gets one within a second of
// upstream's recovery; callers never make more than one attempt a second.
func TestEnsureCutsLongBackoffShort(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var down atomic.Bool
		down.Store(true)
		up := &upstream{lifetime: 4 * time.Hour, fail: func(int) error {
			if down.Load() {
				return errTransient
			}
			return nil
		}}
		r := New(Config{Refresh: up.refresh, Rand: func() float64 { return 0.99 }}, dying(time.Now(), 0))
		defer r.Stop()
		go r.Run(t.Context())
		start := time.Now()
		for time.Since(start) < 5*time.Minute {
			// Ten callers one after the other, then a pause.
			for range 10 {
				if err := r.Ensure(t.Context(), time.Minute); !errors.Is(err, errTransient) {
					t.Fatalf("Ensure with upstream down = %v; want %v", err, errTransient)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The first scheduled retry comes after Backoff(1, 0.99) = 990ms;
		// callers wait callerRetryGap since the last attempt.
		calls := up.times()
		for i := 1; i < len(calls); i++ {
			if gap := calls[i].Sub(calls[i-1]); gap < 990*time.Millisecond {
				t.Fatalf("attempts %d and %d %v apart; want at least about %v", i, i+1, gap, callerRetryGap)
			}
		}
		// The callers overrun the 5 min by their last round.
		if asked := time.Since(start); len(calls) < 250 || len(calls) > int(asked/time.Second)+1 {
			t.Errorf("%d attempts in %v of callers asking; want about one a second", len(calls), asked)
		}
		if st := r.Status(); time.Until(st.NextRefresh) < time.Minute {
			t.Fatalf("backoff after 5 min = %v; want minutes", time.Until(st.NextRefresh))
		}

		down.Store(false)
		healed := time.Now()
		for r.Ensure(t.Context(), time.Minute) != nil {
			time.Sleep(100 * time.Millisecond)
		}
		if d := time.Since(healed); d > callerRetryGap {
			t.Errorf("a caller got a token %v after upstream healed; want at most %v", d, callerRetryGap)
		}
	})
}

func TestDefinitiveFailureStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var reject atomic.Bool
		reject.Store(true)
		up := &upstream{lifetime: 4 * time.Hour, fail: func(int) error {
			if reject.Load() {
				return errRejected
			}
			return nil
		}}
		r := New(Config{Refresh: up.refresh, Definitive: isRejected}, dying(time.Now(), 10*time.Second))
		go r.Run(t.Context())
		synctest.Wait()

		st := r.Status()
		if !st.Failed || st.Retrying || !errors.Is(st.LastError, errRejected) || !st.NextRefresh.IsZero() || st.Attempts != 1 {
			t.Fatalf("Status() after rejection = %+v; want Failed, no next refresh", st)
		}
		// While the old token lives, callers it satisfies still get it.
		if err := r.Ensure(t.Context(), 5*time.Second); err != nil {
			t.Errorf("Ensure(5s) with 10s left after rejection = %v; want nil", err)
		}
		time.Sleep(24 * time.Hour)
		if err := r.Ensure(t.Context(), time.Minute); !errors.Is(err, errRejected) {
			t.Errorf("Ensure after rejection = %v; want %v", err, errRejected)
		}
		// Even once upstream would accept it again: only a new login helps.
		reject.Store(false)
		time.Sleep(24 * time.Hour)
		if err := r.Ensure(t.Context(), time.Minute); !errors.Is(err, errRejected) {
			t.Errorf("Ensure after rejection, upstream fine again = %v; want %v", err, errRejected)
		}
		if n := up.count(); n != 1 {
			t.Fatalf("Refresh calls two days after rejection = %d; want 1", n)
		}
		r.Stop()
	})
}

func TestWallClockJump(t *testing.T) {
	// The injected clock jumps while the bubble's clock (the monotonic
	// clock timers run on) does not: a suspend and resume.
	setup := func() (*Refresher, *upstream, *atomic.Int64) {
		var offset atomic.Int64
		clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
		up := &upstream{lifetime: 4 * time.Hour, now: clock}
		r := New(Config{Refresh: up.refresh, Now: clock}, fresh(clock(), 4*time.Hour))
		return r, up, &offset
	}

	t.Run("Ensure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r, up, offset := setup()
			defer r.Stop()
			if err := r.Ensure(t.Context(), time.Minute); err != nil || up.count() != 0 {
				t.Fatalf("Ensure before the jump = %v with %d calls; want nil without a call", err, up.count())
			}
			offset.Store(int64(10 * time.Hour))
			if err := r.Ensure(t.Context(), time.Minute); err != nil {
				t.Fatalf("Ensure after the jump = %v; want nil", err)
			}
			if n := up.count(); n != 1 {
				t.Errorf("Refresh calls after the jump = %d; want 1", n)
			}
			want := time.Now().Add(14 * time.Hour)
			if got := r.Status().Lifetime.ExpiresAt; !got.Equal(want) {
				t.Errorf("expiry after the jump = %v; want %v", got, want)
			}
		})
	})

	t.Run("Run", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			r, up, offset := setup()
			go r.Run(t.Context())
			synctest.Wait()
			offset.Store(int64(10 * time.Hour))
			time.Sleep(time.Minute)
			synctest.Wait()
			if n := up.count(); n != 1 {
				t.Errorf("Refresh calls a minute after the jump = %d; want 1", n)
			}
			r.Stop()
		})
	})
}

func TestUnsatisfiable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour}
		r := New(Config{Refresh: up.refresh}, dying(time.Now(), time.Hour))
		defer r.Stop()
		// The first time, a refresh might bring a longer token.
		if err := r.Ensure(t.Context(), 5*time.Hour); !errors.Is(err, ErrUnsatisfiable) {
			t.Errorf("Ensure(5h) with 4h tokens = %v; want ErrUnsatisfiable", err)
		}
		if err := r.Ensure(t.Context(), 5*time.Hour); !errors.Is(err, ErrUnsatisfiable) {
			t.Errorf("Ensure(5h) again = %v; want ErrUnsatisfiable", err)
		}
		if n := up.count(); n != 1 {
			t.Errorf("Refresh calls = %d; want 1: a refreshed token shows the upstream lifetime", n)
		}
		if err := r.Ensure(t.Context(), 3*time.Hour); err != nil {
			t.Errorf("Ensure(3h) = %v; want nil", err)
		}
	})
}

func TestRefreshTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour, block: make(chan struct{})}
		r := New(Config{Refresh: up.refresh}, dying(time.Now(), 0))
		defer r.Stop()
		start := time.Now()
		if err := r.Ensure(t.Context(), time.Minute); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Ensure with a hung upstream = %v; want context.DeadlineExceeded", err)
		}
		if d := time.Since(start); d != refreshTimeout {
			t.Errorf("refresh gave up after %v; want %v", d, refreshTimeout)
		}
		if st := r.Status(); !st.Retrying {
			t.Errorf("Status() after a timeout = %+v; want Retrying", st)
		}
	})
}

func TestRefreshReturnsExpiredToken(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := New(Config{Refresh: func(context.Context) (Lifetime, error) {
			return dying(time.Now(), -time.Second), nil
		}}, dying(time.Now(), 0))
		defer r.Stop()
		if err := r.Ensure(t.Context(), time.Minute); err == nil {
			t.Errorf("Ensure when Refresh returns an expired token = nil; want an error")
		}
		if st := r.Status(); !st.Retrying {
			t.Errorf("Status() = %+v; want Retrying", st)
		}
	})
}

func TestLimiterBoundsConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		lim := NewLimiter(4)
		var inflight, peak, calls atomic.Int32
		refresh := func(ctx context.Context) (Lifetime, error) {
			calls.Add(1)
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			select { // upstream latency
			case <-time.After(time.Second):
			case <-ctx.Done():
				return Lifetime{}, ctx.Err()
			}
			return fresh(time.Now(), 4*time.Hour), nil
		}
		const tenants = 100
		rs := make([]*Refresher, tenants)
		errs := make(chan error, tenants)
		for i := range rs {
			rs[i] = New(Config{Refresh: refresh, Limiter: lim}, dying(time.Now(), 0))
			go func() { errs <- rs[i].Ensure(t.Context(), time.Minute) }()
		}
		for range tenants {
			if err := <-errs; err != nil {
				t.Errorf("Ensure = %v; want nil", err)
			}
		}
		for _, r := range rs {
			r.Stop()
		}
		if c, p := calls.Load(), peak.Load(); c != tenants || p != 4 {
			t.Errorf("calls = %d, peak in flight = %d; want %d, 4", c, p, tenants)
		}
	})
}

func TestStopCancelsRefreshInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour, block: make(chan struct{})}
		r := New(Config{Refresh: up.refresh}, dying(time.Now(), time.Second))
		ran := make(chan struct{})
		go func() {
			r.Run(t.Context())
			close(ran)
		}()
		synctest.Wait()
		if !r.Status().Refreshing {
			t.Fatalf("Status().Refreshing = false; want a refresh in flight")
		}
		waiter := make(chan error, 1)
		go func() { waiter <- r.Ensure(t.Context(), time.Minute) }()
		synctest.Wait()

		r.Stop() // returns only once Run and the refresh have returned
		select {
		case <-ran:
		default:
			t.Errorf("Run still running after Stop")
		}
		if err := <-waiter; !errors.Is(err, context.Canceled) {
			t.Errorf("Ensure waiting on the cancelled refresh = %v; want context.Canceled", err)
		}
		if err := r.Ensure(t.Context(), time.Minute); !errors.Is(err, ErrStopped) {
			t.Errorf("Ensure after Stop = %v; want ErrStopped", err)
		}
		r.Run(t.Context()) // returns at once
		r.Stop()           // twice is fine
		if n := up.count(); n != 1 {
			t.Errorf("Refresh calls = %d; want 1", n)
		}
	})
}

func TestRunContextEndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour, block: make(chan struct{})}
		r := New(Config{Refresh: up.refresh}, dying(time.Now(), 0))
		ctx, cancel := context.WithCancel(t.Context())
		ran := make(chan struct{})
		go func() {
			r.Run(ctx)
			close(ran)
		}()
		synctest.Wait()
		cancel()
		<-ran
		r.Stop() // waits for the cancelled refresh
		if st := r.Status(); st.Refreshing {
			t.Errorf("Status().Refreshing after Run's ctx ended = true; want false")
		}
	})
}

func BenchmarkEnsureFast(b *testing.B) {
	r := New(Config{Refresh: func(context.Context) (Lifetime, error) {
		b.Fatal("Refresh called on the fast path")
		return Lifetime{}, nil
	}}, fresh(time.Now(), 4*time.Hour))
	defer r.Stop()
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := r.Ensure(ctx, time.Minute); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func TestTimesAreWallClockOnly(t *testing.T) {
	// Outside a bubble time.Now carries a monotonic reading, which stops
	// during suspend; the Refresher must compare on the wall clock only.
	now := time.Now()
	r := New(Config{Refresh: func(context.Context) (Lifetime, error) {
		return Lifetime{}, errTransient
	}, Rand: func() float64 { return 0.5 }}, Lifetime{IssuedAt: now.Add(-4 * time.Hour), ExpiresAt: now.Add(time.Second)})
	defer r.Stop()
	if err := r.Ensure(t.Context(), time.Minute); !errors.Is(err, errTransient) {
		t.Fatalf("Ensure = %v; want %v", err, errTransient)
	}
	st := r.Status()
	for name, tm := range map[string]time.Time{
		"IssuedAt": st.Lifetime.IssuedAt, "ExpiresAt": st.Lifetime.ExpiresAt,
		"NextRefresh": st.NextRefresh, "LastAttempt": st.LastAttempt,
	} {
		if tm.IsZero() || tm != tm.Round(0) {
			t.Errorf("Status().%s = %v; want a non-zero wall-clock time without a monotonic reading", name, tm)
		}
	}
}

// TestUnsatisfiableKnownUpfront: a lifetime that says what a refresh gives
// lets Ensure refuse what no refresh can satisfy without spending one.
func TestUnsatisfiableKnownUpfront(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		up := &upstream{lifetime: 4 * time.Hour}
		l := dying(time.Now(), time.Hour)
		l.Upstream = 4 * time.Hour
		r := New(Config{Refresh: up.refresh}, l)
		defer r.Stop()
		if err := r.Ensure(t.Context(), 5*time.Hour); !errors.Is(err, ErrUnsatisfiable) {
			t.Errorf("Ensure(5h) with 4h tokens = %v; want ErrUnsatisfiable", err)
		}
		if n := up.count(); n != 0 {
			t.Errorf("Refresh calls = %d; want 0: the upstream lifetime was known", n)
		}
		if err := r.Ensure(t.Context(), 3*time.Hour); err != nil || up.count() != 1 {
			t.Errorf("Ensure(3h) = %v after %d calls; want nil after 1", err, up.count())
		}
	})
}

// TestLongTokenRefreshedWhenARefreshHelps: a token that outlives what a
// refresh gives (a device-code token of a day, refreshes of 4 h) is
// refreshed at 2/3 of a refreshed token's lifetime before its own expiry,
// not at 2/3 of its own lifetime.
func TestLongTokenRefreshedWhenARefreshHelps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		up := &upstream{lifetime: 4 * time.Hour}
		l := fresh(start, 24*time.Hour)
		l.Upstream = 4 * time.Hour
		r := New(Config{Refresh: up.refresh, Rand: func() float64 { return 0.5 }}, l)
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		go r.Run(ctx)
		time.Sleep(24*time.Hour - 90*time.Minute)
		synctest.Wait()
		if n := up.count(); n != 0 {
			t.Fatalf("Refresh calls after 22.5 h = %d; want 0", n)
		}
		time.Sleep(15 * time.Minute)
		synctest.Wait()
		calls := up.times()
		if len(calls) != 1 {
			t.Fatalf("Refresh calls after 22.75 h = %d; want 1", len(calls))
		}
		if want := start.Add(24*time.Hour - 80*time.Minute); !calls[0].Equal(want) {
			t.Errorf("refreshed at %v after start; want %v", calls[0].Sub(start), want.Sub(start))
		}
		cancel()
		r.Stop()
	})
}
