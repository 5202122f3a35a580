package refresher

import (
	"context"

	"golang.org/x/sync/semaphore"
)

// A Limiter bounds the number of refreshes in flight across all the
// Refreshers that share it, so that a thousand tenants expiring together do
// not make a thousand simultaneous upstream calls. A nil *Limiter imposes no
// bound. A Limiter is safe for concurrent use.
type Limiter struct {
	sem *semaphore.Weighted
}

// NewLimiter returns a Limiter that allows n refreshes in flight at a time.
// An n below 1 counts as 1.
func NewLimiter(n int) *Limiter {
	if n < 1 {
		n = 1
	}
	return &Limiter{sem: semaphore.NewWeighted(int64(n))}
}

// acquire waits for a slot or for ctx to end.
func (l *Limiter) acquire(ctx context.Context) error {
	if l == nil {
		return nil
	}
	return l.sem.Acquire(ctx, 1)
}

// release frees a slot taken by acquire.
func (l *Limiter) release() {
	if l == nil {
		return
	}
	l.sem.Release(1)
}
