package ari

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// sup-sales rings as app_sip: its app and its personal number, forked.
const supNumber = "sup-sales-desk"

func (h *e2e) monitorOf(callID string) *routing.MonitorView {
	h.t.Helper()
	c, err := h.eng.Call(h.ctx, h.admin, callID)
	if err != nil {
		h.t.Fatal(err)
	}
	return c.Monitor
}

func (h *e2e) waitMonitor(callID string, want func(m *routing.MonitorView) bool) {
	h.t.Helper()
	h.eventually("monitor of "+callID, func() error {
		if m := h.monitorOf(callID); !want(m) {
			return fmt.Errorf("monitor is %+v", m)
		}
		return nil
	})
}

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, presence.ErrConflict) {
		t.Fatalf("%s = %v, want ErrConflict (409)", what, err)
	}
}

// startMonitor has sup-sales monitor the call in mode and answers on the
// app; it returns the monitor and the supervisor's (answered) channel.
// ring is what rings: originate to the app, then to the personal number.
func (h *e2e) startMonitor(id, from string, mode media.MonitorMode) (routing.MonitorView, string, string) {
	h.t.Helper()
	mon, err := h.eng.StartMonitor(h.ctx, h.sup, id, mode, "")
	if err != nil {
		h.t.Fatal(err)
	}
	dev, num := h.channelTo("sup-sales"), h.channelTo(supNumber)
	h.expectSeq(originate("supervisor,sup-sales,"+id, from, dev, "PJSIP/sup-sales", 18),
		originate("supervisor,sup-sales,"+id, from, num, "PJSIP/"+supNumber, 18))
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m != nil && m.ID == mon.ID && !m.Answered })
	return mon, dev, num
}

