// Package every lets a thing happen at most once per interval: the WARN
// that a refused caller logs, which under an overload would otherwise
// repeat for every caller (routing's late-loop refusals, the ARI path's
// event-lag refusals).
package every

import (
	"sync/atomic"
	"time"
)

// Gate opens at most once per interval. The zero Gate is open.
type Gate struct {
	last atomic.Int64 // Unix ns of the last opening; 0: never
}

// Allow reports whether at least d has passed since it last reported
// true (always, the first time), and if so starts a new interval at now.
// Of callers racing for one opening exactly one gets it.
func (g *Gate) Allow(now time.Time, d time.Duration) bool {
	n := now.UnixNano()
	for {
		last := g.last.Load()
		if last != 0 && n-last < int64(d) {
			return false
		}
		if g.last.CompareAndSwap(last, n) {
			return true
		}
	}
}
