package esl

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// TestReconnectResync: the connection drops mid-call (no exit), a call
// ends while we are away, and the new connection rebuilds state from
// show channels/calls without losing the call still up.
func TestReconnectResync(t *testing.T) {
	const (
		c1 = "db564c3c-714e-47bd-ac00-6980671c891b"
		a1 = "b7d3a295-3e30-4157-b79c-697b0d04e125"
		c2 = "4247051b-38ac-4ed6-923a-79e0468a0f11"
		a2 = "95086238-5576-46c2-b12f-4d84e37a9f50"
	)
	lines := loadTranscript(t, "reconnect.jsonl")
	first := script(t, "reconnect-1", lines, 1, append(connectSteps(),
		rec(2, "api uuid_answer "+c1),
		rec(3, "api uuid_broadcast "+c1+" local_stream://default aleg"),
		rec(4, originateA(a1, "a1", 15)),
		setPAB(c1),
		rec(5, "api uuid_bridge "+c1+" "+a1),
		rec(6, "api uuid_answer "+c2),
		rec(7, "api uuid_broadcast "+c2+" local_stream://default aleg"),
		rec(8, originateA(a2, "a2", 15)),
		setPAB(c2),
		rec(9, "api uuid_bridge "+c2+" "+a2),
	))
	first.hangUp = true // closed abruptly, as recorded
	secondSteps := []step{
		rec(0, "auth callfloor"),
		rec(1, ourSubscription),
		rec(2, "api show channels as json"),
		rec(3, "api show calls as json"),
		{slot: -1, want: "api show registrations as json", reply: apiResponse(emptyRows), after: true},
		// slots 4–9 (show bridged_calls, uuid_exists, uuid_dump) were the
		// recorder's own checks; show channels already answers them.
		rec(10, "api uuid_kill "+c2+" NORMAL_CLEARING"),
	}
	second := script(t, "reconnect-2", lines, 2, secondSteps)
	f := newFakeFS(t, first, second)
	facts := newRecorder()
	conn := &connLog{}
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a1, a2), WithObserver(conn))

	for _, call := range []struct{ cust, agent, hotline string }{{c1, a1, hotline}, {c2, a2, hotline2}} {
		facts.wait(t, arrivedOn(call.cust, call.hotline))
		answerAndHold(t, r, call.cust)
		dial(t, r, dialAgent(map[string]string{a1: "a1", a2: "a2"}[call.agent], 15), call.agent)
		facts.wait(t, answered(call.agent))
		if err := r.Connect(ctx(t), media.LegID(call.cust), media.LegID(call.agent)); err != nil {
			t.Fatalf("Connect: %v", err)
		}
	}
	f.waitPlayed("reconnect-1")

	present := media.LegsPresent{FactBase: at(), Legs: []media.LegSnapshot{
		{Leg: c2, Answered: true, Caller: caller, Hotline: hotline2},
		{Leg: a2, Answered: true, Caller: caller},
	}}
	facts.wait(t, present)
	f.waitCommand("api show registrations as json", 2) // resync done
	hangup(t, r, c2)                                   // the call that survived is still ours to control
	f.waitPlayed("reconnect-2")
	facts.wait(t, ended(a2, media.CauseNormal))

	assertFacts(t, facts,
		nothingPresent(),
		arrived(c1), ringing(a1), answered(a1),
		arrivedOn(c2, hotline2), ringing(a2), answered(a2),
		// Second connection: what is still up, then the call that ended
		// while we were away (after the snapshot, so routing never takes
		// a leg it is letting go of for a new one).
		present,
		ended(a1, media.CauseNormal), ended(c1, media.CauseNormal),
		ended(c2, media.CauseNormal), ended(a2, media.CauseNormal),
	)
	assertCommands(t, f, append(wantCommands(firstSteps(first)), wantCommands(secondSteps)...)...)
	// The observer (metrics: connection state, reconnects) saw it all.
	if got := conn.String(); got != "up down up" {
		t.Fatalf("observed connection states %q, want \"up down up\"", got)
	}
}

