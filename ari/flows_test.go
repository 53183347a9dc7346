package ari

import (
	"errors"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

const (
	caller  = "84901234567"
	hotline = "+842873000001"
)

// inboundHeld: a trunk call arrives, is answered and held with music
// (inbound-answered.jsonl, first half). Returns the customer leg and the
// holding bridge.
// inboundHeld answers a trunk call and puts it on music on hold, which
// plays on the caller's channel (no holding bridge).
func (h *harness) inboundHeld(t *testing.T) media.LegID {
	t.Helper()
	cust := h.f.Inbound(caller, hotline)
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(cust), Caller: caller, Hotline: hotline})
	if err := h.c.Answer(h.ctx, media.LegID(cust)); err != nil {
		t.Fatal(err)
	}
	if err := h.c.Hold(h.ctx, media.LegID(cust), media.HoldMusic); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests(
		"POST /channels/"+cust+"/answer",
		"POST /channels/"+cust+"/moh?mohClass=default",
	)
	if !h.f.playingMOH(cust) {
		t.Fatal("held caller hears no music")
	}
	return media.LegID(cust)
}

func agentTarget(id string) media.Target {
	return media.Target{AgentID: id, Distribution: presence.DistApp}
}

// dialAgent originates an agent leg and checks the request.
func (h *harness) dialAgent(t *testing.T, agent string, timeout time.Duration) media.LegID {
	t.Helper()
	leg, err := h.c.Dial(h.ctx, media.DialRequest{CallID: "call-1", Target: agentTarget(agent), Timeout: timeout, CallerID: caller})
	if err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests(originateReq("callfloor", "agent,"+agent+",call-1", caller, string(leg), "PJSIP/"+agent, int(timeout/time.Second)))
	return leg
}

// answered rings and answers a dialled leg.
func (h *harness) answered(t *testing.T, leg media.LegID) {
	t.Helper()
	h.f.Ring(string(leg))
	h.rec.expect(t, media.LegRinging{Leg: leg})
	h.f.AnswerDevice(string(leg))
	h.rec.expect(t, media.LegAnswered{Leg: leg})
}

// connectFromHold connects the held customer to an answered agent:
// the caller's music stops, a mixing bridge takes both.
func (h *harness) connectFromHold(t *testing.T, cust, agent media.LegID) string {
	t.Helper()
	if err := h.c.Connect(h.ctx, cust, agent); err != nil {
		t.Fatal(err)
	}
	call := h.f.bridgeNamed("call-" + string(cust))
	h.f.expectRequests(
		"DELETE /channels/"+string(cust)+"/moh",
		"POST /bridges?name=call-"+string(cust)+"&type=mixing",
		"POST /bridges/"+call+"/addChannel?channel="+esc(string(cust)+","+string(agent)),
	)
	if h.f.playingMOH(string(cust)) {
		t.Fatal("the caller still hears music once connected")
	}
	return call
}

func (h *harness) hangup(t *testing.T, leg media.LegID) {
	t.Helper()
	if err := h.c.Hangup(h.ctx, leg, media.CauseNormal); err != nil {
		t.Fatal(err)
	}
}

func TestInboundAnswered(t *testing.T) {
	start(t).answeredAndEnded(t)
}

func TestAgentNoAnswerThenNextAgent(t *testing.T) {
	h := start(t)
	cust := h.inboundHeld(t)
	a1 := h.dialAgent(t, "a1", 4*time.Second)
	h.f.Ring(string(a1))
	h.rec.expect(t, media.LegRinging{Leg: a1})
	h.f.NoAnswer(string(a1)) // ChannelDestroyed cause 19, nothing else
	h.rec.expect(t, media.LegEnded{Leg: a1, Cause: media.CauseNoAnswer})

	a2 := h.dialAgent(t, "a2", 15*time.Second)
	h.answered(t, a2)
	call := h.connectFromHold(t, cust, a2)
	h.f.RemoteHangup(string(a2)) // the agent hangs up
	h.rec.expect(t, media.LegEnded{Leg: a2, Cause: media.CauseNormal})
	h.hangup(t, cust)
	h.rec.expect(t, media.LegEnded{Leg: cust, Cause: media.CauseNormal})
	h.f.expectRequests("DELETE /channels/" + string(cust) + "?reason_code=16")
	h.keptForReuse(t, call)
}

