package ari

import (
	"slices"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// TestGone: a leg is gone once Asterisk no longer lists its channel; a
// ringing dial is not gone while its channel is listed; a leg nobody
// knows is gone unless Asterisk has a channel of that id.
func TestGone(t *testing.T) {
	h := start(t)
	cust := media.LegID(h.f.Inbound("+84901234567", "+842873000001"))
	h.rec.expect(t, media.CallArrived{Leg: cust, Caller: "+84901234567", Hotline: "+842873000001"})
	dial, err := h.c.Dial(h.ctx, media.DialRequest{CallID: "c", Target: agentTarget("a1"), Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.f.takeRequests()
	legs := []media.LegID{cust, dial, "1795288117.999"}
	gone, err := h.c.Gone(h.ctx, legs)
	if err != nil || !slices.Equal(gone, []media.LegID{"1795288117.999"}) {
		t.Fatalf("Gone = %v, %v; want only the unknown leg", gone, err)
	}
	h.f.Vanish(string(cust))
	h.f.Vanish(string(dial))
	if gone, err = h.c.Gone(h.ctx, legs); err != nil || !slices.Equal(gone, legs) {
		t.Fatalf("Gone after the channels vanished = %v, %v; want all", gone, err)
	}
	if reqs := h.f.takeRequests(); len(reqs) != 2 || reqs[0] != "GET /channels" {
		t.Fatalf("requests %q, want one GET /channels per audit", reqs)
	}
}

// TestE2EGhostCallEndsByLegAudit: Asterisk loses the caller's channel of
// an answered call with no event reaching callfloor. The engine's leg
// audit finds it gone twice (GET /channels each time) and ends the call:
// the agent's channel is hung up and the agent wraps up.
func TestE2EGhostCallEndsByLegAudit(t *testing.T) {
	h := startE2EAudit(t, 20*time.Second)
	h.available("a1")
	id, cust, a1, _ := h.talking(caller)
	h.f.Vanish(cust)
	h.advance(20 * time.Second)
	h.expectSeq("GET /channels") // first audit: suspected
	h.advance(20 * time.Second)
	h.waitGone(id)
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	h.expectSeq("GET /channels", "DELETE /channels/"+a1+"?reason_code=16")
}
