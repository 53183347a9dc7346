// Package pause is the one context-aware wait the tailers, retry loops
// and pollers share (the event hub, the agent watch and pass spacing, the
// reports projector, leases, webhooks, conflict retries): each had its
// own copy of the same timer-and-select.
package pause

import (
	"context"
	"time"
)

// For waits d and reports true, or reports false as soon as ctx ends. A
// d of zero or less does not wait: it reports whether ctx is still live.
func For(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
