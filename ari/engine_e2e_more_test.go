package ari

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// Outbound click-to-call: a1's device rings first (30 s), on answer the
// customer's number is dialled through the trunk (45 s), on answer both
// are bridged; the customer hangs up; no queue, so no wrap-up.
func TestE2EOutboundClickToCall(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	const number = "+84909998877"
	v, err := h.eng.Originate(h.ctx, h.admin, "a1", number, "")
	if err != nil {
		t.Fatal(err)
	}
	a1 := h.channelTo("a1")
	h.expectSeq(originate("agent,a1,"+v.ID, number, a1, "PJSIP/a1", 30))
	h.waitCall(v.ID, routing.StateRinging, "a1")
	h.waitAgent("a1", presence.SysRinging, v.ID)

	h.f.AnswerDevice(a1)
	cust := h.channelTo(number + "@trunk")
	h.expectSeq(originate("number,"+number+","+v.ID, "+842873000001", cust, "PJSIP/"+number+"@trunk", 45))
	h.waitCall(v.ID, routing.StateRinging, "a1")

	h.f.Ring(cust)
	h.f.AnswerDevice(cust)
	h.waitCall(v.ID, routing.StateAnswered, "a1")
	h.waitAgent("a1", presence.SysTalking, v.ID)
	call := h.f.bridgeNamed("call-" + a1)
	h.expectSeq("POST /bridges?name=call-"+a1+"&type=mixing", "POST /bridges/"+call+"/addChannel?channel="+esc(a1+","+cust))

	h.f.RemoteHangup(cust)
	h.waitGone(v.ID)
	h.expectSeq("DELETE /channels/" + a1 + "?reason_code=16")
	h.waitAgent("a1", presence.SysAvailable, "")
	if s := h.stats(); s.Accepted != 0 || s.Missed != 0 {
		t.Fatalf("an outbound call counts as neither accepted nor missed: %+v", s)
	}
}

// The customer of an outbound call does not answer (cause 19): the call
// ends and the agent's leg is hung up.
func TestE2EOutboundCustomerNoAnswer(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	const number = "+84909998877"
	v, err := h.eng.Originate(h.ctx, h.admin, "a1", number, "")
	if err != nil {
		t.Fatal(err)
	}
	a1 := h.channelTo("a1")
	h.f.AnswerDevice(a1)
	cust := h.channelTo(number + "@trunk")
	h.f.NoAnswer(cust)
	h.waitGone(v.ID)
	h.expectSeq(originate("agent,a1,"+v.ID, number, a1, "PJSIP/a1", 30),
		originate("number,"+number+","+v.ID, "+842873000001", cust, "PJSIP/"+number+"@trunk", 45),
		"DELETE /channels/"+cust+"?reason_code=19", // routing makes sure it stops ringing (404: gone)
		"DELETE /channels/"+a1+"?reason_code=16")
	h.waitAgent("a1", presence.SysAvailable, "")
}

// The caller hangs up while a2 (app and personal number) rings: both
// devices stop, a2 is free again, the call is abandoned (missed).
func TestE2ECallerAbandonsWhileRinging(t *testing.T) {
	h := startE2E(t)
	h.available("a2")
	id, cust := h.arrive(caller)
	dev, num := h.channelTo("a2"), h.channelTo("a2-desk")
	h.expectSeq(append(heldRequests(cust), originate("agent,a2,"+id, caller, dev, "PJSIP/a2", 18),
		originate("agent,a2,"+id, caller, num, "PJSIP/a2-desk", 18))...)
	h.f.Ring(num)
	h.f.RemoteHangup(cust)
	h.waitGone(id)
	h.waitAgent("a2", presence.SysAvailable, "")
	// The fork's devices in either order.
	h.expectChains([]string{"DELETE /channels/" + dev + "?reason_code=16"}, []string{"DELETE /channels/" + num + "?reason_code=16"})
	if s := h.stats(); s.Missed != 1 || s.Accepted != 0 {
		t.Fatalf("stats: %+v", s)
	}
	if q := h.salesQueue(); q.AbandonedToday != 1 || q.Waiting != 0 {
		t.Fatalf("queue: %+v", q)
	}
}

