package routing_test

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
)

func TestInboundAnsweredAndWrapUp(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addGroup("sales")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addQueue("main", routing.LongestIdle, 30, []string{"a1"}, "+842800")

	id, cust := f.arrive("+84901000001", "+842800")
	if hold := f.media.Ops("hold"); len(hold) != 1 || hold[0].Hold != media.HoldMusic || hold[0].Leg != cust {
		t.Fatalf("holds = %+v, want music on the customer leg", hold)
	}
	c := f.wantCall(id, routing.StateRinging, "a1")
	if c.Queue != "main" || c.Direction != "inbound" || c.Hotline != "+842800" {
		t.Fatalf("call = %+v", c)
	}
	f.wantSys("a1", presence.SysRinging)
	d, _ := f.media.DialOf("a1")
	if d.Dial.Timeout != 18*time.Second || d.Dial.CallerID != "+84901000001" || d.Dial.Customer != cust {
		t.Fatalf("dial = %+v", d.Dial)
	}

	f.advance(4 * time.Second)
	if c = f.call(id); c.StateSeconds != 4 {
		t.Fatalf("queue wait = %d, want 4", c.StateSeconds)
	}
	f.answer(d.Result)
	f.advance(7 * time.Second)
	c = f.wantCall(id, routing.StateAnswered, "a1")
	if c.StateSeconds != 7 {
		t.Fatalf("talk time = %d, want 7", c.StateSeconds)
	}
	if c.AnsweredAt == nil || !c.AnsweredAt.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("answered_at = %v", c.AnsweredAt)
	}
	if con := f.media.Ops("connect"); len(con) != 1 || con[0].Leg != cust || con[0].Other != d.Result {
		t.Fatalf("connect = %+v", con)
	}
	f.wantSys("a1", presence.SysTalking)
	if a := f.agent("a1"); a.CallID == nil || *a.CallID != id {
		t.Fatalf("agent call_id = %v", a.CallID)
	}

	f.advance(53 * time.Second)
	f.ended(cust, media.CauseNormal)
	f.wantGone(id)
	if !f.media.HungUp(d.Result) {
		t.Fatal("agent leg not hung up after the caller left")
	}
	f.wantSys("a1", presence.SysAfterCallWork)
	ended := f.events(routing.EventCallEnded)
	if len(ended) != 1 || ended[0]["id"] != id || ended[0]["ended"].(map[string]any)["reason"] != "caller hung up" {
		t.Fatalf("call_ended events = %v", ended)
	}

	f.advance(29 * time.Second)
	f.wantSys("a1", presence.SysAfterCallWork)
	f.advance(time.Second)
	f.wantSys("a1", presence.SysAvailable)
}

func TestWrapUpEndsEarly(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 10, []string{"a1"})
	id, cust := f.arrive("+84901000001", "+842800")
	f.answer(f.legOf("a1"))
	f.ended(cust, media.CauseNormal)
	f.wantGone(id)
	f.wantSys("a1", presence.SysAfterCallWork)
	if _, err := f.agents.EndWrapUp(f.ctx, presence.Actor{ID: "a1", Role: presence.RoleAgent}, "a1"); err != nil {
		t.Fatal(err)
	}
	f.eng.Kick()
	f.flush()
	f.wantSys("a1", presence.SysAvailable)
	// A new call reaches the agent at once, and the stale timer changes nothing.
	id2, _ := f.arrive("+84901000002", "+842800")
	f.wantCall(id2, routing.StateRinging, "a1")
	f.advance(10 * time.Second)
	f.wantSys("a1", presence.SysRinging)
}

func TestAgentHangsUp(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"})
	id, cust := f.arrive("+84901000001", "+842800")
	leg := f.legOf("a1")
	f.answer(leg)
	f.ended(leg, media.CauseNormal)
	f.wantGone(id)
	if !f.media.HungUp(cust) {
		t.Fatal("customer not hung up after the agent left")
	}
	f.wantSys("a1", presence.SysAvailable) // no wrap-up configured
	if s := f.stats("", ""); s.Accepted != 1 || s.Missed != 0 {
		t.Fatalf("stats = %+v", s)
	}
}

func TestCallerAbandonsWhileRinging(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 30, []string{"a1"})
	id, cust := f.arrive("+84901000001", "+842800")
	leg := f.legOf("a1")
	f.ended(cust, media.CauseNormal)
	f.wantGone(id)
	if !f.media.HungUp(leg) {
		t.Fatal("ringing agent leg not cancelled")
	}
	f.wantSys("a1", presence.SysAvailable) // rung, never talked: no wrap-up
	q, err := f.eng.Queue(f.ctx, f.admin, "main")
	if err != nil {
		t.Fatal(err)
	}
	if q.AbandonedToday != 1 || q.AnsweredToday != 0 {
		t.Fatalf("queue = %+v", q)
	}
	// The ring timer of the cancelled leg must not RONA the agent later.
	f.advance(30 * time.Second)
	f.wantSys("a1", presence.SysAvailable)
}

func TestUnknownHotlineGoesToDefaultQueue(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("b1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"})
	f.addQueue("sales", routing.LongestIdle, 0, []string{"b1"}, "+842801")
	id, _ := f.arrive("+84901000001", "+849999")
	c := f.wantCall(id, routing.StateRinging, "a1")
	if c.Queue != "main" {
		t.Fatalf("queue = %s", c.Queue)
	}
	id2, _ := f.arrive("+84901000002", "+842801")
	if c := f.wantCall(id2, routing.StateRinging, "b1"); c.Queue != "sales" {
		t.Fatalf("queue = %s", c.Queue)
	}
}

func TestSignallingOnlyPathHoldsWithRingback(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "answer" {
			return media.ErrNotSupported
		}
		return nil
	}
	f.addQueue("main", routing.LongestIdle, 0, []string{})
	id, cust := f.arrive("+84901000001", "+842800")
	f.wantCall(id, routing.StateCalling, "")
	if hold := f.media.Ops("hold"); len(hold) != 1 || hold[0].Hold != media.HoldRingback || hold[0].Leg != cust {
		t.Fatalf("holds = %+v, want ringback", hold)
	}
}

func TestCallStateTransitions(t *testing.T) {
	states := []routing.CallState{routing.StateCalling, routing.StateRinging, routing.StateAnswered}
	allowed := map[[2]routing.CallState]bool{
		{routing.StateCalling, routing.StateRinging}:  true, // dispatcher offers
		{routing.StateRinging, routing.StateAnswered}: true, // answer
		{routing.StateRinging, routing.StateCalling}:  true, // RONA / busy: back to the queue
		{routing.StateAnswered, routing.StateRinging}: true, // transfer, take over
	}
	for _, from := range states {
		for _, to := range states {
			if from == to {
				continue
			}
			if got := routing.CanMove(from, to); got != allowed[[2]routing.CallState{from, to}] {
				t.Errorf("CanMove(%s, %s) = %v", from, to, got)
			}
		}
	}
}
