package esl

import (
	"errors"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestE2EReconnectKeepsAnsweredCall: the event socket drops mid-call; the
// client reconnects, resyncs from show channels/calls, and routing keeps
// the call answered and in control: the agent's later hangup still ends
// it properly.
func TestE2EReconnectKeepsAnsweredCall(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	cust, a1 := custUUID(1), legUUID(1)

	f.fs.drop()
	f.waitConnected() // auth, subscribe, show channels/calls/registrations
	f.wantCommands()  // routing hangs nothing up: both legs are present
	f.wantCall(id, routing.StateAnswered, "a1")
	f.wantAgent("a1", presence.SysTalking, id)
	// show calls restored the bridge: connecting again is a no-op.
	if err := f.cl.Connect(f.ctx, routing.LegID(cust), routing.LegID(a1)); err != nil {
		t.Fatal(err)
	}
	f.wantCommands()

	f.fs.bye(a1)
	f.wantCommands("api uuid_kill " + cust + " NORMAL_CLEARING")
	f.wantGone(id)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
}

// TestE2EReconnectAfterLegEndedUnseen: while callfloor is disconnected
// the agent hangs up (the caller parks, park_after_bridge); FreeSWITCH
// replays nothing, so the resync finds the agent's leg missing and
// routing ends the call and hangs up the parked caller.
func TestE2EReconnectAfterLegEndedUnseen(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	cust, a1 := custUUID(1), legUUID(1)

	f.fs.refuseConnections(true)
	f.fs.drop()
	f.eventually("client noticed the drop", func() error {
		if f.cl.Connected() {
			return errors.New("still connected")
		}
		return nil
	})
	f.fs.bye(a1) // nobody hears it
	time.Sleep(20 * time.Millisecond)
	f.fs.refuseConnections(false)
	f.waitConnected()
	f.wantCommands("api uuid_kill " + cust + " NORMAL_CLEARING")
	f.wantGone(id)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
	if f.fs.alive(cust) {
		t.Error("the parked caller was left on FreeSWITCH")
	}
}

// TestE2EActionWhileDisconnected: routing's commands while the
// socket is down fail with ErrMediaUnavailable (the API's 503) and leave
// the call as it was.
func TestE2EActionWhileDisconnected(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	f.fs.refuseConnections(true)
	f.fs.drop()
	f.eventually("client noticed the drop", func() error {
		if f.cl.Connected() {
			return errors.New("still connected")
		}
		return nil
	})
	_, err := f.eng.StartMonitor(f.ctx, f.actor("sup-sales"), id, routing.MonitorListen, "")
	if !errors.Is(err, routing.ErrMediaUnavailable) {
		t.Fatalf("monitor while disconnected: %v, want ErrMediaUnavailable", err)
	}
	f.wantMonitor(id, nil)
	f.wantCall(id, routing.StateAnswered, "a1")
	f.fs.refuseConnections(false)
	f.waitConnected()
	f.wantCommands()
	f.wantCall(id, routing.StateAnswered, "a1")
}