// A forked ring (a2: app and personal number) runs out on the engine's
// own ring timeout: both devices are hung up with cause 19, a2 is RONA.
func TestE2EForkRingTimeout(t *testing.T) {
	h := startE2E(t)
	h.available("a2")
	id, cust := h.arrive(caller)
	dev, num := h.channelTo("a2"), h.channelTo("a2-desk")
	h.expectSeq(append(heldRequests(cust), originate("agent,a2,"+id, caller, dev, "PJSIP/a2", 18),
		originate("agent,a2,"+id, caller, num, "PJSIP/a2-desk", 18))...)
	h.f.Ring(dev)
	h.advance(18 * time.Second)
	h.waitAgent("a2", presence.SysRONA, "")
	h.waitCall(id, routing.StateCalling, "a2")
	h.expectChains([]string{"DELETE /channels/" + dev + "?reason_code=19"}, []string{"DELETE /channels/" + num + "?reason_code=19"})
}

// A monitor whose supervisor's device cannot be reached is refused, and
// the call has no monitor.
func TestE2EMonitorUnreachableDevice(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, _, _, _ := h.talking(caller)
	// The admin rings on PJSIP/admin, which has no contact.
	_, err := h.eng.StartMonitor(h.ctx, h.admin, id, media.MonitorListen, "")
	if !errors.Is(err, media.ErrUnreachable) {
		t.Fatalf("monitor by an unreachable admin = %v, want ErrUnreachable", err)
	}
	if got := h.peek(); len(got) != 1 || channelIDOf(got[0]) == "" {
		t.Fatalf("requests %q, want one originate", got)
	}
	h.expectSeq(originate("supervisor,admin,"+id, caller, channelIDOf(h.peek()[0]), "PJSIP/admin", 18))
	if m := h.monitorOf(id); m != nil {
		t.Fatalf("monitor %+v after a refused start", m)
	}
	// A device given with the request is rung instead.
	mon, err := h.eng.StartMonitor(h.ctx, h.admin, id, media.MonitorListen, "PJSIP/sup-sales")
	if err != nil {
		t.Fatal(err)
	}
	dev := h.channelTo("sup-sales")
	h.expectSeq(originate("supervisor,admin,"+id, caller, dev, "PJSIP/sup-sales", 18))
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m != nil && m.ID == mon.ID })
}

// The caller hangs up just as Asterisk creates the call bridge for them
// and a1: the connect fails, the call ends, a1 wraps up, the new bridge
// is removed and a1's leg hung up — nothing is left in Asterisk.
func TestE2ECallerHangsUpWhileConnecting(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust := h.arrive(caller)
	a1 := h.channelTo("a1")
	h.expectSeq(append(heldRequests(cust), originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))...)
	h.f.mu.Lock()
	h.f.before = func(req string) {
		if req == "POST /bridges?name=call-"+cust+"&type=mixing" {
			h.f.hangup(h.f.chans[cust], 16, false)
		}
	}
	h.f.mu.Unlock()
	h.f.AnswerDevice(a1)
	h.waitGone(id)
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	var call string
	for _, r := range h.peek() {
		if rest, ok := strings.CutPrefix(r, "POST /bridges/"); ok && strings.Contains(rest, "/addChannel") {
			call, _, _ = strings.Cut(rest, "/")
		}
	}
	// Routing hangs the caller up too (404) if the connect failure ends
	// the call before the caller's own end is reported.
	h.expectChainsMaybe([]string{"DELETE /channels/" + cust + "?reason_code=16"},
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges?name=call-" + cust + "&type=mixing",
			"POST /bridges/" + call + "/addChannel?channel=" + esc(cust+","+a1), // 400: the caller is gone
			"DELETE /channels/" + a1 + "?reason_code=16"},
		[]string{"DELETE /bridges/" + call})
	waitFor(t, func() bool {
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		return len(h.f.chans) == 0 && len(h.f.bridges) == 0
	})
}
