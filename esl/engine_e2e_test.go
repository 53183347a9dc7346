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
