package ari

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// TestAppDeviceContactsEachRing: a1's app device has a web and a mobile
// softphone registered (two ContactStatusChange "Created"). A dial to
// PJSIP/a1 would ring one of them, so each contact is its own fork of the
// leg; the mobile answers and the web fork is hung up. A contact removed
// is dialled no more.
func TestAppDeviceContactsEachRing(t *testing.T) {
	const web, mobile = "sip:a1@127.0.0.1:6101", "sip:a1@127.0.0.1:6102"
	h := start(t)
	h.f.AddContact("a1", web)
	h.f.AddContact("a1", mobile)
	waitFor(t, func() bool {
		h.c.mu.Lock()
		defer h.c.mu.Unlock()
		return len(h.c.contacts["a1"]) == 2
	})
	leg, err := h.c.Dial(h.ctx, media.DialRequest{CallID: "c", Target: agentTarget("a1"), Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	webCh, mobileCh := h.f.channelFor("a1/"+web), h.f.channelFor("a1/"+mobile)
	reqs := h.f.takeRequests()
	if len(reqs) != 2 || reqs[0] != originateReq("callfloor", "agent,a1,c", "", string(leg), "PJSIP/a1/"+web, 15) ||
		reqs[1] != originateReq("callfloor", "agent,a1,c", "", mobileCh, "PJSIP/a1/"+mobile, 15) {
		t.Fatalf("originates %q", reqs)
	}
	if string(leg) != webCh {
		t.Fatalf("leg %s, want the first fork's channel %s", leg, webCh)
	}
	h.f.Ring(webCh)
	h.f.Ring(mobileCh)
	h.rec.expect(t, media.LegRinging{Leg: leg})
	h.f.AnswerDevice(mobileCh)
	h.rec.expect(t, media.LegAnswered{Leg: leg})
	h.f.expectRequests("DELETE /channels/" + webCh + "?reason_code=16")

	// The web softphone unregisters: one contact left, the AOR is dialled.
	h.c.mu.Lock()
	h.c.onContact("a1", web, "Removed")
	h.c.mu.Unlock()
	if got := h.c.contactForks("a1"); len(got) != 1 || got[0] != "PJSIP/a1" {
		t.Fatalf("forks with one contact left: %q", got)
	}
}
