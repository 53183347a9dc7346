package esl

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// End-to-end flows: the reactive fake FreeSWITCH (simfs_test.go) ⇄
// Client ⇄ the real routing engine and presence over the memory store,
// on the bundled demo floor. Each flow asserts the exact ESL commands
// routing caused, in order, and the resulting call and agent states.

const moh = " local_stream://default aleg"

// TestE2EInboundAnsweredWrapUp: the caller parks, is answered and hears
// music; a1 is rung, answers and is bridged; the caller hangs up; a1
// wraps up for the queue's 30 s and is available again.
func TestE2EInboundAnsweredWrapUp(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialRing)
	f.available("a1")
	f.wantAgent("a1", presence.SysAvailable, "")

	id := f.arrive(1, hotline)
	cust, a1 := custUUID(1), legUUID(1)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		originateFor(1, id, "a1", "&park()"),
	)
	f.wantCall(id, routing.StateRinging, "a1")
	f.wantAgent("a1", presence.SysRinging, id)

	f.fs.answerLeg(a1)
	f.wantCommands(
		"api uuid_setvar "+cust+" park_after_bridge true",
		"api uuid_bridge "+cust+" "+a1,
	)
	v := f.wantCall(id, routing.StateAnswered, "a1")
	if v.AnsweredAt == nil || v.Queue != "sales" || v.Hotline != hotline || v.CustomerNumber != caller {
		t.Errorf("answered call view: %+v", v)
	}
	f.wantAgent("a1", presence.SysTalking, id)
	if p := f.fs.peerOf(cust); p != a1 {
		t.Errorf("FreeSWITCH bridged the caller to %q, want %s", p, a1)
	}
	s, err := f.eng.Stats(f.ctx, f.admin, "sales", "")
	if err != nil {
		t.Fatal(err)
	}
	if s.Accepted != 1 || s.Talking != 1 || s.Agents.Talking != 1 {
		t.Errorf("stats while talking: %+v", s)
	}

	// The caller hangs up: a1's leg parks (park_after_bridge) and routing
	// hangs it up.
	f.fs.bye(cust)
	f.wantCommands("api uuid_kill " + a1 + " NORMAL_CLEARING")
	f.wantGone(id)
	if f.fs.alive(a1) {
		t.Error("a1's leg is still up on FreeSWITCH")
	}
	f.wantAgent("a1", presence.SysAfterCallWork, "")
	f.advance(29 * time.Second)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
	f.advance(time.Second)
	f.wantAgent("a1", presence.SysAvailable, "")
	q, err := f.eng.Queue(f.ctx, f.admin, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if q.Waiting != 0 || q.AnsweredToday != 1 || q.AgentsAvailable != 1 {
		t.Errorf("queue after the call: waiting %d answered %d available %d", q.Waiting, q.AnsweredToday, q.AgentsAvailable)
	}
	f.wantCommands()
}

// answeredCall brings call n to "talking with a1" (a1 answers at once)
// and returns its id; the commands are checked.
func (f *e2e) answeredCall(n int, agent string, leg int) string {
	f.t.Helper()
	f.fs.setBehavior(dev(agent), dialAnswer)
	f.available(agent)
	id := f.arrive(n, hotline)
	cust := custUUID(n)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		originateFor(leg, id, agent, "&park()"),
		"api uuid_setvar "+cust+" park_after_bridge true",
		"api uuid_bridge "+cust+" "+legUUID(leg),
	)
	f.wantCall(id, routing.StateAnswered, agent)
	f.wantAgent(agent, presence.SysTalking, id)
	return id
}

// TestE2ENoAnswerByFreeSWITCH: FreeSWITCH's originate_timeout runs out
// first (CANCEL, NO_ANSWER): a1 goes to RONA and a2 is rung.
func TestE2ENoAnswerByFreeSWITCH(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialNoAnswer)
	f.fs.setBehavior(dev("a2"), dialAnswer)
	f.available("a1", "a2")
	id := f.arrive(1, hotline)
	cust, a1, a2 := custUUID(1), legUUID(1), legUUID(2)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		originateFor(1, id, "a1", "&park()"),
		// Routing makes sure a no-answer leg stops ringing; it is gone.
		"api uuid_kill "+a1+" NO_ANSWER",
		originateFor(2, id, "a2", "&park()"),
		"api uuid_setvar "+cust+" park_after_bridge true",
		"api uuid_bridge "+cust+" "+a2,
	)
	f.wantAgent("a1", presence.SysRONA, "")
	f.wantCall(id, routing.StateAnswered, "a2")
	f.wantAgent("a2", presence.SysTalking, id)
}

