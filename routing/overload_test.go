package routing_test

import (
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
)

// While work waits on the call loops longer than the bound, a new caller
// is refused at once: hung up with CauseFailed (a 503 on a SIP trunk)
// even though its own loop is stuck, counted, and never recorded; the
// calls already admitted go on, and once the loops catch up callers are
// admitted again.
func TestLateLoopsRefuseNewCalls(t *testing.T) {
	const bound = 20 * time.Millisecond
	obs := &countingObserver{}
	// One loop, so the second caller's arrival queues behind the first
	// caller's Dial, which the media server does not answer.
	f := newFloor(t, nil, time.Time{}, routing.WithObserver(obs), routing.WithShards(1), routing.WithMaxLoopDelay(bound))
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"}, "+842800")
	if late := routing.Lateness(f.eng); late != 0 {
		t.Fatalf("an idle engine is %v late", late)
	}
	release, unblock := blocker(t)
	stuck := make(chan struct{}, 1)
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "dial" {
			stuck <- struct{}{}
			<-release
		}
		return nil
	}
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-first", Caller: "+84901000001", Hotline: "+842800"})
	<-stuck // the loop waits for the first caller's Dial
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-second", Caller: "+84901000002", Hotline: "+842800"})
	waitFor(t, "the second arrival waits longer than the bound", func() bool { return routing.Lateness(f.eng) > bound })

	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-refused", Caller: "+84901000003", Hotline: "+842800"})
	// The refusal does not wait for the stuck loop.
	waitFor(t, "the refused caller is hung up", func() bool { return f.media.HungUp("cust-refused") })
	for _, c := range f.media.Ops("hangup") {
		if c.Leg == "cust-refused" && c.Cause != media.CauseFailed {
			t.Errorf("refused caller hung up with %v, want CauseFailed", c.Cause)
		}
	}
	if got := obs.refused.Load(); got != 1 {
		t.Errorf("refusals observed = %d, want 1", got)
	}

	unblock() // Fail blocks no more
	f.flush()
	byCaller := map[string]routing.CallView{}
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		byCaller[c.CustomerNumber] = c
	}
	if c, ok := byCaller["+84901000001"]; !ok || c.State != routing.StateRinging || c.Agent == nil || *c.Agent != "a1" {
		t.Errorf("the first caller: %+v (present %v), want ringing a1", c, ok)
	}
	if c, ok := byCaller["+84901000002"]; !ok || c.State != routing.StateCalling {
		t.Errorf("the caller admitted before the refusal: %+v (present %v), want waiting", c, ok)
	}
	if _, ok := byCaller["+84901000003"]; ok {
		t.Error("the refused caller has a call record")
	}
	if obs.delays.Load() == 0 {
		t.Error("no loop delay observed")
	}

	// Caught up: the next caller is admitted.
	if late := routing.Lateness(f.eng); late != 0 {
		t.Fatalf("a flushed engine is %v late", late)
	}
	f.arrive("+84901000004", "+842800")
	if got := obs.refused.Load(); got != 1 {
		t.Errorf("refusals after catching up = %d, want still 1", got)
	}
}

// Without a bound (the engine's default; callfloor's wiring sets one)
// nothing is refused however late the loops run.
func TestNoBoundRefusesNothing(t *testing.T) {
	obs := &countingObserver{}
	f := newFloor(t, nil, time.Time{}, routing.WithObserver(obs), routing.WithShards(1))
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"}, "+842800")
	release, unblock := blocker(t)
	stuck := make(chan struct{}, 1)
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "dial" {
			stuck <- struct{}{}
			<-release
		}
		return nil
	}
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-first", Caller: "+84901000001", Hotline: "+842800"})
	<-stuck
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-second", Caller: "+84901000002", Hotline: "+842800"})
	waitFor(t, "the second arrival waits", func() bool { return routing.Lateness(f.eng) > 20*time.Millisecond })
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-third", Caller: "+84901000003", Hotline: "+842800"})
	unblock()
	f.flush()
	if got := obs.refused.Load(); got != 0 || f.media.HungUp("cust-third") {
		t.Fatalf("refused %d calls without a bound", got)
	}
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 3 {
		t.Fatalf("%d calls, want all 3 admitted", len(calls))
	}
}

// blocker is a channel a fake media command waits on, closed by unblock
// or, if the test fails first, when the test ends (before its floor
// stops, which waits for the loops).
func blocker(t *testing.T) (release chan struct{}, unblock func()) {
	release = make(chan struct{})
	var once sync.Once
	unblock = func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	return release, unblock
}