// (5) listen-whisper-barge.jsonl through the engine: listen (snoop, spy
// bridge), the 409 rules, pause/resume (mute the supervisor's leg),
// barge (into the call bridge), end; then whisper, answered on the
// personal number, until the caller hangs up.
func TestE2EMonitorListenPauseBarge(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, call := h.talking(caller)
	mon, dev, num := h.startMonitor(id, caller, media.MonitorListen)

	// One monitor per call, whoever asks and in whatever mode.
	_, err := h.eng.StartMonitor(h.ctx, h.sup, id, media.MonitorWhisper, "")
	wantConflict(t, "second monitor by the same supervisor", err)
	_, err = h.eng.StartMonitor(h.ctx, h.admin, id, media.MonitorListen, "")
	wantConflict(t, "second monitor by the admin", err)
	_, err = h.eng.StartMonitor(h.ctx, h.admin, id, media.MonitorBarge, "")
	wantConflict(t, "barge into a monitored call", err)
	h.expectSeq()

	h.f.Ring(dev)
	h.f.AnswerDevice(dev)
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m != nil && m.Answered && m.Mode == media.MonitorListen })
	waitFor(t, func() bool { return h.f.hasBridge("spy-" + a1) })
	snoop, spy := h.f.snoopOn(a1), h.f.bridgeNamed("spy-"+a1)
	h.expectChains(
		[]string{"DELETE /channels/" + num + "?reason_code=16"}, // the personal number stops ringing
		[]string{snoopReq(media.LegID(a1), "listen", "none", snoop), "POST /bridges?name=spy-" + a1 + "&type=mixing",
			"POST /bridges/" + spy + "/addChannel?channel=" + esc(snoop+","+dev)})
	h.waitAgent("a1", presence.SysTalking, id)

	// Pause: the supervisor's leg is muted, not the call; a paused
	// monitor cannot barge.
	if v, err := h.eng.PauseMonitor(h.ctx, h.sup, mon.ID); err != nil || !v.Paused {
		t.Fatalf("pause = %+v, %v", v, err)
	}
	h.expectSeq("POST /channels/" + dev + "/mute?direction=in")
	_, err = h.eng.BargeMonitor(h.ctx, h.sup, mon.ID)
	wantConflict(t, "barge while paused", err)
	h.expectSeq()
	if v, err := h.eng.ResumeMonitor(h.ctx, h.sup, mon.ID); err != nil || v.Paused {
		t.Fatalf("resume = %+v, %v", v, err)
	}
	h.expectSeq("DELETE /channels/" + dev + "/mute?direction=in")

	// Nobody but the monitor's supervisor barges.
	_, err = h.eng.BargeMonitor(h.ctx, h.admin, mon.ID)
	wantConflict(t, "barge by someone else", err)
	if v, err := h.eng.BargeMonitor(h.ctx, h.sup, mon.ID); err != nil || v.Mode != media.MonitorBarge {
		t.Fatalf("barge = %+v, %v", v, err)
	}
	h.expectSeq("POST /bridges/"+spy+"/removeChannel?channel="+dev, "POST /bridges/"+call+"/addChannel?channel="+dev,
		"DELETE /channels/"+snoop, "DELETE /bridges/"+spy)
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m != nil && m.Mode == media.MonitorBarge })

	// A supervisor with a running monitor cannot log out.
	_, err = h.svc.Logout(h.ctx, h.sup, "sup-sales")
	wantConflict(t, "logout while monitoring", err)

	if _, err := h.eng.EndMonitor(h.ctx, h.sup, mon.ID); err != nil {
		t.Fatal(err)
	}
	h.expectSeq("DELETE /channels/" + dev + "?reason_code=16")
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m == nil })
	h.waitCall(id, routing.StateAnswered, "a1")
	h.waitAgent("a1", presence.SysTalking, id)

	// Whisper, picked up on the personal number this time.
	_, dev, num = h.startMonitor(id, caller, media.MonitorWhisper)
	h.f.AnswerDevice(num)
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m != nil && m.Answered && m.Mode == media.MonitorWhisper })
	waitFor(t, func() bool { return h.f.hasBridge("spy-" + a1) })
	snoop, spy = h.f.snoopOn(a1), h.f.bridgeNamed("spy-"+a1)
	h.expectChains(
		[]string{"DELETE /channels/" + dev + "?reason_code=16"},
		[]string{snoopReq(media.LegID(a1), "whisper", "out", snoop), "POST /bridges?name=spy-" + a1 + "&type=mixing",
			"POST /bridges/" + spy + "/addChannel?channel=" + esc(snoop+","+num)})

	// The caller hangs up: the call ends and takes the monitor with it.
	h.f.RemoteHangup(cust)
	h.waitGone(id)
	h.expectChains(
		[]string{"DELETE /channels/" + a1 + "?reason_code=16", "DELETE /channels/" + num + "?reason_code=16",
			"DELETE /channels/" + snoop + "?reason_code=16", "DELETE /bridges/" + spy})
	h.waitAgent("a1", presence.SysAfterCallWork, "")
}

