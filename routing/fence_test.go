package routing_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// TestTakeoverFencesTheOldOwner: engine A drives the media server under
// lease token 1 and rings a1 for call X. Replica B takes the lease (token
// 2) and runs its own engine on the same store: it resumes X, ringing a1,
// with the stored ring deadline. A fact that still reaches A (a stale
// owner) makes A's commit fail on the fence: nothing it decided is
// written, and A stops at once with ErrFencedOut. B goes on with the call
// to its normal end; A's engine can run again in a later term.
func TestTakeoverFencesTheOldOwner(t *testing.T) {
	st := store.NewMemory()
	f := newFloorOn(t, st, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1", "a2"})
	f.stop() // the floor's own unfenced engine steps aside

	ctx := context.Background()
	grant := func(holder string) state.Fence {
		t.Helper()
		g, err := st.TryAcquire(ctx, "media:test", holder, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return state.Fence{Lease: "media:test", Token: g.Token}
	}
	run := func(eng *routing.Engine, fence state.Fence) (stop func() error, done chan error) {
		rctx, cancel := context.WithCancel(ctx)
		done = make(chan error, 1)
		result := make(chan error, 1)
		go func() { err := eng.RunFenced(rctx, fence); done <- err; result <- err }()
		<-eng.Started()
		var once sync.Once
		var err error
		return func() error { once.Do(func() { cancel(); err = <-result }); return err }, done
	}

	fenceA := grant("A")
	engA := routing.NewEngine(st, f.agents, f.media, f.opts...)
	stopA, doneA := run(engA, fenceA)
	f.eng, f.ctx = engA, ctx
	x, cx := f.arrive("+84901000001", "+842800")
	ringA := f.call(x)
	if ringA.State != routing.StateRinging || ringA.Agent == nil {
		t.Fatalf("call %s on A: %+v, want ringing an agent", x, ringA)
	}
	rung := *ringA.Agent
	legA := f.legOf(rung)

	// B takes over (A's grant released from under it, as after expiry).
	if err := st.Release(ctx, "media:test", "A", fenceA.Token); err != nil {
		t.Fatal(err)
	}
	fenceB := grant("B")
	mediaB := &routingtest.Media{}
	engB := routing.NewEngine(st, f.agents, mediaB, f.opts...)
	stopB, _ := run(engB, fenceB)
	defer stopB()
	if err := engB.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if v, err := engB.Call(ctx, f.admin, x); err != nil || v.State != routing.StateRinging || v.Agent == nil || *v.Agent != rung {
		t.Fatalf("B resumed %s as %+v (%v), want ringing %s", x, v, err, rung)
	}

	// The stale owner hears the answer and tries to record it.
	before, _ := st.Get(ctx, state.KindCall, x)
	engA.Report(media.LegAnswered{FactBase: f.at(), Leg: legA})
	select {
	case err := <-doneA:
		if !errors.Is(err, routing.ErrFencedOut) {
			t.Fatalf("A's run ended with %v, want ErrFencedOut", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the stale owner kept running after its commit was fenced")
	}
	if after, _ := st.Get(ctx, state.KindCall, x); after.Version != before.Version {
		t.Fatalf("the stale owner's decision was written: v%d → v%d", before.Version, after.Version)
	}
	if engA.Running() {
		t.Fatal("A reports it still drives calls")
	}

	// The owner carries the call on to its end.
	f.eng, f.media = engB, mediaB
	f.report(media.LegAnswered{FactBase: f.at(), Leg: legA})
	f.wantCall(x, routing.StateAnswered, rung)
	f.report(media.LegEnded{FactBase: f.at(), Leg: cx, Cause: media.CauseNormal})
	f.wantGone(x)

	// A later term of A runs again on the same engine.
	if err := stopB(); err != nil {
		t.Fatal(err)
	}
	if err := st.Release(ctx, "media:test", "B", fenceB.Token); err != nil {
		t.Fatal(err)
	}
	stopA2, _ := run(engA, grant("A"))
	if !engA.Running() {
		t.Fatal("A's second run is not running")
	}
	if err := stopA2(); err != nil {
		t.Fatal(err)
	}
	_ = stopA // A's first run already ended (fenced)
	f.stop = func() {}
}