// TestE2ERingTimeoutKeepsQueuePosition: routing's own ring timeout (18 s)
// ends a1's ringing: a1 goes to RONA, the leg is killed, and when an
// agent frees up the call is offered before a newer one.
func TestE2ERingTimeoutKeepsQueuePosition(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialRing)
	f.fs.setBehavior(dev("a2"), dialRing)
	f.available("a1")
	first := f.arrive(1, hotline)
	f.wantCommands(
		"api uuid_answer "+custUUID(1),
		"api uuid_broadcast "+custUUID(1)+moh,
		originateFor(1, first, "a1", "&park()"),
	)
	f.advance(5 * time.Second)
	second := f.arrive(2, hotline)
	f.wantCommands(
		"api uuid_answer "+custUUID(2),
		"api uuid_broadcast "+custUUID(2)+moh,
	)
	f.wantCall(second, routing.StateCalling, "")

	f.advance(13 * time.Second) // a1 rang for 18 s
	f.wantCommands("api uuid_kill " + legUUID(1) + " NO_ANSWER")
	if f.fs.alive(legUUID(1)) {
		t.Error("a1's device still rings on FreeSWITCH")
	}
	f.wantAgent("a1", presence.SysRONA, "")
	// Back in the queue; the view keeps the agent last rung (as routing's
	// own RONA tests expect).
	f.wantCall(first, routing.StateCalling, "a1")
	q, err := f.eng.Queue(f.ctx, f.admin, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if q.Waiting != 2 {
		t.Errorf("queue waiting = %d, want 2", q.Waiting)
	}

	f.available("a2") // the older call goes first
	f.wantCommands(originateFor(2, first, "a2", "&park()"))
	f.wantCall(first, routing.StateRinging, "a2")
	f.wantCall(second, routing.StateCalling, "")
	f.fs.answerLeg(legUUID(2))
	f.wantCommands(
		"api uuid_setvar "+custUUID(1)+" park_after_bridge true",
		"api uuid_bridge "+custUUID(1)+" "+legUUID(2),
	)
	f.wantCall(first, routing.StateAnswered, "a2")
}

// TestE2EBusyNextAgentWithoutRONA: a1's phone answers 486: RONA
// (README.md, "Floor rules") and a2 is rung.
func TestE2EBusyNextAgentWithoutRONA(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialBusy)
	f.fs.setBehavior(dev("a2"), dialAnswer)
	f.available("a1", "a2")
	id := f.arrive(1, hotline)
	cust := custUUID(1)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		originateFor(1, id, "a1", "&park()"),
		originateFor(2, id, "a2", "&park()"),
		"api uuid_setvar "+cust+" park_after_bridge true",
		"api uuid_bridge "+cust+" "+legUUID(2),
	)
	f.wantAgent("a1", presence.SysRONA, "")
	f.wantCall(id, routing.StateAnswered, "a2")
	f.wantAgent("a2", presence.SysTalking, id)
}

// TestE2EUnregisteredNextAgent: a1 has no registered device: the job's
// -ERR USER_NOT_REGISTERED (no channel events at all) moves the call on.
func TestE2EUnregisteredNextAgent(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialUnregistered)
	f.fs.setBehavior(dev("a2"), dialAnswer)
	f.available("a1", "a2")
	id := f.arrive(1, hotline)
	cust := custUUID(1)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		originateFor(1, id, "a1", "&park()"),
		originateFor(2, id, "a2", "&park()"),
		"api uuid_setvar "+cust+" park_after_bridge true",
		"api uuid_bridge "+cust+" "+legUUID(2),
	)
	f.wantAgent("a1", presence.SysRONA, "")
	f.wantCall(id, routing.StateAnswered, "a2")
}

// TestE2EAbandonedWhileRinging: the caller hangs up while a1 rings: the
// ringing leg is cancelled, a1 is free again (no RONA, no wrap-up), and
// the call counts as abandoned / missed.
func TestE2EAbandonedWhileRinging(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialRing)
	f.available("a1")
	id := f.arrive(1, hotline)
	cust, a1 := custUUID(1), legUUID(1)
	f.wantCommands("api uuid_answer "+cust, "api uuid_broadcast "+cust+moh, originateFor(1, id, "a1", "&park()"))
	f.advance(7 * time.Second)

	f.fs.bye(cust)
	f.wantCommands("api uuid_kill " + a1 + " NORMAL_CLEARING")
	f.wantGone(id)
	f.wantAgent("a1", presence.SysAvailable, "")
	if f.fs.alive(a1) {
		t.Error("a1 still rings")
	}
	q, err := f.eng.Queue(f.ctx, f.admin, "sales")
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.eng.Stats(f.ctx, f.admin, "sales", "")
	if err != nil {
		t.Fatal(err)
	}
	if q.AbandonedToday != 1 || q.AnsweredToday != 0 || q.Waiting != 0 || s.Missed != 1 || s.Accepted != 0 {
		t.Errorf("after an abandoned call: queue abandoned %d answered %d waiting %d; stats missed %d accepted %d",
			q.AbandonedToday, q.AnsweredToday, q.Waiting, s.Missed, s.Accepted)
	}
}
