package ari

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// keptForReuse checks that a call's bridge outlived the call, empty in
// Asterisk, and that the client keeps it for the next call.
func (h *harness) keptForReuse(t *testing.T, bridge string) {
	t.Helper()
	waitFor(t, func() bool {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		b := h.c.bridges[bridge]
		return b != nil && b.spare && slices.Contains(h.c.spare, bridge)
	})
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	b := h.f.bridges[bridge]
	if b == nil || len(b.chans) != 0 {
		t.Fatalf("bridge %s in Asterisk: %+v, want kept and empty", bridge, b)
	}
}

// answeredAndEnded runs one call through a1 — held, rung, answered,
// bridged, the caller hanging up, a1 hung up — and returns its bridge,
// checked to be kept for reuse.
func (h *harness) answeredAndEnded(t *testing.T) (bridge string) {
	t.Helper()
	cust := h.inboundHeld(t)
	agent := h.dialAgent(t, "a1", 15*time.Second)
	h.answered(t, agent)
	bridge = h.connectFromHold(t, cust, agent)
	// The caller hangs up: StasisEnd only, no ChannelDestroyed.
	h.f.RemoteHangup(string(cust))
	h.rec.expect(t, media.LegEnded{Leg: cust, Cause: media.CauseNormal})
	h.hangup(t, agent)
	h.rec.expect(t, media.LegEnded{Leg: agent, Cause: media.CauseNormal})
	h.f.expectRequests("DELETE /channels/" + string(agent) + "?reason_code=16")
	h.keptForReuse(t, bridge)
	return bridge
}

// The next call goes into the bridge the last one left: no bridge is
// created or deleted, and the spare is no longer listed once taken.
func TestCallBridgeReused(t *testing.T) {
	h := start(t)
	call := h.answeredAndEnded(t)

	cust2 := h.inboundHeld(t)
	agent2 := h.dialAgent(t, "a2", 15*time.Second)
	h.answered(t, agent2)
	if err := h.c.Connect(h.ctx, cust2, agent2); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests(
		"DELETE /channels/"+string(cust2)+"/moh",
		"POST /bridges/"+call+"/addChannel?channel="+esc(string(cust2)+","+string(agent2)),
	)
	h.c.mu.Lock()
	spares, taken := len(h.c.spare), h.c.bridges[call].spare
	h.c.mu.Unlock()
	if spares != 0 || taken {
		t.Fatalf("after reuse: %d spares listed, bridge still marked spare %v", spares, taken)
	}
}

// A spare Asterisk no longer has (deleted behind our back, no event
// seen) costs one 404: the connect makes a new bridge and succeeds.
func TestVanishedSpareReplaced(t *testing.T) {
	h := start(t)
	call := h.answeredAndEnded(t)
	h.f.mu.Lock()
	delete(h.f.bridges, call) // silently: no BridgeDestroyed
	h.f.mu.Unlock()

	cust2 := h.inboundHeld(t)
	agent2 := h.dialAgent(t, "a2", 15*time.Second)
	h.answered(t, agent2)
	if err := h.c.Connect(h.ctx, cust2, agent2); err != nil {
		t.Fatalf("connect after the spare vanished: %v", err)
	}
	fresh := h.f.bridgeNamed("call-" + string(cust2))
	h.f.expectRequests(
		"DELETE /channels/"+string(cust2)+"/moh",
		"POST /bridges/"+call+"/addChannel?channel="+esc(string(cust2)+","+string(agent2)), // 404
		"POST /bridges?name=call-"+string(cust2)+"&type=mixing",
		"POST /bridges/"+fresh+"/addChannel?channel="+esc(string(cust2)+","+string(agent2)),
	)
	h.c.mu.Lock()
	_, stale := h.c.bridges[call]
	h.c.mu.Unlock()
	if stale {
		t.Fatal("the vanished spare is still tracked")
	}
}

// At most maxSpareBridges are kept: one more that empties is deleted, and
// bridges of other roles are never kept.
func TestSpareBridgesBounded(t *testing.T) {
	h := start(t)
	h.c.mu.Lock()
	for i := range maxSpareBridges {
		b := &brdg{id: fmt.Sprintf("kept-%d", i), role: roleCall, members: map[string]bool{}}
		h.c.bridges[b.id] = b
		h.c.retireBridge(b)
	}
	over := &brdg{id: "over", role: roleCall, members: map[string]bool{}}
	spy := &brdg{id: "spy", role: roleSpy, members: map[string]bool{}}
	h.c.bridges[over.id], h.c.bridges[spy.id] = over, spy
	h.c.retireBridge(over)
	h.c.retireBridge(spy)
	spares := len(h.c.spare)
	_, overKept := h.c.bridges["over"]
	_, spyKept := h.c.bridges["spy"]
	h.c.mu.Unlock()
	if spares != maxSpareBridges || overKept || spyKept {
		t.Fatalf("%d spares (want %d); over the bound kept %v; spy bridge kept %v", spares, maxSpareBridges, overKept, spyKept)
	}
	h.f.expectRequests("DELETE /bridges/over", "DELETE /bridges/spy")
}
