package refresher_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tapis-agent/tapis-agent/refresher"
)

var errInvalidRefreshToken = errors.New("refresh token rejected")

func Example() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	issued := time.Now()
	r := refresher.New(refresher.Config{
		// The agent's Func calls upstream and swaps both tokens in its
		// session before it returns the new token's lifetime.
		Refresh: func(ctx context.Context) (refresher.Lifetime, error) {
			now := time.Now()
			return refresher.Lifetime{IssuedAt: now, ExpiresAt: now.Add(4 * time.Hour)}, nil
		},
		Definitive: func(err error) bool { return errors.Is(err, errInvalidRefreshToken) },
		Limiter:    refresher.NewLimiter(4), // shared by all tenants
	}, refresher.Lifetime{IssuedAt: issued.Add(-4 * time.Hour), ExpiresAt: issued.Add(time.Minute)})
	go r.Run(ctx)
	defer r.Stop()

	// A batch job asks for a token valid for its two-hour walltime.
	if err := r.Ensure(ctx, 2*time.Hour); err != nil {
		fmt.Println("no token:", err)
		return
	}
	st := r.Status()
	fmt.Println("valid for 2h:", time.Until(st.Lifetime.ExpiresAt) >= 2*time.Hour, "failed:", st.Failed)
	// Output: valid for 2h: true failed: false
}
