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

// lateFloor is a floor whose one call loop is stuck: the first caller's
// Dial is not answered until unblock, and the second caller's arrival
// waits behind it for longer than 20 ms. opts go to the engine.
func lateFloor(t *testing.T, opts ...routing.Option) (f *testFloor, obs *countingObserver, unblock func()) {
	t.Helper()
	obs = &countingObserver{}
	// One loop, so the second caller's arrival queues behind the first
	// caller's Dial.
	f = newFloor(t, nil, time.Time{}, append([]routing.Option{routing.WithObserver(obs), routing.WithShards(1)}, opts...)...)
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"}, "+842800")
	if late := routing.Lateness(f.eng); late != 0 {
		t.Fatalf("an idle engine is %v late", late)
	}
	release := make(chan struct{})
	var once sync.Once
	unblock = func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the floor stops, which waits for the loop
	stuck := make(chan struct{}, 1)
	f.media.Fail = func(c routingtest.Command) error { // never reset: it blocks no more once released
		if c.Op == "dial" {
			stuck <- struct{}{}
			<-release
		}
		return nil
	}
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-first", Caller: "+84901000001", Hotline: "+842800"})
	<-stuck
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-second", Caller: "+84901000002", Hotline: "+842800"})
	// Lateness is real time: the floor's fake clock, weeks behind, must not
	// make fresh work look late.
	if late := routing.Lateness(f.eng); late >= time.Minute {
		t.Fatalf("work queued just now is %v late", late)
	}
	waitFor(t, "the second arrival waits 20 ms", func() bool { return routing.Lateness(f.eng) > 20*time.Millisecond })
	return f, obs, unblock
}

// callsByCaller lists the floor's calls by caller number.
func callsByCaller(t *testing.T, f *testFloor) map[string]routing.CallView {
	t.Helper()
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]routing.CallView{}
	for _, c := range calls {
		out[c.CustomerNumber] = c
	}
	return out
}

// While work waits on the call loops longer than the bound, a new caller
// is refused at once: hung up with CauseFailed (a 503 on a SIP trunk)
// even though its own loop is stuck, counted, and never recorded; the
// calls already admitted go on, and once the loops catch up callers are
// admitted again.
func TestLateLoopsRefuseNewCalls(t *testing.T) {
	f, obs, unblock := lateFloor(t, routing.WithMaxLoopDelay(20*time.Millisecond))
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

	unblock()
	f.flush()
	byCaller := callsByCaller(t, f)
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
	f, obs, unblock := lateFloor(t)
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-third", Caller: "+84901000003", Hotline: "+842800"})
	unblock()
	f.flush()
	if got := obs.refused.Load(); got != 0 || f.media.HungUp("cust-third") {
		t.Fatalf("refused %d calls without a bound", got)
	}
	if n := len(callsByCaller(t, f)); n != 3 {
		t.Fatalf("%d calls, want all 3 admitted", n)
	}
}
