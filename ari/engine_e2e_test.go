package ari

import (
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// talking brings a sales call to a1 (who must be available): held with
// music, a1 rung, a1 answers, both in the call bridge. It returns the call
// id, the customer's and a1's channels and the call bridge.
func (h *e2e) talking(from string) (id, cust, a1, call string) {
	h.t.Helper()
	id, cust = h.arrive(from)
	a1 = h.channelTo("a1")
	h.expectSeq(append(heldRequests(cust), originate("agent,a1,"+id, from, a1, "PJSIP/a1", 18))...)
	h.waitCall(id, routing.StateRinging, "a1")
	h.waitAgent("a1", presence.SysRinging, id)

	h.f.Ring(a1)
	h.f.AnswerDevice(a1)
	h.waitCall(id, routing.StateAnswered, "a1")
	h.waitAgent("a1", presence.SysTalking, id)
	call = h.f.bridgeNamed("call-" + cust)
	h.expectChains(
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges?name=call-" + cust + "&type=mixing", "POST /bridges/" + call + "/addChannel?channel=" + esc(cust+","+a1)},
	)
	return id, cust, a1, call
}

func (h *e2e) salesQueue() routing.QueueView {
	h.t.Helper()
	q, err := h.eng.Queue(h.ctx, h.admin, "sales")
	if err != nil {
		h.t.Fatal(err)
	}
	return q
}

func (h *e2e) stats() routing.Stats {
	h.t.Helper()
	s, err := h.eng.Stats(h.ctx, h.admin, "", "")
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

func wantQueue(t *testing.T, q routing.QueueView, waiting, available, busy int, answered int64) {
	t.Helper()
	if q.Waiting != waiting || q.AgentsAvailable != available || q.AgentsBusy != busy || q.AnsweredToday != answered {
		t.Fatalf("queue %s: waiting %d available %d busy %d answered %d; want %d %d %d %d", q.ID,
			q.Waiting, q.AgentsAvailable, q.AgentsBusy, q.AnsweredToday, waiting, available, busy, answered)
	}
}

// (1) inbound-answered.jsonl through the engine: held with music, a1 rung
// and answered, bridged; the caller hangs up; a1 wraps up, then is free.
func TestE2EInboundAnswered(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	wantQueue(t, h.salesQueue(), 0, 1, 0, 0)
	id, cust, a1, _ := h.talking(caller)
	wantQueue(t, h.salesQueue(), 0, 0, 1, 1)
	if s := h.stats(); s.Accepted != 1 || s.Talking != 1 || s.Waiting != 0 || s.Agents.Talking != 1 {
		t.Fatalf("stats while talking: %+v", s)
	}

	h.f.RemoteHangup(cust) // StasisEnd only, as Asterisk sends for a caller
	h.waitGone(id)
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	h.expectSeq("DELETE /channels/" + a1 + "?reason_code=16")

	h.advance(29 * time.Second)
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	h.advance(time.Second) // the queue's 30 s wrap-up is over
	h.waitAgent("a1", presence.SysAvailable, "")
	if s := h.stats(); s.Accepted != 1 || s.Missed != 0 || s.Talking != 0 || s.Agents.Free != 1 {
		t.Fatalf("stats after the call: %+v", s)
	}
	wantQueue(t, h.salesQueue(), 0, 1, 0, 1)
	h.expectSeq() // nothing more on Asterisk
}

// (2) agent-no-answer.jsonl: a1's phone rings out (ChannelDestroyed 19
// only): a1 is RONA, the call keeps its place ahead of a later caller and
// goes to the next agent (a2, app_sip: app and personal number forked).
func TestE2ENoAnswerRONAKeepsPosition(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	first, cust1 := h.arrive(caller)
	a1 := h.channelTo("a1")
	h.expectSeq(append(heldRequests(cust1), originate("agent,a1,"+first, caller, a1, "PJSIP/a1", 18))...)
	h.advance(time.Second)
	const later = "84907654321"
	second, cust2 := h.arrive(later)
	h.expectSeq(heldRequests(cust2)...)
	h.waitCall(second, routing.StateCalling, "")

	h.f.Ring(a1)
	h.f.NoAnswer(a1)
	h.waitAgent("a1", presence.SysRONA, "")
	h.waitCall(first, routing.StateCalling, "a1")             // API.md: "agent" is the last agent
	h.expectSeq("DELETE /channels/" + a1 + "?reason_code=19") // routing makes sure it stops ringing (404: gone)
	wantQueue(t, h.salesQueue(), 2, 0, 0, 0)

	h.available("a2")
	dev, num := h.channelTo("a2"), h.channelTo("a2-desk")
	h.expectSeq(originate("agent,a2,"+first, caller, dev, "PJSIP/a2", 18),
		originate("agent,a2,"+first, caller, num, "PJSIP/a2-desk", 18))
	h.waitCall(first, routing.StateRinging, "a2")
	h.waitCall(second, routing.StateCalling, "")
	h.waitAgent("a2", presence.SysRinging, first)
	h.waitAgent("a1", presence.SysRONA, "")

	// The personal number answers: the app stops ringing, the call is a2's.
	h.f.AnswerDevice(num)
	h.waitCall(first, routing.StateAnswered, "a2")
	h.waitAgent("a2", presence.SysTalking, first)
	call := h.f.bridgeNamed("call-" + cust1)
	h.expectChains(
		[]string{"DELETE /channels/" + dev + "?reason_code=16"},
		[]string{"DELETE /channels/" + cust1 + "/moh",
			"POST /bridges?name=call-" + cust1 + "&type=mixing", "POST /bridges/" + call + "/addChannel?channel=" + esc(cust1+","+num)},
	)
	wantQueue(t, h.salesQueue(), 1, 0, 1, 1)
}

// (3) agent-busy.jsonl: a1 is busy (cause 17): RONA (README.md, "Floor
// rules"), and the next agent is rung at once.
func TestE2EBusyNextAgentWithoutRONA(t *testing.T) {
	h := startE2E(t)
	h.available("a1", "a2")
	id, cust := h.arrive(caller)
	a1 := h.channelTo("a1")
	h.expectSeq(append(heldRequests(cust), originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))...)
	h.f.Busy(a1)
	dev, num := h.channelTo("a2"), h.channelTo("a2-desk")
	h.expectSeq(originate("agent,a2,"+id, caller, dev, "PJSIP/a2", 18),
		originate("agent,a2,"+id, caller, num, "PJSIP/a2-desk", 18))
	h.waitCall(id, routing.StateRinging, "a2")
	h.waitAgent("a1", presence.SysRONA, "")
	h.waitAgent("a2", presence.SysRinging, id)
}

// (4) agent-unregistered.jsonl: originate to a1, whose device has no
// contact, is 500 "Allocation failed": unreachable, RONA, next agent.
func TestE2EUnregisteredNextAgent(t *testing.T) {
	h := startE2E(t)
	h.f.Register("a1", false)
	h.f.Register("a1-desk", false) // a1 is offline once neither device is registered
	h.eventually("a1 offline", func() error {
		if h.agent("a1").Online {
			return fmt.Errorf("a1 still online")
		}
		return nil
	})
	h.available("a1", "a2")
	id, cust := h.arrive(caller)
	dev, num := h.channelTo("a2"), h.channelTo("a2-desk")
	reqs := append(heldRequests(cust),
		"", // a1's originate: its channel id never reached Asterisk's table
		originate("agent,a2,"+id, caller, dev, "PJSIP/a2", 18),
		originate("agent,a2,"+id, caller, num, "PJSIP/a2-desk", 18))
	got, i := h.peek(), len(heldRequests(cust))
	if len(got) > i {
		reqs[i] = got[i]
	}
	if want := originate("agent,a1,"+id, caller, channelIDOf(reqs[i]), "PJSIP/a1", 18); reqs[i] != want {
		t.Fatalf("a1's originate = %q, want %q", reqs[i], want)
	}
	h.expectSeq(reqs...)
	h.waitCall(id, routing.StateRinging, "a2")
	h.waitAgent("a1", presence.SysRONA, "")
	h.waitAgent("a2", presence.SysRinging, id)
}

// (7) hang up: a supervisor ends the conversation; both legs go, the
// call bridge goes, a1 wraps up.
func TestE2ESupervisorHangsUp(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, _ := h.talking(caller)
	if _, err := h.eng.Hangup(h.ctx, h.sup, id); err != nil {
		t.Fatal(err)
	}
	h.waitGone(id)
	h.expectSeq("DELETE /channels/"+cust+"?reason_code=16", "DELETE /channels/"+a1+"?reason_code=16")
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	if s := h.stats(); s.Accepted != 1 || s.Talking != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// The agent hangs up first: the caller's leg is hung up, the bridge
// removed, a1 wraps up.
func TestE2EAgentHangsUp(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, _ := h.talking(caller)
	h.f.RemoteHangup(a1)
	h.waitGone(id)
	h.expectSeq("DELETE /channels/" + cust + "?reason_code=16")
	h.waitAgent("a1", presence.SysAfterCallWork, "")
}

// A caller who waits 25 s before an agent frees up, who then rings for
// 5 s: the live queue shows the wait; the counters the average wait
// (DESIGN.md: from ringing agents to talk) and the service level missed
// (30 s from arrival to answer, beyond the queue's 20 s).
func TestE2EWaitCountsInQueueAndStats(t *testing.T) {
	h := startE2E(t)
	id, cust := h.arrive(caller)
	h.expectSeq(heldRequests(cust)...)
	h.advance(25 * time.Second)
	if q := h.salesQueue(); q.Waiting != 1 || q.LongestWaitSeconds != 25 {
		t.Fatalf("queue while waiting: %+v", q)
	}
	h.available("a1")
	a1 := h.channelTo("a1")
	h.expectSeq(originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))
	h.f.Ring(a1)
	h.advance(5 * time.Second)
	h.f.AnswerDevice(a1)
	h.waitCall(id, routing.StateAnswered, "a1")
	q := h.salesQueue()
	if q.Waiting != 0 || q.AnsweredToday != 1 || q.ServiceLevelPercent == nil || *q.ServiceLevelPercent != 0 {
		t.Fatalf("queue after answer: %+v (service level %v)", q, q.ServiceLevelPercent)
	}
	if s := h.stats(); s.Accepted != 1 || s.AvgWaitSeconds != 5 {
		t.Fatalf("stats: %+v", s)
	}
}
