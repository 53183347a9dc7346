package esl

import (
	"testing"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestE2EOutboundClickToCall: the agent's device rings first (30 s); when
// a1 answers the customer's number is dialled through the gateway (45 s);
// on the customer's answer both are bridged; the customer hangs up.
func TestE2EOutboundClickToCall(t *testing.T) {
	f := newE2E(t)
	const number = "+84909999999"
	f.fs.setBehavior(dev("a1"), dialAnswer)
	f.fs.setBehavior("sofia/gateway/trunk/"+number, dialRing)
	a1, cust := legUUID(1), legUUID(2)

	v, err := f.eng.Originate(f.ctx, f.actor("a1"), "a1", number, "spring")
	if err != nil {
		t.Fatal(err)
	}
	id := v.ID
	f.wantCommands(
		"bgapi originate {originate_timeout=30,ignore_early_media=true,park_after_bridge=true,"+
			"origination_caller_id_number="+number+",origination_caller_id_name="+number+",callfloor_call_id="+id+"}"+
			"[origination_uuid="+a1+"]user/a1@127.0.0.1 &park()",
		// the customer sees the hotline of the agent's queue (sales).
		"bgapi originate {originate_timeout=45,ignore_early_media=true,park_after_bridge=true,"+
			"origination_caller_id_number=+842873000001,origination_caller_id_name=+842873000001,callfloor_call_id="+id+"}"+
			"[origination_uuid="+cust+"]sofia/gateway/trunk/"+number+" &park()",
	)
	f.wantCall(id, routing.StateRinging, "a1")
	f.wantAgent("a1", presence.SysRinging, id)

	f.fs.answerLeg(cust)
	f.wantCommands("api uuid_bridge " + a1 + " " + cust) // both carry park_after_bridge
	cv := f.wantCall(id, routing.StateAnswered, "a1")
	if cv.Direction != routing.DirectionOutbound || cv.Campaign == nil || *cv.Campaign != "spring" || cv.CustomerNumber != number {
		t.Errorf("outbound call view: %+v", cv)
	}
	f.wantAgent("a1", presence.SysTalking, id)

	f.fs.bye(cust)
	f.wantCommands("api uuid_kill " + a1 + " NORMAL_CLEARING")
	f.wantGone(id)
	f.wantAgent("a1", presence.SysAvailable, "") // outbound calls have no queue wrap-up
	if f.fs.alive(a1) {
		t.Error("a1's leg left up")
	}
}
