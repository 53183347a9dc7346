package state

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/callfloor/callfloor/internal/pause"
)

// Optimistic-concurrency retries (README.md, Running several replicas):
// writers that lost a version race wait a random time before re-reading,
// growing with each attempt, so writers that collided — on one replica or
// several — do not collide again in lockstep and a burst of changes that
// do not conflict in substance all land instead of surfacing ErrConflict.
const (
	retryBase = time.Millisecond
	retryCap  = 100 * time.Millisecond
)

// RetryWait waits before retry number attempt (1 for the first retry) of
// a commit that failed with ErrConflict: a random time in [0, min(base <<
// attempt, cap)). It returns ctx.Err() if ctx ends first.
func RetryWait(ctx context.Context, attempt int) error {
	limit := retryBase << min(attempt, 16)
	if limit <= 0 || limit > retryCap {
		limit = retryCap
	}
	if !pause.For(ctx, rand.N(limit)) {
		return ctx.Err()
	}
	return nil
}
