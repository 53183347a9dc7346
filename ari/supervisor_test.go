package ari

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// inCall: a customer and agent a1 talking in the call bridge (no hold).
func (h *harness) inCall(t *testing.T) (cust, agent media.LegID, call string) {
	t.Helper()
	id := h.f.Inbound(caller, hotline)
	cust = media.LegID(id)
	h.rec.expect(t, media.CallArrived{Leg: cust, Caller: caller, Hotline: hotline})
	if err := h.c.Answer(h.ctx, cust); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("POST /channels/" + id + "/answer")
	agent = h.dialAgent(t, "a1", 15*time.Second)
	h.answered(t, agent)
	if err := h.c.Connect(h.ctx, cust, agent); err != nil {
		t.Fatal(err)
	}
	call = h.f.bridgeNamed("call-" + id)
	h.f.expectRequests("POST /bridges?name=call-"+id+"&type=mixing",
		"POST /bridges/"+call+"/addChannel?channel="+esc(id+","+string(agent)))
	return cust, agent, call
}

func snoopReq(agent media.LegID, mode, whisper, id string) string {
	return "POST /channels/" + string(agent) + "/snoop?app=callfloor&appArgs=" + esc("snoop,"+mode+","+string(agent)) +
		"&snoopId=" + id + "&spy=both&whisper=" + whisper
}

