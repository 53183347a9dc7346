package every

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGateOpensOncePerInterval(t *testing.T) {
	var g Gate
	t0 := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		at   time.Duration
		want bool
	}{{0, true}, {time.Second, false}, {9999 * time.Millisecond, false}, {10 * time.Second, true}, {15 * time.Second, false}, {20 * time.Second, true}} {
		if got := g.Allow(t0.Add(c.at), 10*time.Second); got != c.want {
			t.Errorf("at +%v: Allow = %v, want %v", c.at, got, c.want)
		}
	}
}

// Many callers at one instant: one of them is let through.
func TestGateOneOfRacingCallers(t *testing.T) {
	var g Gate
	now := time.Now()
	var opened atomic.Int64
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if g.Allow(now, time.Minute) {
				opened.Add(1)
			}
		}()
	}
	wg.Wait()
	if n := opened.Load(); n != 1 {
		t.Fatalf("%d callers let through, want 1", n)
	}
}