func TestAgentBusy(t *testing.T) {
	h := start(t)
	cust := h.inboundHeld(t)
	a1 := h.dialAgent(t, "a1", 15*time.Second)
	h.f.Busy(string(a1))
	h.rec.expect(t, media.LegEnded{Leg: a1, Cause: media.CauseBusy})
	h.hangup(t, cust)
	h.rec.expect(t, media.LegEnded{Leg: cust, Cause: media.CauseNormal})
	h.f.expectRequests("DELETE /channels/" + string(cust) + "?reason_code=16")
}

func TestAgentUnregistered(t *testing.T) {
	h := start(t)
	cust := h.inboundHeld(t)
	_, err := h.c.Dial(h.ctx, media.DialRequest{CallID: "call-1", Target: agentTarget("a8"), Timeout: 15 * time.Second})
	if !errors.Is(err, media.ErrUnreachable) {
		t.Fatalf("Dial a8 = %v, want ErrUnreachable", err)
	}
	_, err = h.c.Dial(h.ctx, media.DialRequest{CallID: "call-1",
		Target: media.Target{AgentID: "x", Distribution: presence.DistIPPhone, DeskDevice: "nosuchendpoint"}, Timeout: 15 * time.Second})
	if !errors.Is(err, media.ErrUnreachable) {
		t.Fatalf("Dial nosuchendpoint = %v, want ErrUnreachable", err)
	}
	got := h.f.takeRequests()
	if len(got) != 2 || got[0][:14] != "POST /channels" || got[1][:14] != "POST /channels" {
		t.Fatalf("requests %q", got)
	}
	_, err = h.c.Dial(h.ctx, media.DialRequest{CallID: "call-1",
		Target: media.Target{AgentID: "a5", Distribution: presence.DistPhone}, Timeout: 15 * time.Second})
	if !errors.Is(err, media.ErrUnreachable) {
		t.Fatalf("Dial phone without number = %v, want ErrUnreachable", err)
	}
	h.rec.expect(t) // no facts for legs that never existed
	_ = cust
}

