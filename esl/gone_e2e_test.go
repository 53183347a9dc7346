package esl

import (
	"slices"
	"testing"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestE2EGoneEndsGhostCall: FreeSWITCH loses an answered call's customer
// channel without an event. Gone finds it from show channels, and the
// engine's leg audit ends the call after two audits: the agent is
// released and the agent's channel hung up.
func TestE2EGoneEndsGhostCall(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialAnswer)
	f.available("a1")
	id := f.arrive(1, hotline)
	cust, agent := custUUID(1), legUUID(1)
	f.wantCall(id, routing.StateAnswered, "a1")

	legs := []media.LegID{media.LegID(cust), media.LegID(agent)}
	if gone, err := f.cl.Gone(f.ctx, legs); err != nil || len(gone) != 0 {
		t.Fatalf("Gone = %v, %v; want none", gone, err)
	}
	f.fs.vanish(cust)
	if gone, err := f.cl.Gone(f.ctx, legs); err != nil || !slices.Equal(gone, legs[:1]) {
		t.Fatalf("Gone after the customer vanished = %v, %v", gone, err)
	}
	f.clock.Advance(routing.DefaultLegAudit)
	f.settle()
	f.clock.Advance(routing.DefaultLegAudit)
	f.wantGone(id)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
}
