// Package refresher decides when to refresh one tenant's access token and
// runs the refreshes: proactively at about two thirds of the token's
// lifetime (earlier when a margin asks for more validity to remain), on
// demand when a caller needs more validity than the current token has, and
// again with exponential backoff and full jitter after a transient
// failure. It knows nothing about HTTP or token values: the owner
// supplies a Func that does the upstream call, swaps the tokens in its
// session and reports the new token's Lifetime.
//
// At most one refresh per Refresher is in flight at a time; callers that
// need one join it. Callers that the current token satisfies are answered
// without waiting, even while a refresh is in flight. A Limiter shared by
// several Refreshers bounds the refreshes in flight across tenants.
//
// All times are compared on the wall clock, because the monotonic clock
// (and with it every Go timer) stops while a laptop or VM is suspended.
package refresher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// The schedule's constants.
const (
	// jitter spreads scheduled refreshes: ±10 % of the 2/3 delay, or, when
	// the margin decides, up to 10 % of the margin earlier than
	// expiry − margin.
	jitter = 0.1
	// refreshTimeout bounds one call of Config.Refresh.
	refreshTimeout = 60 * time.Second
)

// callerRetryGap is the shortest time between two refresh attempts after
// a transient failure that callers needing a token may cut the backoff
// to.
const callerRetryGap = time.Second

// wallCheck is the longest Run sleeps before it looks at the wall clock
// again. Go timers run on the monotonic clock, which does not advance while
// the machine is suspended: a four-hour timer armed before a night's
// suspend fires four hours after resume, long after the token died. Waking
// every minute bounds the delay after a resume to a minute.
const wallCheck = time.Minute

var (
	// ErrStopped is returned by Ensure after Stop, or after the context
	// given to Run ended, when the current token does not satisfy the
	// caller.
	ErrStopped = errors.New("refresher: stopped")

	// ErrUnsatisfiable is returned by Ensure when even a freshly refreshed
	// token does not stay valid for the asked minimum: upstream issues
	// tokens with a shorter lifetime than that.
	ErrUnsatisfiable = errors.New("refresher: token lifetime shorter than the asked minimum validity")
)

// Lifetime describes the current access token: when it was issued and when
// it expires. Both are wall-clock instants, typically the JWT's iat and exp
// claims. A zero IssuedAt means the issue time is unknown; a zero ExpiresAt
// means there is no usable token.
//
// Upstream, when positive, is how long a token that a refresh gives now
// lives: the owner knows it from a refresh's answer, or from a first token
// that got the tenant's default lifetime. It may be shorter than the
// current token's (a device-code token lives days, its refreshes hours).
// Zero means unknown; after a refresh that leaves it zero, the returned
// token's own lifetime stands for it.
type Lifetime struct {
	IssuedAt, ExpiresAt time.Time
	Upstream            time.Duration
}

// Func performs one refresh: it calls upstream, swaps both tokens in the
// session atomically and returns the new access token's Lifetime. ctx ends
// when the refresh times out (after 60 s) or the Refresher stops. Func must return errors
// that Config.Definitive classifies: a definitive error stops the schedule,
// any other is retried with backoff. Its errors are logged and returned to
// Ensure callers, so they must not carry secrets.
type Func func(ctx context.Context) (Lifetime, error)

// Config configures a Refresher. Only Refresh is required; the zero value of
// every other field selects the documented default.
type Config struct {
	// Refresh performs one refresh. It is never called concurrently by one
	// Refresher.
	Refresh Func

	// Definitive reports whether an error returned by Refresh is
	// definitive (e.g. the refresh token was rejected): such an error stops
	// the schedule for good; only a new login, with a new Refresher, helps.
	// Every other error is transient and retried with Backoff. A nil
	// Definitive treats every error as transient.
	Definitive func(error) bool

	// Margin, if positive, is the validity that must at least remain when
	// the scheduled refresh comes: the refresh comes at 2/3 of the
	// lifetime (Vault Agent's rule) or this long before expiry, whichever
	// is earlier, so a margin can bring the refresh forward but never
	// delay it. A margin that does not fit in the token's lifetime is
	// ignored. Either way scheduled refreshes are spread by 10 % jitter.
	Margin time.Duration

	// Now returns the wall-clock time. Zero means time.Now. Tests inject a
	// clock that jumps to simulate suspend and resume.
	Now func() time.Time

	// Limiter, if not nil, is shared across Refreshers and bounds the
	// number of calls of Refresh in flight across all of them.
	Limiter *Limiter

	// Rand returns a uniform random number in [0, 1) for jitter and
	// backoff. Zero means math/rand/v2's Float64.
	Rand func() float64

	// Logger receives the one line per refresh outcome: refresh_ok (debug),
	// refresh_failed (a transient failure: err, attempts so far, retry_at),
	// refresh_rejected (a definitive one) or refresh_abandoned (after Stop).
	// The owner adds what names the token, e.g. the tenant. Nil discards.
	Logger *slog.Logger
}

