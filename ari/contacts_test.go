package ari

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// TestAppDeviceContactsEachRing: a1's app device has a web and a mobile
// softphone registered. A dial to PJSIP/a1 would ring one of them, so the
// contacts are read (PJSIP_DIAL_CONTACTS through the customer's channel)
// and each is its own fork of the leg; the mobile answers and the web
// fork is hung up. A second dial within the contacts' max age reads
// nothing; once the device went UNAVAILABLE (its device state) they are
// read again, and a device with one contact is dialled as its AOR.
func TestAppDeviceContactsEachRing(t *testing.T) {
	const web, mobile = "sip:a1@127.0.0.1:6101", "sip:a1@127.0.0.1:6102"
	h := start(t)
	h.f.mu.Lock()
	h.f.logContactReads = true
	h.f.mu.Unlock()
	h.f.AddContact("a1", web)
	h.f.AddContact("a1", mobile)
	cust := h.f.Inbound(caller, hotline)
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(cust), Caller: caller, Hotline: hotline})
	h.f.takeRequests()

	dial := func() media.LegID {
		t.Helper()
		leg, err := h.c.Dial(h.ctx, media.DialRequest{CallID: "c", Customer: media.LegID(cust), Target: agentTarget("a1"), Timeout: 15 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		return leg
	}
	readReq := "GET /channels/" + cust + "/variable?variable=" + esc("PJSIP_DIAL_CONTACTS(a1)")
	leg := dial()
	webCh, mobileCh := h.f.channelFor("a1/"+web), h.f.channelFor("a1/"+mobile)
	reqs := h.f.takeRequests()
	if len(reqs) != 3 || reqs[0] != readReq ||
		reqs[1] != originateReq("callfloor", "agent,a1,c", "", string(leg), "PJSIP/a1/"+web, 15) ||
		reqs[2] != originateReq("callfloor", "agent,a1,c", "", mobileCh, "PJSIP/a1/"+mobile, 15) {
		t.Fatalf("requests %q", reqs)
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
	h.f.RemoteHangup(mobileCh)
	h.rec.expect(t, media.LegEnded{Leg: leg, Cause: media.CauseNormal})

	// Within the max age: the same forks, no read.
	leg = dial()
	reqs = h.f.takeRequests()
	if len(reqs) != 2 || !slices.ContainsFunc(reqs, func(r string) bool {
		return r == originateReq("callfloor", "agent,a1,c", "", string(leg), "PJSIP/a1/"+web, 15)
	}) {
		t.Fatalf("second dial's requests %q", reqs)
	}
	if err := h.c.Hangup(h.ctx, leg, media.CauseNormal); err != nil {
		t.Fatal(err)
	}
	h.rec.expect(t, media.LegEnded{Leg: leg, Cause: media.CauseNormal})
	h.f.takeRequests()

	// Both softphones go; the mobile registers again, alone: one contact,
	// the AOR is dialled.
	h.f.Register("a1", false)
	h.rec.expect(t, media.DeviceState{AgentID: "a1", Device: "PJSIP/a1", Registered: false})
	h.f.Register("a1", true)
	h.rec.expect(t, media.DeviceState{AgentID: "a1", Device: "PJSIP/a1", Registered: true})
	leg = dial()
	if reqs := h.f.takeRequests(); len(reqs) != 2 || reqs[0] != readReq ||
		reqs[1] != originateReq("callfloor", "agent,a1,c", "", string(leg), "PJSIP/a1", 15) {
		t.Fatalf("dial with one contact: %q", reqs)
	}
}

// TestParseDialContacts: PJSIP_DIAL_CONTACTS' value as forks of one
// endpoint — another endpoint's or an empty entry is not a fork, and
// fewer than two contacts dial the endpoint.
func TestParseDialContacts(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  []string
	}{
		{"", []string{"PJSIP/a1"}},
		{"PJSIP/a1/sip:a1@h:1", []string{"PJSIP/a1"}},
		{"PJSIP/a1/sip:a1@h:2&PJSIP/a1/sip:a1@h:1", []string{"PJSIP/a1/sip:a1@h:1", "PJSIP/a1/sip:a1@h:2"}},
		{"PJSIP/a1/sip:a1@h:2&PJSIP/a1/sip:a1@h:2", []string{"PJSIP/a1"}},
		{"PJSIP/a1/&PJSIP/a10/sip:x&PJSIP/a1/sip:a1@h:1", []string{"PJSIP/a1"}},
	} {
		if got := parseDialContacts(tc.value, "PJSIP/a1"); !slices.Equal(got, tc.want) {
			t.Errorf("%q: %q, want %q", tc.value, got, tc.want)
		}
	}
}

// FuzzParseDialContacts: whatever Asterisk returns, a dial is the
// endpoint itself or two or more distinct, sorted forks of that endpoint.
func FuzzParseDialContacts(f *testing.F) {
	f.Add("PJSIP/a1/sip:a1@h:2&PJSIP/a1/sip:a1@h:1")
	f.Add("PJSIP/a1/sip:a1@h:1")
	f.Add("&&PJSIP/a10/x&PJSIP/a1/")
	f.Fuzz(func(t *testing.T, value string) {
		got := parseDialContacts(value, "PJSIP/a1")
		if len(got) == 1 && got[0] == "PJSIP/a1" {
			return
		}
		if len(got) < 2 || !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			t.Fatalf("%q → %q", value, got)
		}
		for _, f := range got {
			if uri, ok := strings.CutPrefix(f, "PJSIP/a1/"); !ok || uri == "" || strings.Contains(f, "&") {
				t.Fatalf("%q → fork %q", value, f)
			}
		}
	})
}