func TestDistributionModes(t *testing.T) {
	h := start(t)
	cases := []struct {
		name     string
		req      media.DialRequest
		endpoint string
		args     string
	}{
		{"app", media.DialRequest{CallID: "c", Target: agentTarget("a1")}, "PJSIP/a1", "agent,a1,c"},
		{"ip_phone device", media.DialRequest{CallID: "c", Target: media.Target{AgentID: "a2", Distribution: presence.DistIPPhone, AppDevice: "a2", DeskDevice: "a2-desk"}}, "PJSIP/a2-desk", "agent,a2,c"},
		{"phone", media.DialRequest{CallID: "c", Target: media.Target{AgentID: "a4", Distribution: presence.DistPhone, Phone: "+84909000004"}}, "PJSIP/+84909000004@trunk", "agent,a4,c"},
		{"number", media.DialRequest{CallID: "c", Number: "+84901112222", CallerID: hotline}, "PJSIP/+84901112222@trunk", "number,+84901112222,c"},
	}
	for _, tc := range cases {
		tc.req.Timeout = 20 * time.Second
		leg, err := h.c.Dial(h.ctx, tc.req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		h.f.expectRequests(originateReq("callfloor", tc.args, tc.req.CallerID, string(leg), tc.endpoint, 20))
		h.f.NoAnswer(string(leg))
		h.rec.expect(t, media.LegEnded{Leg: leg, Cause: media.CauseNoAnswer})
	}
}

// app_sip rings the app and the IP phone; the first answer wins,
// the other is cancelled, routing sees one leg.
func TestAppSIPForkFirstAnswerWins(t *testing.T) {
	h := start(t)
	leg, phone, reqs := h.dialFork(t)
	if len(reqs) != 2 {
		t.Fatalf("want two originates, got %q", reqs)
	}
	if reqs[0] != originateReq("callfloor", "agent,a1,c", "", string(leg), "PJSIP/a1", 15) ||
		reqs[1] != originateReq("callfloor", "agent,a1,c", "", phone, "PJSIP/a1-desk", 15) {
		t.Fatalf("originates %q", reqs)
	}
	h.f.Ring(string(leg))
	h.f.Ring(phone)
	h.rec.expect(t, media.LegRinging{Leg: leg})
	h.f.AnswerDevice(phone)
	h.rec.expect(t, media.LegAnswered{Leg: leg})
	h.f.expectRequests("DELETE /channels/" + string(leg) + "?reason_code=16") // the app stops ringing
	h.rec.expect(t)                                                           // its ChannelDestroyed is not a LegEnded
	if err := h.c.Mute(h.ctx, leg, true); err != nil {                        // commands reach the answering device
		t.Fatal(err)
	}
	h.f.expectRequests("POST /channels/" + phone + "/mute?direction=in")
	h.hangup(t, leg)
	h.f.expectRequests("DELETE /channels/" + phone + "?reason_code=16")
	h.rec.expect(t, media.LegEnded{Leg: leg, Cause: media.CauseNormal})
}

func TestAppSIPForkAllFail(t *testing.T) {
	h := start(t)
	leg, phone, _ := h.dialFork(t)
	h.f.Busy(phone)
	h.rec.expect(t) // the app still rings
	h.f.NoAnswer(string(leg))
	h.rec.expect(t, media.LegEnded{Leg: leg, Cause: media.CauseNoAnswer})

	// One device unreachable: the fork goes on with the other.
	h.f.Register("a1", false)
	leg, phone, reqs := h.dialFork(t)
	if n := len(reqs); n != 2 {
		t.Fatalf("want two originates, got %d", n)
	}
	h.rec.drain() // presence
	h.f.AnswerDevice(phone)
	h.rec.expect(t, media.LegAnswered{Leg: leg})
}

// Both devices of a fork answer at once: one LegAnswered, the loser is
// hung up once, and its late StasisStart is no new leg.
func TestAppSIPForkBothAnswer(t *testing.T) {
	h := start(t)
	leg, phone, _ := h.dialFork(t)
	h.f.answerAtOnce(string(leg), phone)
	h.rec.expect(t, media.LegAnswered{Leg: leg})
	h.f.expectRequests("DELETE /channels/" + phone + "?reason_code=16")
	h.rec.expect(t)
	h.hangup(t, leg)
	h.f.expectRequests("DELETE /channels/" + string(leg) + "?reason_code=16")
	h.rec.expect(t, media.LegEnded{Leg: leg, Cause: media.CauseNormal})
}

// Routing gives up on a ringing fork: every device stops, one LegEnded
// with routing's cause.
func TestHangupRingingFork(t *testing.T) {
	h := start(t)
	leg, phone, _ := h.dialFork(t)
	h.f.Ring(phone)
	h.rec.expect(t, media.LegRinging{Leg: leg})
	if err := h.c.Hangup(h.ctx, leg, media.CauseCancelled); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("DELETE /channels/"+string(leg)+"?reason_code=16", "DELETE /channels/"+phone+"?reason_code=16")
	h.rec.expect(t, media.LegEnded{Leg: leg, Cause: media.CauseCancelled})
	// Hanging up again is no error.
	if err := h.c.Hangup(h.ctx, leg, media.CauseCancelled); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("DELETE /channels/" + string(leg) + "?reason_code=16")
}

func TestDTMFAndRingback(t *testing.T) {
	h := start(t)
	cust := h.f.Inbound(caller, hotline)
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(cust), Caller: caller, Hotline: hotline})
	if err := h.c.Hold(h.ctx, media.LegID(cust), media.HoldRingback); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("POST /channels/" + cust + "/ring")
	h.f.Send(`{"type":"ChannelDtmfReceived","timestamp":"2026-11-21T19:08:40.000+0000","digit":"5","duration_ms":120,"channel":{"id":"` + cust + `","name":"PJSIP/trunk-00000000","state":"Ring"},"asterisk_id":"02:fc:00:00:00:01","application":"callfloor"}`)
	h.rec.expect(t, media.DTMF{Leg: media.LegID(cust), Digit: "5"})
	if err := h.c.Answer(h.ctx, "gone"); !errors.Is(err, media.ErrLegGone) {
		t.Fatalf("Answer(gone) = %v, want ErrLegGone", err)
	}
	h.f.expectRequests("POST /channels/gone/answer")
}