// Status is a snapshot of a Refresher's state.
type Status struct {
	Refreshing bool // a refresh is in flight
	Retrying   bool // the last refresh failed transiently; a retry is scheduled at NextRefresh
	Failed     bool // a definitive failure stopped the schedule for good

	LastError   error     // error of the last refresh, nil after a success
	LastAttempt time.Time // start of the last refresh, zero if none
	LastRefresh time.Time // end of the last successful refresh, zero if none
	NextRefresh time.Time // when the next refresh is due (past while Refreshing), zero when Failed
	Attempts    int       // consecutive failed attempts

	Lifetime Lifetime // the current token's
}

// A Refresher schedules and runs the refreshes of one tenant's token.
// Create it with New, run its loop with Run and end it with Stop. All its
// methods are safe for concurrent use.
type Refresher struct {
	cfg Config

	// expires holds the current token's expiry for Ensure's fast path,
	// which takes no lock.
	expires atomic.Pointer[time.Time]

	base   context.Context // parent of every refresh; cancelled by Stop
	cancel context.CancelFunc
	wake   chan struct{} // nudges Run to look at the schedule again
	wg     sync.WaitGroup

	mu          sync.Mutex // guards the fields below; never held across a refresh
	life        Lifetime   // life.Upstream is the lifetime a refresh gives, when known
	next        time.Time
	flight      *flight // the refresh in flight, or nil
	lastErr     error
	lastAttempt time.Time
	lastRefresh time.Time
	attempts    int
	retrying    bool
	failed      bool
	running     bool // Run was called
	stopped     bool
}

// flight is one refresh in flight. err is written before done is closed.
type flight struct {
	done chan struct{}
	err  error
}