// connLog records what a media.Observer is told.
type connLog struct {
	media.NopObserver
	mu     sync.Mutex
	states []string
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

// firstSteps recovers the command list of a built script.
func firstSteps(cs *connScript) []step {
	var out []step
	for _, a := range cs.actions {
		if a.expect != "" {
			out = append(out, step{want: a.expect})
		}
	}
	return out
}

func TestPresence(t *testing.T) {
	steps := []step{
		rec(0, "auth callfloor"),
		rec(1, ourSubscription),
		{slot: -1, want: "api show channels as json", reply: apiResponse(emptyRows), after: true},
		{slot: -1, want: "api show calls as json", reply: apiResponse(emptyRows), after: true},
		// The recorded reply was taken right after a3's sofia::register
		// and does not list a3 yet: FreeSWITCH's table lags its events.
		rec(2, "api show registrations as json"),
	}
	f := newFakeFS(t, script(t, "presence", loadTranscript(t, "presence.jsonl"), 1, steps))
	facts := newRecorder()
	start(t, testConfig(f.addr()), facts)
	f.waitPlayed("presence")

	dev := func(agent, contact string, reg bool, until time.Time) media.Fact {
		return media.DeviceState{FactBase: at(), AgentID: agent, Device: contact, Registered: reg, Until: until}
	}
	table := time.Unix(1795292296, 0)
	last := dev("a4", "sip:a4@127.0.0.1:6004", false, time.Time{})
	facts.wait(t, last)
	assertFacts(t, facts,
		nothingPresent(),
		dev("a3", "sip:a3@127.0.0.1:6003", true, t0.Add(3600*time.Second)),
		// From show registrations; a3 is kept although the rows lack it.
		dev("a1", "sip:a1@127.0.0.1:6001", true, table),
		dev("a2", "sip:a2@127.0.0.1:6002", true, table),
		dev("sup-sales", "sip:sup-sales@127.0.0.1:6010", true, table),
		dev("a3", "sip:a3@127.0.0.1:6003", false, time.Time{}), // sofia::unregister
		dev("a4", "sip:a4@127.0.0.1:6004", true, t0.Add(5*time.Second)),
		last, // sofia::expire, 65 s later, "expires" an absolute epoch
	)
	assertCommands(t, f, wantCommands(steps)...)
}

func TestBadPassword(t *testing.T) {
	f := newFakeFS(t, script(t, "badauth", loadTranscript(t, "connect-badauth.jsonl"), 1, []step{rec(0, "auth wrong-password")}))
	cfg := testConfig(f.addr())
	cfg.Password = "wrong-password"
	r := start(t, cfg, newRecorder())
	select {
	case err := <-r.done:
		r.done <- err
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("Run = %v, want ErrAuthFailed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept going after -ERR invalid")
	}
	if r.Connected() {
		t.Error("Connected after a refused password")
	}
	assertCommands(t, f, "auth wrong-password")
}

// TestConnectRegistrationsAndDisconnectNotice: resync reports the
// registered devices; Hangup of a missing uuid is no error; the
// disconnect-notice that ends the recording makes the client reconnect.
func TestConnectRegistrationsAndDisconnectNotice(t *testing.T) {
	const missing = "00000000-0000-0000-0000-000000000000"
	steps := []step{
		rec(0, "auth callfloor"),
		rec(1, ourSubscription),
		rec(3, "api show channels as json"),
		rec(4, "api show calls as json"),
		rec(5, "api show registrations as json"),
		rec(9, "api uuid_kill "+missing+" NORMAL_CLEARING"),
	}
	// After it, the recording's unclaimed BACKGROUND_JOB and the
	// disconnect-notice are still sent.
	f := newFakeFS(t, script(t, "connect", loadTranscript(t, "connect.jsonl"), 1, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts)
	f.waitCommand("api show registrations as json", 1) // resync done
	if err := r.Hangup(ctx(t), missing, media.CauseNormal); err != nil {
		t.Fatalf("Hangup of a missing uuid: %v", err)
	}
	f.waitPlayed("connect")
	deadline := time.Now().Add(10 * time.Second)
	for r.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("still connected after disconnect-notice")
		}
		time.Sleep(2 * time.Millisecond)
	}
	if err := r.Answer(ctx(t), missing); !errors.Is(err, media.ErrMediaUnavailable) {
		t.Errorf("Answer while disconnected = %v, want ErrMediaUnavailable", err)
	}
	if _, err := r.Dial(ctx(t), dialAgent("a1", 15)); !errors.Is(err, media.ErrMediaUnavailable) {
		t.Errorf("Dial while disconnected = %v, want ErrMediaUnavailable", err)
	}
	r.mu.Lock()
	if n := len(r.st.legs); n != 0 {
		t.Errorf("a failed Dial left %d legs tracked", n)
	}
	r.mu.Unlock()
	table := time.Unix(1795292296, 0)
	dev := func(agent, contact string) media.Fact {
		return media.DeviceState{FactBase: at(), AgentID: agent, Device: contact, Registered: true, Until: table}
	}
	assertFacts(t, facts,
		nothingPresent(),
		dev("a1", "sip:a1@127.0.0.1:6001"),
		dev("a2", "sip:a2@127.0.0.1:6002"),
		dev("sup-sales", "sip:sup-sales@127.0.0.1:6010"),
	)
	assertCommands(t, f, wantCommands(steps)...)
}

