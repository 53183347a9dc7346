package ari

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// endpoint-presence.jsonl: a3 registers then unregisters; one DeviceState
// per change although Asterisk sends three events each time.
func TestEndpointPresence(t *testing.T) {
	h := start(t)
	h.f.Register("a3", true)
	h.rec.expect(t, media.DeviceState{AgentID: "a3", Device: "PJSIP/a3", Registered: true})
	h.f.Register("a3", false)
	h.rec.expect(t, media.DeviceState{AgentID: "a3", Device: "PJSIP/a3", Registered: false})
	h.f.Send(`{"type":"DeviceStateChanged","timestamp":"2026-11-21T19:09:40.100+0000","device_state":{"name":"PJSIP/a3","state":"NOT_INUSE"},"asterisk_id":"02:fc:00:00:00:01","application":"callfloor"}`)
	h.rec.expect(t, media.DeviceState{AgentID: "a3", Device: "PJSIP/a3", Registered: true})
	h.f.expectRequests()
}

// reconnect.jsonl: the socket drops mid-call, the agent hangs up while
// nobody listens (Asterisk does not replay it), the client reconnects,
// re-subscribes, reads /channels and /bridges, ends the agent's leg and
// keeps the customer's call.
func TestReconnectResyncKeepsCall(t *testing.T) {
	conn := &connLog{}
	h := start(t, WithObserver(conn))
	cust, agent, call := h.inCall(t)

	h.f.Cut(true)
	waitFor(t, func() bool { return !h.c.Connected() })
	if _, err := h.c.Dial(h.ctx, media.DialRequest{Target: agentTarget("a2")}); !errors.Is(err, media.ErrMediaUnavailable) {
		t.Fatalf("Dial while disconnected = %v, want ErrMediaUnavailable", err)
	}
	h.f.RemoteHangup(string(agent)) // lost: no socket
	h.f.takeRequests()
	h.f.SetDown(false)

	h.f.expectRequests(reconnectRequests...)
	waitFor(t, h.c.Connected)
	h.rec.expect(t,
		media.LegsPresent{Legs: []media.LegSnapshot{{Leg: cust, Answered: true, Caller: caller, Hotline: hotline}}},
		media.LegEnded{Leg: agent, Cause: media.CauseNormal})
	// (no DeviceState: registrations did not change while away)
	// The call goes on: a new agent is connected into the same bridge.
	a2 := h.dialAgent(t, "a2", 15*time.Second)
	h.answered(t, a2)
	if err := h.c.Connect(h.ctx, cust, a2); err != nil {
		t.Fatal(err)
	}
	h.f.expectRequests("POST /bridges/" + call + "/addChannel?channel=" + string(a2))
	if h.f.Conns() != 2 {
		t.Fatalf("connections = %d, want 2", h.f.Conns())
	}
	// The observer (metrics: connection state, reconnects) saw it all.
	if got := conn.String(); got != "up down up" {
		t.Fatalf("observed connection states %q, want \"up down up\"", got)
	}
}

// connLog records what a media.Observer is told.
type connLog struct {
	media.NopObserver // lag and refusals: TestRefusesCallsWhileEventsLag
	mu                sync.Mutex
	states            []string
}

func (l *connLog) Connected(up bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.states = append(l.states, map[bool]string{true: "up", false: "down"}[up])
}

func (l *connLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.states, " ")
}