// (6) takeover-transfer.jsonl through the engine: sup-sales takes a1's
// call (a1 dropped at once, the caller held with music, sup rung, on
// answer bridged), then transfers it to a2 (sup dropped, a2 rung).
func TestE2ETakeOverThenTransfer(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, call := h.talking(caller)

	if _, err := h.eng.TakeOver(h.ctx, h.sup, id); err != nil {
		t.Fatal(err)
	}
	dev, num := h.channelTo("sup-sales"), h.channelTo(supNumber)
	h.expectChains(
		[]string{"POST /bridges/" + call + "/removeChannel?channel=" + cust, "POST /channels/" + cust + "/moh?mohClass=default", "DELETE /channels/" + a1 + "?reason_code=16",
			originate("agent,sup-sales,"+id, caller, dev, "PJSIP/sup-sales", 18),
			originate("agent,sup-sales,"+id, caller, num, "PJSIP/"+supNumber, 18)})
	h.waitCall(id, routing.StateRinging, "sup-sales")
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	h.waitAgent("sup-sales", presence.SysRinging, id)

	h.f.AnswerDevice(dev)
	h.waitCall(id, routing.StateAnswered, "sup-sales")
	h.waitAgent("sup-sales", presence.SysTalking, id)
	call2 := call // the bridge the first agent left, kept and taken again
	h.expectChains(
		[]string{"DELETE /channels/" + num + "?reason_code=16"},
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges/" + call2 + "/addChannel?channel=" + esc(cust+","+dev)})

	h.available("a2")
	h.expectSeq()
	if _, err := h.eng.Transfer(h.ctx, h.sup, id, "a2"); err != nil {
		t.Fatal(err)
	}
	a2dev, a2num := h.channelTo("a2"), h.channelTo("a2-desk")
	h.expectChains(
		[]string{"POST /bridges/" + call2 + "/removeChannel?channel=" + cust, "POST /channels/" + cust + "/moh?mohClass=default", "DELETE /channels/" + dev + "?reason_code=16",
			originate("agent,a2,"+id, caller, a2dev, "PJSIP/a2", 18),
			originate("agent,a2,"+id, caller, a2num, "PJSIP/a2-desk", 18)})
	h.waitCall(id, routing.StateRinging, "a2")
	h.waitAgent("sup-sales", presence.SysAfterCallWork, "")
	h.waitAgent("a2", presence.SysRinging, id)

	h.f.AnswerDevice(a2dev)
	h.waitCall(id, routing.StateAnswered, "a2")
	h.waitAgent("a2", presence.SysTalking, id)
	call3 := call2 // kept again when the supervisor left
	h.expectChains(
		[]string{"DELETE /channels/" + a2num + "?reason_code=16"},
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges/" + call3 + "/addChannel?channel=" + esc(cust+","+a2dev)})
	if s := h.stats(); s.Accepted != 1 || s.Talking != 1 {
		t.Fatalf("stats: one accepted call however many hands it passed: %+v", s)
	}
}

// A monitored call transferred within the team: the supervisor's leg on
// the old agent is dropped (with its snoop and spy bridge), and once the
// new agent answers the supervisor is rung again and listens to them —
// the same monitor.
func TestE2EMonitorFollowsTransferInTeam(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, call := h.talking(caller)
	mon, dev, num := h.startMonitor(id, caller, media.MonitorListen)
	h.f.AnswerDevice(dev)
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m != nil && m.Answered })
	waitFor(t, func() bool { return h.f.hasBridge("spy-" + a1) })
	snoop, spy := h.f.snoopOn(a1), h.f.bridgeNamed("spy-"+a1)
	h.expectChains([]string{"DELETE /channels/" + num + "?reason_code=16"},
		[]string{snoopReq(media.LegID(a1), "listen", "none", snoop), "POST /bridges?name=spy-" + a1 + "&type=mixing",
			"POST /bridges/" + spy + "/addChannel?channel=" + esc(snoop+","+dev)})

	h.available("a2")
	if _, err := h.eng.Transfer(h.ctx, h.sup, id, "a2"); err != nil {
		t.Fatal(err)
	}
	a2dev, a2num := h.channelTo("a2"), h.channelTo("a2-desk")
	h.expectChains(
		[]string{"DELETE /channels/" + dev + "?reason_code=16",
			"POST /bridges/" + call + "/removeChannel?channel=" + cust, "POST /channels/" + cust + "/moh?mohClass=default", "DELETE /channels/" + a1 + "?reason_code=16",
			originate("agent,a2,"+id, caller, a2dev, "PJSIP/a2", 18),
			originate("agent,a2,"+id, caller, a2num, "PJSIP/a2-desk", 18)},
		[]string{"DELETE /channels/" + snoop + "?reason_code=16", "DELETE /bridges/" + spy})
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m != nil && m.ID == mon.ID && !m.Answered })
	h.waitAgent("a1", presence.SysAfterCallWork, "")

	h.f.AnswerDevice(a2dev)
	h.waitCall(id, routing.StateAnswered, "a2")
	h.waitAgent("a2", presence.SysTalking, id)
	sdev, snum := h.channelTo("sup-sales"), h.channelTo(supNumber) // rung again
	call2 := call                                                  // the bridge the first agent left, kept and taken again
	h.expectChains(
		[]string{"DELETE /channels/" + a2num + "?reason_code=16"},
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges/" + call2 + "/addChannel?channel=" + esc(cust+","+a2dev),
			originate("supervisor,sup-sales,"+id, caller, sdev, "PJSIP/sup-sales", 18),
			originate("supervisor,sup-sales,"+id, caller, snum, "PJSIP/"+supNumber, 18)})

	h.f.AnswerDevice(sdev)
	h.waitMonitor(id, func(m *routing.MonitorView) bool {
		return m != nil && m.ID == mon.ID && m.Answered && m.Mode == media.MonitorListen
	})
	waitFor(t, func() bool { return h.f.hasBridge("spy-" + a2dev) })
	snoop2, spy2 := h.f.snoopOn(a2dev), h.f.bridgeNamed("spy-"+a2dev)
	h.expectChains([]string{"DELETE /channels/" + snum + "?reason_code=16"},
		[]string{snoopReq(media.LegID(a2dev), "listen", "none", snoop2), "POST /bridges?name=spy-" + a2dev + "&type=mixing",
			"POST /bridges/" + spy2 + "/addChannel?channel=" + esc(snoop2+","+sdev)})
}

