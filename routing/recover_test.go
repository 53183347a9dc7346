package routing_test

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// A restarted controller picks up live calls, ring timers, wrap-up timers
// and today's counters from the store.
func TestRestartPicksUpWhereItStopped(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addAgent("a3", presence.RoleAgent)
	f.addQueue("main", routing.RoundRobin, 30, []string{"a1", "a2", "a3"})
	f.miss("+84901000009") // rings a1, caller gives up: a1 available again
	// Call X talks to a2, then ends: a2 in wrap-up.
	x, cx := f.arrive("+84901000001", "+842800")
	f.wantCall(x, routing.StateRinging, "a2")
	f.answer(f.legOf("a2"))
	f.ended(cx, media.CauseNormal)
	f.wantSys("a2", presence.SysAfterCallWork)
	// Call Y rings a3.
	y, cy := f.arrive("+84901000002", "+842800")
	f.wantCall(y, routing.StateRinging, "a3")
	a3Leg := f.legOf("a3")

	f.advance(10 * time.Second)
	f.restart()

	if s := f.stats("", ""); s.Missed != 1 || s.Accepted != 1 {
		t.Fatalf("counters after restart: %+v", s)
	}
	f.wantCall(y, routing.StateRinging, "a3")
	f.advance(8 * time.Second) // Y's ring timeout (18 s) runs out on the new engine
	f.wantSys("a3", presence.SysRONA)
	if !f.media.HungUp(a3Leg) {
		t.Fatal("timed-out leg not hung up after restart")
	}
	// Round robin continues after a3: a1 (a2 is still wrapping up).
	f.wantCall(y, routing.StateRinging, "a1")
	f.advance(12 * time.Second) // a2's 30 s wrap-up ends on the new engine
	f.wantSys("a2", presence.SysAvailable)
	// Facts for legs dialled before the restart still find their call.
	f.answer(f.legOf("a1"))
	f.wantCall(y, routing.StateAnswered, "a1")
	f.ended(cy, media.CauseNormal)
	f.wantGone(y)
}

func TestLegsPresentEndsLostCalls(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1", "a2"})
	x, cx := f.arrive("+84901000001", "+842800")
	f.answer(f.legOf("a1"))
	y, cy := f.arrive("+84901000002", "+842800")
	f.answer(f.legOf("a2"))
	// After a reconnect the media path only still has call X's legs.
	f.report(media.LegsPresent{FactBase: f.at(), Legs: []media.LegSnapshot{
		{Leg: cx, Answered: true}, {Leg: f.legOf("a1"), Answered: true},
	}})
	f.wantCall(x, routing.StateAnswered, "a1")
	f.wantGone(y)
	f.wantSys("a2", presence.SysAvailable)
	_ = cy
}

// A caller who reached the media server while we were away shows up only
// in LegsPresent (Hotline set): queued like any arrival. Other legs no
// call holds are orphans and are hung up.
func TestLegsPresentAdoptsWaitingCallersAndHangsUpOrphans(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"}, "+842800")
	f.report(media.LegsPresent{FactBase: f.at(), Legs: []media.LegSnapshot{
		{Leg: "parked-1", Caller: "+84901000001", Hotline: "+842800"},
		{Leg: "stray-1", Answered: true},
	}})
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].CustomerNumber != "+84901000001" || calls[0].State != routing.StateRinging {
		t.Fatalf("calls = %+v", calls)
	}
	if a := f.media.Ops("answer"); len(a) != 1 || a[0].Leg != "parked-1" {
		t.Fatalf("answers = %+v", a)
	}
	if !f.media.HungUp("stray-1") || f.media.HungUp("parked-1") {
		t.Fatalf("hangups = %+v", f.media.Ops("hangup"))
	}
	// The same leg reported again (a second resync, or a late arrival) is
	// not a second call.
	f.report(media.CallArrived{FactBase: f.at(), Leg: "parked-1", Caller: "+84901000001", Hotline: "+842800"})
	f.report(media.LegsPresent{FactBase: f.at(), Legs: []media.LegSnapshot{
		{Leg: "parked-1", Caller: "+84901000001", Hotline: "+842800"}, {Leg: f.legOf("a1")},
	}})
	if calls, _ := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{}); len(calls) != 1 {
		t.Fatalf("calls = %+v", calls)
	}
	if f.media.HungUp(f.legOf("a1")) {
		t.Fatal("a leg routing dialled was taken for an orphan")
	}
}