// TestHeartbeatWatchdog: a connection that goes silent (no HEARTBEAT, no
// EOF — a half-open TCP connection) is dropped and replaced.
func TestHeartbeatWatchdog(t *testing.T) {
	lines := loadTranscript(t, "connect.jsonl")
	silent := func(name string) *connScript {
		cs := script(t, name, lines, 1, connectSteps())
		// Keep the handshake and resync; drop the rest of the recording.
		n := 0
		for i, a := range cs.actions {
			if a.expect != "" {
				n = i
			}
		}
		cs.actions = cs.actions[:n+1]
		return cs
	}
	f := newFakeFS(t, silent("silent-1"), silent("silent-2"))
	facts := newRecorder()
	start(t, testConfig(f.addr()), facts, WithHeartbeatTimeout(150*time.Millisecond))
	f.waitPlayed("silent-1")
	f.waitPlayed("silent-2") // the client gave up on the first and came back
	facts.wait(t, nothingPresent())
	assertCommands(t, f, append(wantCommands(connectSteps()), wantCommands(connectSteps())...)...)
}

// TestRestartAdoptsLiveCalls: a callfloor that starts while calls are up
// (a restart) adopts every channel, reports them in LegsPresent, and
// reports their hangups.
func TestRestartAdoptsLiveCalls(t *testing.T) {
	const (
		c2 = "4247051b-38ac-4ed6-923a-79e0468a0f11"
		a2 = "95086238-5576-46c2-b12f-4d84e37a9f50"
	)
	steps := []step{
		rec(0, "auth callfloor"),
		rec(1, ourSubscription),
		rec(2, "api show channels as json"),
		rec(3, "api show calls as json"),
		{slot: -1, want: "api show registrations as json", reply: apiResponse(emptyRows), after: true},
		rec(10, "api uuid_kill "+c2+" NORMAL_CLEARING"),
	}
	f := newFakeFS(t, script(t, "restart", loadTranscript(t, "reconnect.jsonl"), 2, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts)
	present := media.LegsPresent{FactBase: at(), Legs: []media.LegSnapshot{
		{Leg: c2, Answered: true, Caller: caller, Hotline: hotline2},
		{Leg: a2, Answered: true, Caller: caller},
	}}
	facts.wait(t, present)
	f.waitCommand("api show registrations as json", 1)
	// show calls paired them: connecting them again is a no-op.
	if err := r.Connect(ctx(t), c2, a2); err != nil {
		t.Fatalf("Connect of a bridged pair: %v", err)
	}
	hangup(t, r, c2)
	f.waitPlayed("restart")
	facts.wait(t, ended(a2, media.CauseNormal))
	assertFacts(t, facts, present, ended(c2, media.CauseNormal), ended(a2, media.CauseNormal))
	assertCommands(t, f, wantCommands(steps)...)
}