// The supervisor hangs up just as the spy bridge is being created for
// them: the monitor ends, and the snoop and the new spy bridge are
// removed — nothing of the monitor is left in Asterisk.
func TestE2ESupervisorHangsUpDuringSetup(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, _, a1, _ := h.talking(caller)
	_, dev, _ := h.startMonitor(id, caller, media.MonitorListen)
	h.f.mu.Lock()
	h.f.before = func(req string) {
		if req == "POST /bridges?name=spy-"+a1+"&type=mixing" {
			h.f.hangup(h.f.chans[dev], 16, false)
		}
	}
	h.f.mu.Unlock()
	h.f.AnswerDevice(dev)
	h.waitMonitor(id, func(m *routing.MonitorView) bool { return m == nil })
	h.waitCall(id, routing.StateAnswered, "a1")
	waitFor(t, func() bool {
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		for _, ch := range h.f.chans {
			if ch.snoop {
				return false
			}
		}
		for _, b := range h.f.bridges {
			if strings.HasPrefix(b.name, "spy-") {
				return false
			}
		}
		return true
	})
}

// A take over the supervisor does not answer (cause 19 on both of their
// devices): the caller, on hold with music since a1 was dropped, goes
// back to the queue and the next free agent gets the call.
func TestE2ETakeOverUnanswered(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, call := h.talking(caller)
	if _, err := h.eng.TakeOver(h.ctx, h.sup, id); err != nil {
		t.Fatal(err)
	}
	dev, num := h.channelTo("sup-sales"), h.channelTo(supNumber)
	h.expectChains(
		[]string{"POST /bridges/" + call + "/removeChannel?channel=" + cust, "POST /channels/" + cust + "/moh?mohClass=default", "DELETE /channels/" + a1 + "?reason_code=16",
			originate("agent,sup-sales,"+id, caller, dev, "PJSIP/sup-sales", 18),
			originate("agent,sup-sales,"+id, caller, num, "PJSIP/"+supNumber, 18)})
	h.f.NoAnswer(num)
	h.f.NoAnswer(dev)
	h.waitCall(id, routing.StateCalling, "sup-sales")
	h.waitAgent("sup-sales", presence.SysAvailable, "")        // no RONA for their own take over
	h.expectSeq("DELETE /channels/" + dev + "?reason_code=19") // routing stops the ring (404: gone)

	h.available("a2")
	a2dev, a2num := h.channelTo("a2"), h.channelTo("a2-desk")
	h.expectSeq(originate("agent,a2,"+id, caller, a2dev, "PJSIP/a2", 18),
		originate("agent,a2,"+id, caller, a2num, "PJSIP/a2-desk", 18))
	h.f.AnswerDevice(a2dev)
	h.waitCall(id, routing.StateAnswered, "a2")
	call2 := call // the bridge the first agent left, kept and taken again
	h.expectChains(
		[]string{"DELETE /channels/" + a2num + "?reason_code=16"},
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges/" + call2 + "/addChannel?channel=" + esc(cust+","+a2dev)})
}
