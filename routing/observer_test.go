package routing_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// countingObserver counts what the engine reports.
type countingObserver struct {
	maxDepth, work, conflicts, passes, dials atomic.Int64
	delays, refused                          atomic.Int64
}

func (o *countingObserver) QueueDepth(n int) {
	for {
		cur := o.maxDepth.Load()
		if int64(n) <= cur || o.maxDepth.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}
func (o *countingObserver) WorkDone()               { o.work.Add(1) }
func (o *countingObserver) ConflictRetry()          { o.conflicts.Add(1) }
func (o *countingObserver) DispatchPass()           { o.passes.Add(1) }
func (o *countingObserver) FactsHeld(int)           {}
func (o *countingObserver) FactDropped()            {}
func (o *countingObserver) LoopDelay(time.Duration) { o.delays.Add(1) }
func (o *countingObserver) CallRefused(reason string) {
	if reason == routing.ReasonOverload {
		o.refused.Add(1)
	}
}
func (o *countingObserver) MediaCommand(cmd string, _ time.Duration, err error) {
	if cmd == "dial" && err == nil {
		o.dials.Add(1)
	}
}

// conflictOnce is the real in-memory store, except that once armed the
// next commit of a call record fails with state.ErrConflict, as when an
// agent record changed under the change.
type conflictOnce struct {
	state.StoreLog
	armed atomic.Bool
}

func (c *conflictOnce) Commit(ctx context.Context, tx state.Tx) ([]state.Event, error) {
	for _, p := range tx.Puts {
		if p.Kind == state.KindCall && c.armed.CompareAndSwap(true, false) {
			return nil, state.ErrConflict
		}
	}
	return c.StoreLog.Commit(ctx, tx)
}

// The observer given at construction sees the loops' work, the passes, a
// conflict retried and the media commands.
func TestObserverSeesWorkPassesAndConflicts(t *testing.T) {
	obs := &countingObserver{}
	st := &conflictOnce{StoreLog: store.NewMemory()}
	f := newFloorOn(t, st, nil, time.Time{}, routing.WithObserver(obs))
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"})
	passes := obs.passes.Load()
	st.armed.Store(true)
	id, _ := f.arrive("+84901000001", "+842800")
	f.flush()
	f.wantCall(id, routing.StateRinging, "a1")
	if st.armed.Load() {
		t.Fatal("no call commit happened")
	}
	if got := obs.conflicts.Load(); got != 1 {
		t.Errorf("conflict retries = %d, want 1", got)
	}
	if obs.passes.Load() <= passes {
		t.Error("the arrival ran no distribution pass")
	}
	if got := obs.dials.Load(); got != 1 {
		t.Errorf("dial commands observed = %d, want 1", got)
	}
	if obs.work.Load() == 0 || obs.maxDepth.Load() == 0 {
		t.Errorf("loop work %d, max depth %d", obs.work.Load(), obs.maxDepth.Load())
	}
}

// Kicks that come within the pass spacing share one pass, and a kick
// after a quiet spell runs its pass without waiting out the spacing.
func TestKicksWithinPassSpacingSharePass(t *testing.T) {
	const spacing = 500 * time.Millisecond
	obs := &countingObserver{}
	f := newFloor(t, nil, time.Time{}, routing.WithObserver(obs), routing.WithPassSpacing(spacing))
	f.flush()
	time.Sleep(spacing) // the start's pass is behind us
	before := obs.passes.Load()
	start := time.Now()
	f.eng.Kick()
	f.flush()
	if took := time.Since(start); took >= spacing {
		t.Fatalf("a kick after a quiet spell waited %v, the whole spacing", took)
	}
	if got := obs.passes.Load() - before; got != 1 {
		t.Fatalf("one kick ran %d passes", got)
	}
	// Kicks 5 ms apart: without the spacing each would be a pass of its own.
	start = time.Now()
	for range 20 {
		f.eng.Kick()
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); took > spacing/2 {
		t.Skipf("the kicks took %v, too close to the spacing of %v to tell", took, spacing)
	}
	f.flush()
	if got := obs.passes.Load() - before; got != 2 {
		t.Fatalf("21 kicks ran %d passes, want 2 (one, then one per spacing)", got)
	}
}
