package ari

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// A dialled leg answered while no socket was connected: its StasisStart
// is lost, but the resync finds the channel Up in our application, lists
// it as present and answered, and reports the answer.
func TestResyncReportsAnswerMissedWhileDisconnected(t *testing.T) {
	h := start(t)
	leg := h.dialAgent(t, "a1", 15*time.Second)
	h.f.Ring(string(leg))
	h.rec.expect(t, media.LegRinging{Leg: leg})
	h.f.Cut(true)
	waitFor(t, func() bool { return !h.c.Connected() })
	h.f.AnswerDevice(string(leg))
	h.f.SetDown(false)
	h.f.expectRequests(reconnectRequests...)
	h.rec.expect(t, media.LegsPresent{Legs: []media.LegSnapshot{{Leg: leg, Answered: true}}},
		media.LegAnswered{Leg: leg})
	// The leg is live: commands reach it and its end is reported.
	h.hangup(t, leg)
	h.f.expectRequests("DELETE /channels/" + string(leg) + "?reason_code=16")
	h.rec.expect(t, media.LegEnded{Leg: leg, Cause: media.CauseNormal})
}

// The same for a fork (app_sip): the personal number answered while
// away; it becomes the leg's channel and the app, still ringing, is hung
// up.
func TestResyncForkAnsweredWhileDisconnected(t *testing.T) {
	h := start(t)
	leg, phone, _ := h.dialFork(t)
	h.f.Cut(true)
	waitFor(t, func() bool { return !h.c.Connected() })
	h.f.AnswerDevice(phone)
	h.f.SetDown(false)
	h.f.expectRequests(append(slices.Clone(reconnectRequests), "DELETE /channels/"+string(leg)+"?reason_code=16")...)
	h.rec.expect(t, media.LegsPresent{Legs: []media.LegSnapshot{{Leg: leg, Answered: true}}},
		media.LegAnswered{Leg: leg})
	if err := h.c.Mute(h.ctx, leg, true); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("POST /channels/" + phone + "/mute?direction=in")
}

// A channel still ringing at resync is listed, not answered.
func TestResyncStillRinging(t *testing.T) {
	h := start(t)
	leg := h.dialAgent(t, "a1", 15*time.Second)
	h.f.Cut(true)
	waitFor(t, func() bool { return !h.c.Connected() })
	h.f.Ring(string(leg))
	h.f.SetDown(false)
	h.f.expectRequests(reconnectRequests...)
	h.rec.expect(t, media.LegsPresent{Legs: []media.LegSnapshot{{Leg: leg, Answered: false}}})
	h.f.AnswerDevice(string(leg))
	h.rec.expect(t, media.LegAnswered{Leg: leg})
}

// A hang-up that fails while Asterisk is unreachable is an error to
// routing, and is done on the next resync if the channel is still there.
func TestResyncRetriesFailedHangup(t *testing.T) {
	h := start(t)
	leg := h.dialAgent(t, "a1", 15*time.Second)
	h.answered(t, leg)
	h.f.Cut(true)
	waitFor(t, func() bool { return !h.c.Connected() })
	if err := h.c.Hangup(h.ctx, leg, media.CauseNoAnswer); err == nil {
		t.Fatal("Hangup while Asterisk refuses requests = nil, want the error")
	}
	h.f.SetDown(false)
	h.f.expectRequests(append(slices.Clone(reconnectRequests), "DELETE /channels/"+string(leg)+"?reason_code=19")...)
	// Routing has let the leg go: it is not listed as present (routing
	// would take it for a leg to adopt or an orphan), and it ends.
	h.rec.expect(t, media.LegsPresent{}, media.LegEnded{Leg: leg, Cause: media.CauseNoAnswer})
	// Retried once: a later reconnect does not hang it up again.
	h.f.Cut(false)
	h.f.expectRequests(reconnectRequests...)
}

// Connecting a caller who has just hung up fails on addChannel; the call
// bridge made for it is removed at once (no member ever entered it, so
// no event would).
func TestConnectFailureRemovesNewBridge(t *testing.T) {
	h := start(t)
	cust := h.inboundHeld(t)
	agent := h.dialAgent(t, "a1", 15*time.Second)
	h.answered(t, agent)
	h.f.RemoteHangup(string(cust))
	h.rec.expect(t, media.LegEnded{Leg: cust, Cause: media.CauseNormal})
	h.f.takeRequests() // the holding bridge's removal
	if err := h.c.Connect(h.ctx, cust, agent); err == nil {
		t.Fatal("Connect with a caller gone = nil")
	}
	waitFor(t, func() bool {
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		return len(h.f.reqs)-h.f.taken >= 3
	})
	reqs := h.f.takeRequests()
	_, call, _ := strings.Cut(reqs[1], "/bridges/") // the id the fake chose
	call, _, _ = strings.Cut(call, "/")
	want := []string{"POST /bridges?name=call-" + string(cust) + "&type=mixing",
		"POST /bridges/" + call + "/addChannel?channel=" + esc(string(cust)+","+string(agent)),
		"DELETE /bridges/" + call}
	if !slices.Equal(reqs, want) {
		t.Fatalf("requests %q, want %q", reqs, want)
	}
}
