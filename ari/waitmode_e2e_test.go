package ari

import (
	"testing"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestE2EWaitModeRingback: a queue whose callers wait with ringback
// leaves the caller's channel unanswered and ringing (POST …/ring, no
// holding bridge, no music) until a1 answers; then the caller is answered
// and bridged with a1.
func TestE2EWaitModeRingback(t *testing.T) {
	h := startE2E(t)
	rb := media.HoldRingback
	if _, err := h.eng.UpdateQueue(h.ctx, h.admin, "sales", routing.QueueInput{WaitMode: &rb}); err != nil {
		t.Fatal(err)
	}
	h.available("a1")
	id, cust := h.arrive(caller)
	a1 := h.channelTo("a1")
	h.expectSeq("POST /channels/"+cust+"/ring", originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))
	h.waitCall(id, routing.StateRinging, "a1")

	h.f.Ring(a1)
	h.f.AnswerDevice(a1)
	h.waitCall(id, routing.StateAnswered, "a1")
	h.waitAgent("a1", presence.SysTalking, id)
	call := h.f.bridgeNamed("call-" + cust)
	h.expectSeq("POST /channels/"+cust+"/answer", "POST /bridges?name=call-"+cust+"&type=mixing",
		"POST /bridges/"+call+"/addChannel?channel="+esc(cust+","+a1))
	if s := h.stats(); s.Accepted != 1 || s.Talking != 1 {
		t.Fatalf("stats: %+v", s)
	}
}
