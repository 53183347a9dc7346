package esl

import (
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestE2EReplayInboundAnswered drives the real engine with the recorded
// FreeSWITCH session inbound-answered.jsonl, byte for byte: the frames
// are FreeSWITCH's own, not templates. Routing answers, holds, rings a1
// (the recorded leg uuid), bridges when a1 answers, and hangs a1's leg up
// after the caller's BYE (FreeSWITCH, recorded without
// park_after_bridge, already did: "-ERR No such channel!" is no error).
func TestE2EReplayInboundAnswered(t *testing.T) {
	const (
		cust = "c5266ea4-72a7-4ee3-9e79-53f909353ff3"
		a1   = "c82c1f7e-294e-47e9-b1de-8dc5ecd37549"
	)
	callID := fmt.Sprintf("c-%d-1", t0.UnixMilli()) // routing's first id on the fake clock
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+moh),
		rec(4, "bgapi originate {originate_timeout=18,ignore_early_media=true,park_after_bridge=true,"+
			"origination_caller_id_number="+caller+",origination_caller_id_name="+caller+",callfloor_call_id="+callID+"}"+
			"[origination_uuid="+a1+"]user/a1@127.0.0.1 &park()"),
		setPAB(cust),
		rec(5, "api uuid_bridge "+cust+" "+a1),
		extra("api uuid_kill "+a1+" NORMAL_CLEARING", apiResponse("-ERR No such channel!\n")),
	)
	fake := newFakeFS(t, script(t, "inbound-answered", loadTranscript(t, "inbound-answered.jsonl"), 1, steps))

	f := newFloorE2E(t)
	f.addr = fake.addr()
	f.newUUID = func() string { return a1 }
	f.available("a1") // before the recorded CHANNEL_PARK arrives
	f.start(true, routing.WithIDSequence(0))

	fake.waitPlayed("inbound-answered")
	f.wantGone(callID)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
	f.clock.Advance(30 * time.Second)
	f.wantAgent("a1", presence.SysAvailable, "")
	q, err := f.eng.Queue(f.ctx, f.admin, "sales")
	if err != nil {
		t.Fatal(err)
	}
	if q.AnsweredToday != 1 || q.Waiting != 0 {
		t.Errorf("sales queue after the call: answered %d, waiting %d", q.AnsweredToday, q.Waiting)
	}
	assertCommands(t, fake, wantCommands(steps)...)
}
