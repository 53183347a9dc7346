package ari

import (
	"testing"

	"github.com/callfloor/callfloor/media"
)

// seedMonitoredCall leaves in the fake what a controller left behind
// when it stopped: a customer and agent a1 in the call bridge and a
// supervisor leg, either with a snoop in a spy bridge (mode listen or
// whisper) or in the call bridge (barge).
func seedMonitoredCall(f *fakeARI, mode media.MonitorMode) (cust string) {
	cust = f.Inbound(caller, hotline)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.chans["agent"] = &fakeChan{id: "agent", name: "PJSIP/a1-00000009", state: "Up", caller: caller, context: "from-internal",
		exten: "s", appName: "Stasis", appData: "callfloor,agent,a1,call-9", inStasis: true, originated: true, bridge: "b-call"}
	f.chans["sup"] = &fakeChan{id: "sup", name: "PJSIP/sup-sales-0000000a", state: "Up", caller: caller, context: "from-internal",
		exten: "s", appName: "Stasis", appData: "callfloor,supervisor,sup-sales,call-9", inStasis: true, originated: true}
	f.chans[cust].bridge = "b-call"
	f.bridges["b-call"] = &fakeBridge{id: "b-call", typ: "mixing", tech: "simple_bridge", name: "call-" + cust, chans: []string{cust, "agent"}}
	if mode == media.MonitorBarge {
		f.bridges["b-call"].chans = append(f.bridges["b-call"].chans, "sup")
		f.chans["sup"].bridge = "b-call"
		return cust
	}
	f.chans["old-snoop"] = &fakeChan{id: "old-snoop", name: "Snoop/agent-00000000", state: "Up", context: "default", exten: "s",
		appName: "Stasis", appData: "callfloor,snoop," + string(mode) + ",agent", inStasis: true, snoop: true, bridge: "b-spy"}
	f.chans["sup"].bridge = "b-spy"
	f.bridges["b-spy"] = &fakeBridge{id: "b-spy", typ: "mixing", tech: "simple_bridge", name: "spy-agent", chans: []string{"old-snoop", "sup"}}
	return cust
}

// After a restart, a supervisor's snoop and spy bridge are kept and the
// monitor's mode is known again, so mode changes work.
func TestRestartRejoinsListeningMonitor(t *testing.T) {
	f := newFake(t)
	defer f.Close()
	seedMonitoredCall(f, media.MonitorWhisper)
	h := startOn(t, f)
	h.rec.drain()
	f.expectRequests(connectRequests...) // the snoop is not hung up
	if err := h.c.SetMonitorMode(h.ctx, "sup", media.MonitorWhisper); err != nil {
		t.Fatal(err)
	}
	f.expectRequests() // already whispering
	if err := h.c.SetMonitorMode(h.ctx, "sup", media.MonitorBarge); err != nil {
		t.Fatal(err)
	}
	f.expectRequests("POST /bridges/b-spy/removeChannel?channel=sup", "POST /bridges/b-call/addChannel?channel=sup",
		"DELETE /channels/old-snoop", "DELETE /bridges/b-spy")
}

func TestRestartRejoinsBargingMonitor(t *testing.T) {
	f := newFake(t)
	defer f.Close()
	seedMonitoredCall(f, media.MonitorBarge)
	h := startOn(t, f)
	h.rec.drain()
	f.expectRequests(connectRequests...)
	if err := h.c.SetMonitorMode(h.ctx, "sup", media.MonitorListen); err != nil {
		t.Fatal(err)
	}
	snoop := f.snoopOn("agent")
	spy := f.bridgeNamed("spy-agent")
	f.expectRequests("POST /bridges/b-call/removeChannel?channel=sup", snoopReq("agent", "listen", "none", snoop),
		"POST /bridges?name=spy-agent&type=mixing", "POST /bridges/"+spy+"/addChannel?channel="+esc(snoop+",sup"))
}

// A snoop whose supervisor is gone is still hung up, its bridge removed.
func TestRestartHangsUpSnoopWithoutMonitor(t *testing.T) {
	f := newFake(t)
	defer f.Close()
	seedMonitoredCall(f, media.MonitorListen)
	f.mu.Lock()
	delete(f.chans, "sup")
	f.bridges["b-spy"].chans = []string{"old-snoop"}
	f.mu.Unlock()
	h := startOn(t, f)
	h.rec.drain()
	f.expectRequests(append(connectRequests, "DELETE /channels/old-snoop?reason_code=16", "DELETE /bridges/b-spy")...)
}

// After a restart, devices an earlier controller was ringing (ids it
// chose, not in Stasis yet) are listed as ringing legs and their answer
// or failure is reported; other applications' channels are not ours.
func TestRestartAdoptsRingingLegs(t *testing.T) {
	f := newFake(t)
	defer f.Close()
	const ringing, sup, foreign = "cf-0123456789abcdef", "cf-fedcba9876543210", "1795288300.77"
	f.mu.Lock()
	for _, id := range []string{ringing, sup, foreign} {
		args := []string{"agent", "a1", "call-9"}
		if id == sup {
			args = []string{"supervisor", "sup-sales", "call-9"}
		}
		f.chans[id] = &fakeChan{id: id, name: "PJSIP/a1-0000000b", state: "Ringing", caller: caller, context: "from-internal",
			exten: "s", appName: "AppDial2", appData: "(Outgoing Line)", args: args, originated: true, endpoint: "a1"}
	}
	f.mu.Unlock()
	h := startOn(t, f)
	h.rec.await(1) // the resync's snapshot
	got := h.rec.drain()
	want := media.LegsPresent{Legs: []media.LegSnapshot{{Leg: ringing}, {Leg: sup}}}
	if len(got) == 0 || fmtFact(got[0]) != fmtFact(want) {
		t.Fatalf("first fact %+v, want %+v", got, want)
	}
	f.expectRequests(connectRequests...)
	f.AnswerDevice(sup)
	h.rec.expect(t, media.LegAnswered{Leg: sup})
	h.c.mu.Lock()
	kind := h.c.legs[sup].kind
	h.c.mu.Unlock()
	if kind != kindMonitor {
		t.Fatalf("answered supervisor leg kind %v, want monitor", kind)
	}
	f.mu.Lock()
	f.destroyed(f.chans[ringing], 17, "User busy")
	f.mu.Unlock()
	h.rec.expect(t, media.LegEnded{Leg: ringing, Cause: media.CauseBusy})
	f.NoAnswer(foreign)
	h.rec.expect(t)
}

func TestDialledByUs(t *testing.T) {
	for id, want := range map[string]bool{
		newID(dialPrefix): true, "cf-0123456789abcdef": true, "cf-0123456789abcdeg": false, "cf-0123": false,
		"snoop-0123456789abcdef": false, "1795288300.77": false, "": false, "cf-0123456789ABCDEF": false,
	} {
		if got := dialledByUs(id); got != want {
			t.Errorf("dialledByUs(%q) = %v, want %v", id, got, want)
		}
	}
}
