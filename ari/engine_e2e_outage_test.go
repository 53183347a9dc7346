package ari

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// A call reaches Stasis while no events socket is connected: Asterisk
// drops its StasisStart. The resync lists the caller's channel (in our
// application, with its hotline) in LegsPresent, and routing takes it
// like an arrival: answer, hold, ring a1.
func TestE2ECallArrivedWhileDisconnected(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	h.cut()
	cust := h.f.Inbound(caller, salesHotline)
	h.f.SetDown(false)
	h.expectPrefix(e2eReconnectRequests...)
	h.wantPickedUp(cust)
}

// The same across a controller restart: the call arrived while no
// controller ran.
func TestE2ECallArrivedDuringRestart(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	h.stop()
	cust := h.f.Inbound(caller, salesHotline)
	h.boot()
	h.wantPickedUp(cust)
}

// wantPickedUp checks that a caller's channel found by a resync becomes
// a call routed to a1, with the requests of any arrival.
func (h *e2e) wantPickedUp(cust string) {
	h.t.Helper()
	a1 := h.channelTo("a1")
	calls := h.callsSoon()
	if len(calls) != 1 || calls[0].CustomerNumber != caller || calls[0].Hotline != salesHotline {
		h.t.Fatalf("calls = %+v", calls)
	}
	id := calls[0].ID
	h.expectSeq(append(heldRequests(cust), originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))...)
	h.waitCall(id, routing.StateRinging, "a1")
	h.waitAgent("a1", presence.SysRinging, id)
}

// callsSoon lists the live calls once there are any, or after a second.
func (h *e2e) callsSoon() []routing.CallView {
	h.t.Helper()
	deadline := time.Now().Add(time.Second)
	for {
		h.flush()
		calls, err := h.eng.Calls(h.ctx, h.admin, routing.CallFilter{})
		if err != nil {
			h.t.Fatal(err)
		}
		if len(calls) > 0 || time.Now().After(deadline) {
			return calls
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A supervisor hangs a call up while Asterisk is unreachable: routing
// ends the call, but the DELETEs fail. The channels are still talking
// when the client reconnects; the hang-up routing asked for must still
// happen (the client retries it on resync).
func TestE2EHangupWhileAsteriskDown(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, _ := h.talking(caller)
	h.cut()
	if _, err := h.eng.Hangup(h.ctx, h.sup, id); err != nil {
		t.Fatal(err)
	}
	h.waitGone(id)
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	h.f.SetDown(false)
	h.expectChains(append(e2eReconnectRequests,
		"DELETE /channels/"+cust+"?reason_code=16", "DELETE /channels/"+a1+"?reason_code=16"))
	waitFor(t, func() bool { // the call bridge is kept, empty, for the next call
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		for _, b := range h.f.bridges {
			if len(b.chans) != 0 {
				return false
			}
		}
		return len(h.f.chans) == 0 && len(h.f.bridges) <= 1
	})
}

// The controller restarts while a supervisor listens: the supervisor's
// leg, its snoop and the spy bridge stay in Asterisk and the monitor in
// the store; the new client must keep them joined (not hang up the snoop
// and leave the supervisor in silence) so the monitor goes on: barge,
// then end.
func TestE2ERestartKeepsMonitor(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, _, a1, call := h.talking(caller)
	mon, dev, _ := h.startMonitor(id, caller, media.MonitorListen)
	h.f.AnswerDevice(dev)
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m != nil && m.Answered })
	waitFor(t, func() bool { return h.f.hasBridge("spy-" + a1) })
	snoop, spy := h.f.snoopOn(a1), h.f.bridgeNamed("spy-"+a1)
	h.f.takeRequests()

	h.restart()
	h.expectSeq() // nothing of the monitor is torn down
	h.waitMonitor(id, func(m *routing.MonitorView) bool {
		return m != nil && m.ID == mon.ID && m.Answered && m.Mode == media.MonitorListen
	})
	h.sup = h.actor("sup-sales")
	if v, err := h.eng.BargeMonitor(h.ctx, h.sup, mon.ID); err != nil || v.Mode != media.MonitorBarge {
		t.Fatalf("barge after restart = %+v, %v", v, err)
	}
	h.expectSeq("POST /bridges/"+spy+"/removeChannel?channel="+dev, "POST /bridges/"+call+"/addChannel?channel="+dev,
		"DELETE /channels/"+snoop, "DELETE /bridges/"+spy)
	if _, err := h.eng.EndMonitor(h.ctx, h.sup, mon.ID); err != nil {
		t.Fatal(err)
	}
	h.expectSeq("DELETE /channels/" + dev + "?reason_code=16")
	h.waitCall(id, routing.StateAnswered, "a1")
}

// The controller restarts while the caller waits on hold with music and
// nobody is free: the new client adopts the caller and the holding
// bridge, the engine recovers the waiting call, and when a1 becomes
// available the call is routed and connected as usual.
func TestE2ERestartWhileWaiting(t *testing.T) {
	h := startE2E(t)
	id, cust := h.arrive(caller)
	h.expectSeq(heldRequests(cust)...)
	h.restart()
	h.expectSeq()
	h.waitCall(id, routing.StateCalling, "")

	h.available("a1")
	a1 := h.channelTo("a1")
	h.expectSeq(originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))
	h.f.AnswerDevice(a1)
	h.waitCall(id, routing.StateAnswered, "a1")
	call := h.f.bridgeNamed("call-" + cust)
	h.expectChains(
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges?name=call-" + cust + "&type=mixing", "POST /bridges/" + call + "/addChannel?channel=" + esc(cust+","+a1)})
}

// The controller restarts while a1's phone rings for a call. The ringing
// channel is not in Stasis yet (Asterisk lists it under AppDial2), so
// nothing in GET /channels names it as ours; a1 answering afterwards
// must still connect the call.
func TestE2ERestartWhileRinging(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust := h.arrive(caller)
	a1 := h.channelTo("a1")
	h.expectSeq(append(heldRequests(cust), originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))...)
	h.f.Ring(a1)
	h.restart()
	h.flush()
	h.f.AnswerDevice(a1)
	h.waitCall(id, routing.StateAnswered, "a1")
	h.waitAgent("a1", presence.SysTalking, id)
	call := h.f.bridgeNamed("call-" + cust)
	h.expectChains(
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges?name=call-" + cust + "&type=mixing", "POST /bridges/" + call + "/addChannel?channel=" + esc(cust+","+a1)})
}

// An agent frees up while Asterisk is unreachable: the ring fails as
// unavailable (no RONA, the agent stays free), and once the client is
// back the call is routed to them.
func TestE2EAgentFreedDuringOutage(t *testing.T) {
	h := startE2E(t)
	id, cust := h.arrive(caller)
	h.expectSeq(heldRequests(cust)...)
	h.cut()
	h.available("a1")
	h.waitAgent("a1", presence.SysAvailable, "")
	h.waitCall(id, routing.StateCalling, "a1") // offered, the ring refused
	h.reconnect()
	h.advance(6 * time.Second) // past routing's 5 s skip of an agent it could not ring
	a1 := h.channelTo("a1")
	h.expectSeq(originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))
	h.waitCall(id, routing.StateRinging, "a1")
	h.waitAgent("a1", presence.SysRinging, id)
}
