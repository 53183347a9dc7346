package routing_test

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestLegAuditEndsGhostCall: the media server loses an answered call's
// customer leg without a word (a lost BYE). The first audit only suspects
// it; the second, 20 s later, ends it as the path would have — within the
// floor's 60 s — and the agent is released into wrap-up.
func TestLegAuditEndsGhostCall(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 30, []string{"a1"}, "+842800")
	id, cust := f.arrive("+84901000001", "+842800")
	f.answer(f.legOf("a1"))
	f.wantCall(id, routing.StateAnswered, "a1")

	f.media.Vanish(cust)
	audits := f.media.Audits()
	f.advance(routing.DefaultLegAudit)
	if f.media.Audits() != audits+1 {
		t.Fatalf("audits = %d, want %d", f.media.Audits(), audits+1)
	}
	f.wantCall(id, routing.StateAnswered, "a1") // suspected only
	f.advance(routing.DefaultLegAudit)
	f.wantGone(id)
	f.wantSys("a1", presence.SysAfterCallWork)
	if !f.media.HungUp(f.legOf("a1")) {
		t.Error("the agent's leg was not hung up after the customer's vanished")
	}
}

// TestLegAuditLetsRealEndsWin: a leg the audit suspects whose end the
// media path then reports is not ended a second time, and a leg present
// again (a late answer to a slow listing) is not ended at all.
func TestLegAuditLetsRealEndsWin(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1", "a2"}, "+842800")
	id, cust := f.arrive("+84901000001", "+842800")
	f.answer(f.legOf("a1"))
	id2, cust2 := f.arrive("+84901000002", "+842800")
	f.answer(f.legOf("a2"))

	f.media.Vanish(cust)
	f.media.Vanish(cust2)
	f.advance(routing.DefaultLegAudit) // both suspected
	f.ended(cust, media.CauseNormal)   // the path's own news for the first
	f.wantGone(id)
	before := len(f.events(routing.EventCallEnded))
	f.advance(routing.DefaultLegAudit) // the second ends now; the first is not ended again
	f.wantGone(id2)
	if n := len(f.events(routing.EventCallEnded)) - before; n != 1 {
		t.Fatalf("%d call_ended events after the second audit, want 1", n)
	}
}

// TestLegAuditOff: WithLegAudit(0) never asks.
func TestLegAuditOff(t *testing.T) {
	f := newFloor(t, nil, time.Time{}, routing.WithLegAudit(0))
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"}, "+842800")
	f.arrive("+84901000001", "+842800")
	f.advance(3 * routing.DefaultLegAudit)
	if n := f.media.Audits(); n != 0 {
		t.Fatalf("%d audits with the audit off", n)
	}
}