// New returns a Refresher for a token with the lifetime current. It panics
// if cfg.Refresh is nil. The proactive schedule runs once Run is called;
// Ensure works without it.
func New(cfg Config, current Lifetime) *Refresher {
	if cfg.Refresh == nil {
		panic("refresher: nil Config.Refresh")
	}
	if cfg.Definitive == nil {
		cfg.Definitive = func(error) bool { return false }
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Float64
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Refresher{cfg: cfg, wake: make(chan struct{}, 1)}
	r.base, r.cancel = context.WithCancel(context.Background())
	r.mu.Lock()
	r.setLifetimeLocked(current)
	r.next = r.scheduleLocked(r.now())
	r.mu.Unlock()
	return r
}

// now returns the wall-clock time without a monotonic reading. Time.Sub
// uses the monotonic readings when both operands have one, and the
// monotonic clock stops during suspend: a deadline computed as
// time.Now().Add(d) would still look d away after a night's suspend. Token
// expiries parsed from JWTs or JSON carry no monotonic reading; stripping it
// here too keeps every comparison on the wall clock.
func (r *Refresher) now() time.Time { return r.cfg.Now().Round(0) }

// setLifetimeLocked makes l the current lifetime, on the wall clock (see
// now).
func (r *Refresher) setLifetimeLocked(l Lifetime) {
	l.IssuedAt = l.IssuedAt.Round(0)
	l.ExpiresAt = l.ExpiresAt.Round(0)
	r.life = l
	exp := l.ExpiresAt
	r.expires.Store(&exp)
}

// scheduleLocked returns the time of the proactive refresh of the current
// token. A token that outlives what a refresh gives (a device-code token of
// days) is scheduled as if issued Upstream before its expiry: a refresh
// before then could only give a token that dies sooner.
func (r *Refresher) scheduleLocked(now time.Time) time.Time {
	l := r.life
	if up := l.Upstream; up > 0 && !l.ExpiresAt.IsZero() && l.ExpiresAt.Sub(l.IssuedAt) > up {
		l.IssuedAt = l.ExpiresAt.Add(-up)
	}
	return refreshAt(l, now, r.cfg.Margin, jitter, r.cfg.Rand())
}

// validFor reports whether the current token stays valid for d on the wall
// clock. It takes no lock.
func (r *Refresher) validFor(d time.Duration) bool {
	left := r.expires.Load().Sub(r.now())
	return left > 0 && left >= d
}

// Ensure makes sure the current token stays valid for minValid on the wall
// clock. It returns nil at once when it already does, even while a refresh
// is in flight. Otherwise it starts a refresh, or joins the one in flight,
// and waits for it or for ctx; the refresh itself is not cancelled when ctx
// ends.
//
// Ensure never lets callers hammer a failing upstream, nor makes them wait
// out a backoff of minutes once upstream is back: while a retry is
// scheduled after a transient failure, callers start at most one attempt
// per second (callerRetryGap). A caller that comes sooner after the last
// attempt waits for the gap to pass and then starts the next attempt, or
// joins it, or gets the error of an attempt that another caller started
// and that failed meanwhile. After a definitive failure Ensure returns
// that error for good. It returns ErrUnsatisfiable when a fresh token
// would not live minValid either, and ErrStopped after Stop.
func (r *Refresher) Ensure(ctx context.Context, minValid time.Duration) error {
	if r.validFor(minValid) {
		return nil
	}
	waited := false
	for {
		r.mu.Lock()
		now := r.now()
		if left := r.life.ExpiresAt.Sub(now); left > 0 && left >= minValid {
			r.mu.Unlock() // a refresh ended since the fast path looked
			return nil
		}
		if r.stopped {
			r.mu.Unlock()
			return ErrStopped
		}
		if r.failed {
			err := r.lastErr
			r.mu.Unlock()
			return err
		}
		// A refresh gives a token that lives Upstream: when that is known
		// and too short, no refresh can help, and none is spent.
		if up := r.life.Upstream; up > 0 && minValid > up {
			r.mu.Unlock()
			return ErrUnsatisfiable
		}
		f := r.flight
		if f == nil {
			// A caller the current token cannot satisfy does not wait out
			// a backoff of minutes: upstream may be back, and the caller
			// needs a token now. The attempts callers make stay one at a
			// time and at most one per callerRetryGap.
			if wait := r.lastAttempt.Add(callerRetryGap).Sub(now); r.retrying && now.Before(r.next) && wait > 0 {
				if waited {
					// Another caller's attempt started and failed while
					// this one waited: its answer is this caller's too.
					err := r.lastErr
					r.mu.Unlock()
					return err
				}
				r.mu.Unlock()
				// At most the gap, should the wall clock have gone back.
				if err := r.sleep(ctx, min(wait, callerRetryGap)); err != nil {
					return err
				}
				waited = true
				continue
			}
			f = r.startLocked(now)
		}
		r.mu.Unlock()

		select {
		case <-f.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if f.err != nil {
			return f.err
		}
		if r.validFor(minValid) {
			return nil
		}
		return ErrUnsatisfiable
	}
}

// sleep waits for d, and returns early with ctx's error when ctx ends, or
// with nil when the Refresher stops (Ensure then says so).
func (r *Refresher) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-r.base.Done():
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// startLocked starts a refresh in a goroutine that the Refresher owns and
// Stop waits for. The caller has checked that none is in flight and that
// the Refresher is not stopped.
func (r *Refresher) startLocked(now time.Time) *flight {
	f := &flight{done: make(chan struct{})}
	r.flight = f
	r.lastAttempt = now
	r.wg.Add(1)
	go r.refresh(f)
	return f
}

// refresh runs one refresh and records its outcome.
func (r *Refresher) refresh(f *flight) {
	defer r.wg.Done()
	start := r.now()
	l, err := r.call()

	r.mu.Lock()
	now := r.now()
	if err == nil && !l.ExpiresAt.Round(0).After(now) {
		err = fmt.Errorf("refresher: refresh returned a token that expired at %s", l.ExpiresAt.Format(time.RFC3339))
	}
	log := r.cfg.Logger
	switch {
	case err == nil:
		if l.Upstream <= 0 && !l.IssuedAt.IsZero() {
			l.Upstream = l.ExpiresAt.Round(0).Sub(l.IssuedAt.Round(0))
		}
		r.setLifetimeLocked(l)
		r.lastErr, r.attempts, r.retrying, r.failed = nil, 0, false, false
		r.lastRefresh = now
		r.next = r.scheduleLocked(now)
		log.Debug("refresh_ok", "expires_at", r.life.ExpiresAt, "next_refresh", r.next, "took", now.Sub(start))
	case r.stopped:
		// Stop cancelled the refresh: the failure says nothing about the
		// token.
		log.Debug("refresh_abandoned", "err", err)
	case r.cfg.Definitive(err):
		r.lastErr, r.retrying, r.failed = err, false, true
		r.attempts++
		r.next = time.Time{}
		log.Error("refresh_rejected", "err", err, "attempts", r.attempts)
	default:
		r.lastErr, r.retrying = err, true
		r.attempts++
		r.next = now.Add(Backoff(r.attempts, r.cfg.Rand()))
		log.Warn("refresh_failed", "err", err, "attempts", r.attempts, "retry_at", r.next)
	}
	f.err = err
	r.flight = nil
	close(f.done)
	r.mu.Unlock()

	r.nudge()
}

// call calls Refresh under the limiter and the timeout.
func (r *Refresher) call() (Lifetime, error) {
	if err := r.cfg.Limiter.acquire(r.base); err != nil {
		return Lifetime{}, fmt.Errorf("refresher: waiting for a refresh slot: %w", err)
	}
	defer r.cfg.Limiter.release()
	ctx, cancel := context.WithTimeout(r.base, refreshTimeout)
	defer cancel()
	return r.cfg.Refresh(ctx)
}

// SetMargin puts a new Config.Margin in force and reschedules the
// proactive refresh by it. A refresh in flight or being retried keeps its
// own timing; the schedule after it uses the new margin.
func (r *Refresher) SetMargin(d time.Duration) {
	r.mu.Lock()
	r.cfg.Margin = d
	if r.flight == nil && !r.retrying && !r.failed {
		r.next = r.scheduleLocked(r.now())
	}
	r.mu.Unlock()
	r.nudge()
}

// Status returns a snapshot of the state. It never waits for a refresh in
// flight.
func (r *Refresher) Status() Status {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Status{
		Refreshing:  r.flight != nil,
		Retrying:    r.retrying,
		Failed:      r.failed,
		LastError:   r.lastErr,
		LastAttempt: r.lastAttempt,
		LastRefresh: r.lastRefresh,
		NextRefresh: r.next,
		Attempts:    r.attempts,
		Lifetime:    r.life,
	}
}

// Run runs the proactive schedule and the retries until ctx ends or Stop is
// called. Ending ctx has the effect of Stop: refreshes in flight are
// cancelled and the Refresher is done. Run returns at once when called a
// second time or after Stop.
func (r *Refresher) Run(ctx context.Context) {
	r.mu.Lock()
	if r.running || r.stopped {
		r.mu.Unlock()
		return
	}
	r.running = true
	r.wg.Add(1)
	r.mu.Unlock()
	defer r.wg.Done()
	defer context.AfterFunc(ctx, r.shutdown)()

	t := time.NewTimer(wallCheck)
	defer t.Stop()
	for {
		wait, ok := r.tick()
		if !ok {
			return
		}
		t.Reset(wait)
		select {
		case <-r.base.Done():
			return
		case <-r.wake:
		case <-t.C:
		}
	}
}

// tick starts the refresh when it is due on the wall clock and returns how
// long Run may sleep before looking again, or false once stopped.
func (r *Refresher) tick() (time.Duration, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return 0, false
	}
	if r.flight != nil || r.failed {
		return wallCheck, true // the refresh's end nudges; a failure is final
	}
	now := r.now()
	d := r.next.Sub(now)
	if d <= 0 {
		r.startLocked(now)
		return wallCheck, true
	}
	return min(d, wallCheck), true
}

// nudge wakes Run without blocking.
func (r *Refresher) nudge() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// shutdown stops the schedule and cancels the refresh in flight without
// waiting.
func (r *Refresher) shutdown() {
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.cancel()
}

// Stop ends Run, cancels the refresh in flight and waits for both to
// return. It is safe to call more than once. Afterwards Ensure answers from
// the current token only and otherwise returns ErrStopped.
func (r *Refresher) Stop() {
	r.shutdown()
	r.wg.Wait()
}