// After a controller restart, channels still in Stasis are adopted and
// listed; our empty bridges and orphan snoops are removed.
func TestRestartAdoptsAndCleansOrphans(t *testing.T) {
	f := newFake(t)
	defer f.Close()
	// State left by a previous controller.
	cust := f.Inbound(caller, hotline)
	f.mu.Lock()
	f.chans["old-agent"] = &fakeChan{id: "old-agent", name: "PJSIP/a1-00000009", state: "Up", caller: caller,
		context: "from-internal", exten: "s", appName: "Stasis", appData: "callfloor,agent,a1,call-9", inStasis: true, originated: true}
	f.chans["old-snoop"] = &fakeChan{id: "old-snoop", name: "Snoop/old-agent-00000000", state: "Up",
		context: "default", exten: "s", appName: "Stasis", appData: "callfloor,snoop,listen,old-agent", inStasis: true, snoop: true}
	f.bridges["b-call"] = &fakeBridge{id: "b-call", typ: "mixing", tech: "simple_bridge", name: "call-" + cust, chans: []string{cust, "old-agent"}}
	f.chans[cust].bridge, f.chans["old-agent"].bridge = "b-call", "b-call"
	f.bridges["b-spy"] = &fakeBridge{id: "b-spy", typ: "mixing", tech: "simple_bridge", name: "spy-old-agent", chans: []string{"old-snoop"}}
	f.chans["old-snoop"].bridge = "b-spy"
	f.bridges["b-hold"] = &fakeBridge{id: "b-hold", typ: "holding", tech: "holding_bridge", name: "hold-gone", chans: []string{}}
	f.bridges["b-other"] = &fakeBridge{id: "b-other", typ: "mixing", tech: "simple_bridge", name: "someone-elses", chans: []string{}}
	f.mu.Unlock()

	h := startOn(t, f)
	h.rec.await(1) // the resync's snapshot; under load it takes more than drain's pause
	got := h.rec.drain()
	want := media.LegsPresent{Legs: []media.LegSnapshot{
		{Leg: media.LegID(cust), Answered: false, Caller: caller, Hotline: hotline},
		{Leg: "old-agent", Answered: true, Caller: caller},
	}}
	if len(got) == 0 || stripTime(got[0]).(media.LegsPresent).Legs == nil || fmtFact(got[0]) != fmtFact(want) {
		t.Fatalf("first fact %+v, want %+v", got, want)
	}
	f.expectRequests(append(slices.Clone(connectRequests),
		"DELETE /channels/old-snoop?reason_code=16", "DELETE /bridges/b-hold", "DELETE /bridges/b-spy")...)
	// Adopted legs take commands.
	if err := h.c.Hangup(h.ctx, "old-agent", media.CauseNormal); err != nil {
		t.Fatal(err)
	}
	h.rec.expect(t, media.LegEnded{Leg: "old-agent", Cause: media.CauseNormal})
}

// Asterisk keeps one live socket per application: a second connection
// replaces ours (ApplicationReplaced); the client backs off and comes back.
func TestSecondConnectionReplacesFirst(t *testing.T) {
	h := start(t)
	other := dialRaw(t, h.f)
	waitFor(t, func() bool { return h.f.Conns() >= 3 }) // the client took the app back
	h.f.expectRequests(reconnectRequests...)
	buf := make([]byte, 512)
	_ = other.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, _ := other.Read(buf)
	if want := `"type":"ApplicationReplaced"`; !contains(string(buf[:n]), want) {
		t.Fatalf("replaced socket got %q, want %s", buf[:n], want)
	}
	_ = other.Close()
}

// Unknown event types (newer Asterisk) and garbage are skipped; the
// events after them are still handled, in order.
func TestBadEventsAreSkipped(t *testing.T) {
	h := start(t)
	for _, raw := range []string{
		`{"type":"ChannelTransfer","timestamp":"2026-11-21T19:09:40.100+0000","application":"callfloor"}`,
		`{"type":"ApplicationRegistered","application":"callfloor"}`,
		`{"type":"StasisStart","channel":"not an object"}`,
		`{"type":"ChannelDestroyed","cause":"sixteen"}`,
		`{"type":""}`, `not json`, `[]`, `null`, ``,
		`{"type":"StasisStart","timestamp":"bad time","args":[],"channel":{"id":""}}`,
	} {
		h.f.Send(raw)
	}
	cust := h.f.Inbound(caller, hotline)
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(cust), Caller: caller, Hotline: hotline})
	if !h.c.Connected() {
		t.Fatal("bad events dropped the connection")
	}
}