// listen-whisper-barge.jsonl: listen (snoop spy=both whisper=none + spy
// bridge), whisper (new snoop whisper=out), barge (supervisor into the call
// bridge), pause/resume (mute in), back to listen, hang up.
func TestListenWhisperBarge(t *testing.T) {
	h := start(t)
	cust, agent, call := h.inCall(t)
	sup, err := h.c.Monitor(h.ctx, media.MonitorRequest{CallID: "call-1", Customer: cust, Agent: agent,
		Supervisor: agentTarget("sup-sales"), Mode: media.MonitorListen, Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests(originateReq("callfloor", "supervisor,sup-sales,call-1", caller, string(sup), "PJSIP/sup-sales", 15))
	h.answered(t, sup)
	spy := ""
	waitFor(t, func() bool { return h.f.hasBridge("spy-" + string(agent)) })
	spy = h.f.bridgeNamed("spy-" + string(agent))
	snoop := h.f.snoopOn(string(agent))
	h.f.expectRequests(snoopReq(agent, "listen", "none", snoop),
		"POST /bridges?name=spy-"+string(agent)+"&type=mixing",
		"POST /bridges/"+spy+"/addChannel?channel="+esc(snoop+","+string(sup)))

	if err := h.c.SetMonitorMode(h.ctx, sup, media.MonitorWhisper); err != nil {
		t.Fatal(err)
	}
	snoop2 := h.f.snoopOn(string(agent))
	h.f.expectRequests("DELETE /channels/"+snoop, snoopReq(agent, "whisper", "out", snoop2),
		"POST /bridges/"+spy+"/addChannel?channel="+snoop2)

	if err := h.c.SetMonitorMode(h.ctx, sup, media.MonitorBarge); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("POST /bridges/"+spy+"/removeChannel?channel="+string(sup),
		"POST /bridges/"+call+"/addChannel?channel="+string(sup),
		"DELETE /channels/"+snoop2, "DELETE /bridges/"+spy)

	// Pause and resume the monitor: the supervisor's leg, not the call.
	if err := h.c.Mute(h.ctx, sup, true); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Mute(h.ctx, sup, false); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("POST /channels/"+string(sup)+"/mute?direction=in", "DELETE /channels/"+string(sup)+"/mute?direction=in")

	if err := h.c.SetMonitorMode(h.ctx, sup, media.MonitorListen); err != nil {
		t.Fatal(err)
	}
	snoop3 := h.f.snoopOn(string(agent))
	spy2 := h.f.bridgeNamed("spy-" + string(agent))
	h.f.expectRequests("POST /bridges/"+call+"/removeChannel?channel="+string(sup),
		snoopReq(agent, "listen", "none", snoop3),
		"POST /bridges?name=spy-"+string(agent)+"&type=mixing",
		"POST /bridges/"+spy2+"/addChannel?channel="+esc(snoop3+","+string(sup)))

	h.hangup(t, sup)
	h.rec.expect(t, media.LegEnded{Leg: sup, Cause: media.CauseNormal})
	h.f.expectRequests("DELETE /channels/"+string(sup)+"?reason_code=16",
		"DELETE /channels/"+snoop3+"?reason_code=16", "DELETE /bridges/"+spy2)
	h.rec.expect(t) // the snoop's end is no leg of routing's
}

// A mode chosen while the supervisor's phone still rings applies on answer.
func TestMonitorModeChangedWhileRinging(t *testing.T) {
	h := start(t)
	cust, agent, call := h.inCall(t)
	sup, err := h.c.Monitor(h.ctx, media.MonitorRequest{CallID: "call-1", Customer: cust, Agent: agent,
		Supervisor: agentTarget("sup-sales"), Mode: media.MonitorWhisper, Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.f.takeRequests()
	if err := h.c.SetMonitorMode(h.ctx, sup, media.MonitorBarge); err != nil {
		t.Fatal(err)
	}
	h.answered(t, sup)
	h.f.expectRequests("POST /bridges/" + call + "/addChannel?channel=" + string(sup))
}

// takeover-transfer.jsonl composed from Dial + Connect + Hangup: the
// supervisor replaces the agent, then a second agent replaces the
// supervisor.
func TestTakeoverThenTransfer(t *testing.T) {
	h := start(t)
	cust, a1, call := h.inCall(t)

	sup, err := h.c.Dial(h.ctx, media.DialRequest{CallID: "call-1", Target: agentTarget("sup-sales"), Timeout: 15 * time.Second, CallerID: caller})
	if err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests(originateReq("callfloor", "agent,sup-sales,call-1", caller, string(sup), "PJSIP/sup-sales", 15))
	h.answered(t, sup)
	if err := h.c.Connect(h.ctx, cust, sup); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("POST /bridges/"+call+"/removeChannel?channel="+string(a1),
		"POST /bridges/"+call+"/addChannel?channel="+string(sup))
	h.hangup(t, a1)
	h.rec.expect(t, media.LegEnded{Leg: a1, Cause: media.CauseNormal})
	h.f.expectRequests("DELETE /channels/" + string(a1) + "?reason_code=16")

	a2 := h.dialAgent(t, "a2", 15*time.Second)
	h.answered(t, a2)
	if err := h.c.Connect(h.ctx, cust, a2); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("POST /bridges/"+call+"/removeChannel?channel="+string(sup),
		"POST /bridges/"+call+"/addChannel?channel="+string(a2))
	h.hangup(t, sup)
	h.rec.expect(t, media.LegEnded{Leg: sup, Cause: media.CauseNormal})
	h.f.expectRequests("DELETE /channels/" + string(sup) + "?reason_code=16")

	h.f.RemoteHangup(string(cust))
	h.rec.expect(t, media.LegEnded{Leg: cust, Cause: media.CauseNormal})
	h.hangup(t, a2)
	h.rec.expect(t, media.LegEnded{Leg: a2, Cause: media.CauseNormal})
	h.f.expectRequests("DELETE /channels/" + string(a2) + "?reason_code=16")
}

func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met in 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Every monitor mode change, from each mode the leg can be in (including
// none yet), to each mode, with the exact requests.
func TestMonitorModeMatrix(t *testing.T) {
	modes := []media.MonitorMode{media.MonitorListen, media.MonitorWhisper, media.MonitorBarge}
	whisper := map[media.MonitorMode]string{media.MonitorListen: "none", media.MonitorWhisper: "out"}
	for _, from := range modes {
		for _, to := range modes {
			t.Run(string(from)+"→"+string(to), func(t *testing.T) {
				h := start(t)
				cust, agent, call := h.inCall(t)
				sup, err := h.c.Monitor(h.ctx, media.MonitorRequest{CallID: "call-1", Customer: cust, Agent: agent,
					Supervisor: agentTarget("sup-sales"), Mode: from, Timeout: 15 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				h.answered(t, sup)
				if from == media.MonitorBarge {
					h.f.expectRequests(originateReq("callfloor", "supervisor,sup-sales,call-1", caller, string(sup), "PJSIP/sup-sales", 15),
						"POST /bridges/"+call+"/addChannel?channel="+string(sup))
				} else {
					waitFor(t, func() bool { return h.f.hasBridge("spy-" + string(agent)) })
					h.f.takeRequests()
				}
				var old, spy string
				if from != media.MonitorBarge {
					old, spy = h.f.snoopOn(string(agent)), h.f.bridgeNamed("spy-"+string(agent))
				}
				if err := h.c.SetMonitorMode(h.ctx, sup, to); err != nil {
					t.Fatal(err)
				}
				switch {
				case from == to:
					h.f.expectRequests()
				case to == media.MonitorBarge:
					h.f.expectRequests("POST /bridges/"+spy+"/removeChannel?channel="+string(sup),
						"POST /bridges/"+call+"/addChannel?channel="+string(sup),
						"DELETE /channels/"+old, "DELETE /bridges/"+spy)
				case from == media.MonitorBarge:
					snoop, spy := h.f.snoopOn(string(agent)), h.f.bridgeNamed("spy-"+string(agent))
					h.f.expectRequests("POST /bridges/"+call+"/removeChannel?channel="+string(sup),
						snoopReq(agent, string(to), whisper[to], snoop),
						"POST /bridges?name=spy-"+string(agent)+"&type=mixing",
						"POST /bridges/"+spy+"/addChannel?channel="+esc(snoop+","+string(sup)))
				default:
					snoop := h.f.snoopOn(string(agent))
					h.f.expectRequests("DELETE /channels/"+old, snoopReq(agent, string(to), whisper[to], snoop),
						"POST /bridges/"+spy+"/addChannel?channel="+snoop)
				}
			})
		}
	}
}
