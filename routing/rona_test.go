package routing_test

import (
	"slices"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
)

func TestRONANextAgentRungAtOnce(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.RoundRobin, 0, []string{"a1", "a2"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.wantCall(id, routing.StateRinging, "a1")
	leg1 := f.legOf("a1")

	f.advance(17 * time.Second)
	f.wantSys("a1", presence.SysRinging)
	f.advance(time.Second)
	f.wantSys("a1", presence.SysRONA)
	if !f.media.HungUp(leg1) {
		t.Fatal("timed-out leg not hung up")
	}
	f.wantCall(id, routing.StateRinging, "a2")
	f.wantSys("a2", presence.SysRinging)
	// The path's own LegEnded for the leg we timed out changes nothing.
	f.ended(leg1, media.CauseCancelled)
	f.wantSys("a1", presence.SysRONA)
	f.wantCall(id, routing.StateRinging, "a2")
}

func TestRONAKeepsOriginalPositionAndAgentOutOfRouting(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.setStatus("a2", presence.StatusLunchBreak)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1", "a2"})

	x, _ := f.arrive("+84901000001", "+842800")
	f.wantCall(x, routing.StateRinging, "a1")
	f.advance(5 * time.Second)
	y, _ := f.arrive("+84901000002", "+842800")
	f.wantCall(y, routing.StateCalling, "")

	// a1 lets X ring out via the media path's own no-answer.
	f.ended(f.legOf("a1"), media.CauseNoAnswer)
	f.wantSys("a1", presence.SysRONA)
	xv := f.wantCall(x, routing.StateCalling, "a1")
	if xv.StateSeconds != 5 || !xv.StateSince.Equal(t0) {
		t.Fatalf("state_seconds = %d since %v after returning to the queue; want the queue wait (5 s since arrival)", xv.StateSeconds, xv.StateSince)
	}
	// Ticks pass; a RONA agent is never offered a call.
	f.advance(10 * time.Second)
	f.wantSys("a1", presence.SysRONA)
	f.wantCall(y, routing.StateCalling, "")

	// a2 becomes available: X (older) goes first, not Y.
	f.setStatus("a2", presence.StatusAvailable)
	f.wantCall(x, routing.StateRinging, "a2")
	f.wantCall(y, routing.StateCalling, "")

	// a1 chooses available: out of RONA and gets Y.
	f.setStatus("a1", presence.StatusAvailable)
	f.wantSys("a1", presence.SysRinging)
	f.wantCall(y, routing.StateRinging, "a1")
}

// A routed call that cannot reach the agent's device — whatever the
// cause the path reports — RONAs the agent exactly as a ring timeout
// does: the call goes back to its queue at its original position and the
// next agent is rung at once (README.md, "Floor rules").
func TestUnreachableDeviceIsRONA(t *testing.T) {
	for _, cause := range []media.Cause{media.CauseNoAnswer, media.CauseBusy, media.CauseUnreachable, media.CauseRejected, media.CauseFailed, media.CauseNormal} {
		t.Run(string(cause), func(t *testing.T) {
			f := newFloor(t, nil, time.Time{})
			f.addAgent("a1", presence.RoleAgent)
			f.addAgent("a2", presence.RoleAgent)
			f.addQueue("main", routing.RoundRobin, 0, []string{"a1", "a2"})
			x, _ := f.arrive("+84901000001", "+842800")
			f.advance(3 * time.Second)
			y, _ := f.arrive("+84901000002", "+842800")
			f.wantCall(x, routing.StateRinging, "a1")
			f.wantCall(y, routing.StateRinging, "a2")
			f.ended(f.legOf("a1"), cause)
			f.wantSys("a1", presence.SysRONA)
			// X keeps its original position: it waits from its arrival,
			// ahead of Y, and a1 is never offered it again.
			xv := f.wantCall(x, routing.StateCalling, "a1")
			if !xv.StateSince.Equal(t0) {
				t.Fatalf("state_since = %v after %s; want the original arrival %v", xv.StateSince, cause, t0)
			}
			f.advance(10 * time.Second)
			f.wantSys("a1", presence.SysRONA)
			f.wantCall(x, routing.StateCalling, "a1")
			// The next free agent takes X (older) before anything newer.
			f.ended(f.legOf("a2"), cause)
			f.wantSys("a2", presence.SysRONA)
			f.setStatus("a2", presence.StatusAvailable)
			f.wantCall(x, routing.StateRinging, "a2")
			f.wantCall(y, routing.StateCalling, "a2")
		})
	}
}

// The next agent is rung at once, not after a skip window.
func TestUnreachableDeviceNextAgentAtOnce(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.RoundRobin, 0, []string{"a1", "a2"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.ended(f.legOf("a1"), media.CauseBusy)
	f.wantSys("a1", presence.SysRONA)
	f.wantCall(id, routing.StateRinging, "a2")
	f.wantSys("a2", presence.SysRinging)
}

// A Dial refused at once as unreachable (no registered device) is RONA
// too, so an available agent without a device is not retried for ever.
func TestDialUnreachableIsRONA(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "dial" && c.Dial.Target.AgentID == "a1" {
			return media.ErrUnreachable
		}
		return nil
	}
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.RoundRobin, 0, []string{"a1", "a2"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.wantSys("a1", presence.SysRONA)
	f.wantCall(id, routing.StateRinging, "a2")
	// a2 lets it ring out too: nobody is routable, the call waits and a1
	// is not dialled again on later ticks.
	f.advance(18 * time.Second)
	f.wantSys("a2", presence.SysRONA)
	f.advance(30 * time.Second)
	f.wantCall(id, routing.StateCalling, "a2")
	if n := len(f.media.Dials()); n != 1 {
		t.Fatalf("%d dials recorded, want only a2's (a1's refused dial is not recorded)", n)
	}
}

// A Dial that fails because the media path is down is not the agent's
// fault: no RONA.
func TestDialMediaDownIsNotRONA(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "dial" {
			return media.ErrMediaUnavailable
		}
		return nil
	}
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.RoundRobin, 0, []string{"a1"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.wantSys("a1", presence.SysAvailable)
	f.wantCall(id, routing.StateCalling, "a1")
}

// ring_all: one unreachable device RONAs its agent; the others keep
// ringing and the call stays with them.
func TestRingAllUnreachableForkRONAsOnlyThatAgent(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	for _, id := range []string{"a1", "a2"} {
		f.addAgent(id, presence.RoleAgent)
	}
	f.addQueue("main", routing.RingAll, 0, []string{"a1", "a2"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.ended(f.legOf("a1"), media.CauseUnreachable)
	f.wantSys("a1", presence.SysRONA)
	f.wantSys("a2", presence.SysRinging)
	if c := f.call(id); c.State != routing.StateRinging {
		t.Fatalf("call = %+v, want still ringing a2", c)
	}
	f.answer(f.legOf("a2"))
	f.wantCall(id, routing.StateAnswered, "a2")
}

func TestRingAllFirstAnswerWins(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	for _, id := range []string{"a1", "a2", "a3"} {
		f.addAgent(id, presence.RoleAgent)
	}
	dist := presence.DistAppSIP
	if _, err := f.agents.UpdateAgent(f.ctx, f.admin, "a2", presence.AgentInput{Distribution: &dist}); err != nil {
		t.Fatal(err)
	}
	f.addQueue("main", routing.RingAll, 0, []string{"a1", "a2", "a3"})
	id, cust := f.arrive("+84901000001", "+842800")
	if n := len(f.media.Dials()); n != 3 {
		t.Fatalf("ring_all dialled %d agents, want 3", n)
	}
	d2, _ := f.media.DialOf("a2")
	if d2.Dial.Target.Distribution != presence.DistAppSIP {
		t.Fatalf("a2 dialled with %q, want app_sip (media forks app + phone)", d2.Dial.Target.Distribution)
	}
	for _, a := range []string{"a1", "a2", "a3"} {
		f.wantSys(a, presence.SysRinging)
	}
	f.answer(d2.Result)
	f.wantCall(id, routing.StateAnswered, "a2")
	f.wantSys("a2", presence.SysTalking)
	for _, a := range []string{"a1", "a3"} {
		f.wantSys(a, presence.SysAvailable)
		if !f.media.HungUp(f.legOf(a)) {
			t.Fatalf("losing leg of %s not cancelled", a)
		}
	}
	// A late answer from a cancelled leg is ignored.
	f.answer(f.legOf("a1"))
	f.wantCall(id, routing.StateAnswered, "a2")
	f.wantSys("a1", presence.SysAvailable)
	con := f.media.Ops("connect")
	if len(con) != 1 || con[0].Leg != cust || con[0].Other != d2.Result {
		t.Fatalf("connects = %+v", con)
	}
}

// With WithAgentEvents a status chosen anywhere (here straight through
// presence, nobody calling Kick) re-evaluates the queues at once, without
// waiting for a tick (the fake clock never ticks here).
func TestAgentEventsKickDistribution(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.restartWith(routing.WithAgentEvents(f.st))
	f.addAgent("a1", presence.RoleAgent)
	f.setStatus("a1", presence.StatusLunchBreak)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.wantCall(id, routing.StateCalling, "")
	st := presence.StatusAvailable
	if _, err := f.agents.SetStatus(f.ctx, presence.System, "a1", &st, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for f.call(id).State != routing.StateRinging {
		if time.Now().After(deadline) {
			t.Fatal("the agent event did not trigger distribution")
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.flush()
	f.wantSys("a1", presence.SysRinging)
}

// While the media path is down the dispatcher does not go on reserving
// agents it cannot ring (status churn, history rows); it retries later.
func TestMediaDownHoldsOffers(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	down := true
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "dial" && down {
			return media.ErrMediaUnavailable
		}
		return nil
	}
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1", "a2"})
	rows := func() int {
		h, err := f.agents.History(f.ctx, f.admin, "a2", time.Time{}, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		return len(h)
	}
	before := rows()
	id, _ := f.arrive("+84901000001", "+842800") // a1's Dial fails: media down
	f.advance(4 * time.Second)
	f.wantCall(id, routing.StateCalling, "a1")
	if got := rows(); got != before {
		t.Fatalf("a2 was reserved while the media path was down (history %d → %d)", before, got)
	}
	down = false
	f.advance(2 * time.Second)
	f.wantCall(id, routing.StateRinging, "a2")
}

// A ring_all call shows every agent being rung while it rings (views and
// "call" events), and the agent who answered afterwards.
func TestRingAllShowsRingingAgents(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	for _, id := range []string{"a1", "a2", "a3"} {
		f.addAgent(id, presence.RoleAgent)
	}
	f.addQueue("main", routing.RingAll, 0, []string{"a1", "a2", "a3"})
	ringing := func(v routing.CallView) []string {
		got := slices.Clone(v.RingingAgents)
		slices.Sort(got)
		return got
	}
	id, _ := f.arrive("+84901000001", "+842800")
	if got := ringing(f.call(id)); !slices.Equal(got, []string{"a1", "a2", "a3"}) {
		t.Fatalf("ringing_agents = %v, want a1 a2 a3", got)
	}
	evs := f.events(routing.EventCall)
	if last := evs[len(evs)-1]; len(last["ringing_agents"].([]any)) != 3 {
		t.Fatalf("last call event = %v, want three ringing agents", last)
	}
	f.ended(f.legOf("a1"), media.CauseBusy)
	if got := ringing(f.call(id)); !slices.Equal(got, []string{"a2", "a3"}) {
		t.Fatalf("ringing_agents after a1 failed = %v, want a2 a3", got)
	}
	f.answer(f.legOf("a3"))
	v := f.wantCall(id, routing.StateAnswered, "a3")
	if v.RingingAgents == nil || len(v.RingingAgents) != 0 {
		t.Fatalf("ringing_agents once answered = %#v, want []", v.RingingAgents)
	}
	evs = f.events(routing.EventCall)
	if last := evs[len(evs)-1]; last["agent"] != "a3" || len(last["ringing_agents"].([]any)) != 0 {
		t.Fatalf("last call event = %v, want agent a3 and nobody ringing", last)
	}
}
