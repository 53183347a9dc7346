package esl

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
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
	if err := f.cl.Connect(f.ctx, media.LegID(cust), media.LegID(a1)); err != nil {
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
	_, err := f.eng.StartMonitor(f.ctx, f.actor("sup-sales"), id, media.MonitorListen, "")
	if !errors.Is(err, media.ErrMediaUnavailable) {
		t.Fatalf("monitor while disconnected: %v, want ErrMediaUnavailable", err)
	}
	f.wantMonitor(id, nil)
	f.wantCall(id, routing.StateAnswered, "a1")
	f.fs.refuseConnections(false)
	f.waitConnected()
	f.wantCommands()
	f.wantCall(id, routing.StateAnswered, "a1")
}

// TestE2ERestartKeepsAnsweredCall: callfloor restarts (new engine, new
// client, same store) mid-call. The new client knows no channel: it
// adopts them from show channels, routing recovers the call from the
// store, and the agent's later hangup still ends the call.
func TestE2ERestartKeepsAnsweredCall(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	cust, a1 := custUUID(1), legUUID(1)

	f.restart()
	f.wantCommands()
	f.wantCall(id, routing.StateAnswered, "a1")
	f.wantAgent("a1", presence.SysTalking, id)

	f.fs.bye(a1)
	f.wantCommands("api uuid_kill " + cust + " NORMAL_CLEARING")
	f.wantGone(id)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
}

// TestE2ECallParkedWhileDisconnected: a call reaches FreeSWITCH while
// callfloor is away (its CHANNEL_PARK is never seen). On reconnect the
// resync reports it in LegsPresent as a customer leg (Hotline set), and
// routing queues it like an arrival (answer, music, ring a1).
func TestE2ECallParkedWhileDisconnected(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialAnswer)
	f.available("a1")
	f.fs.refuseConnections(true)
	f.fs.drop()
	f.eventually("client noticed the drop", func() error {
		if f.cl.Connected() {
			return errors.New("still connected")
		}
		return nil
	})
	cust := custUUID(1)
	f.fs.inbound(cust, caller, hotline) // nobody hears its CHANNEL_PARK
	f.fs.refuseConnections(false)
	f.waitConnected()
	f.settle()
	got := f.fs.takeCommands()
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 {
		t.Fatalf("%d calls after the resync, want the adopted one: commands %q", len(calls), got)
	}
	id := calls[0].ID
	want := []string{
		"api uuid_answer " + cust, "api uuid_broadcast " + cust + moh, originateFor(1, id, "a1", "&park()"),
		"api uuid_setvar " + cust + " park_after_bridge true", "api uuid_bridge " + cust + " " + legUUID(1),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("commands after the resync:\n got: %s\nwant: %s", quoteLines(got), quoteLines(want))
	}
	f.wantCall(id, routing.StateAnswered, "a1")
}

// disconnect makes FreeSWITCH unreachable and drops the socket.
func (f *e2e) disconnect() {
	f.t.Helper()
	f.fs.refuseConnections(true)
	f.fs.drop()
	f.eventually("client noticed the drop", func() error {
		if f.cl.Connected() {
			return errors.New("still connected")
		}
		return nil
	})
}

func (f *e2e) reconnect() {
	f.t.Helper()
	f.fs.refuseConnections(false)
	f.waitConnected()
}

// TestE2EAgentAnsweredWhileDisconnected: a1 picks up while the socket is
// down (CHANNEL_ANSWER and the job result are lost); show channels says
// ACTIVE, the client reports the answer and routing bridges the call —
// no RONA for an agent who answered.
func TestE2EAgentAnsweredWhileDisconnected(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialRing)
	f.available("a1")
	id := f.arrive(1, hotline)
	cust, a1 := custUUID(1), legUUID(1)
	f.wantCommands("api uuid_answer "+cust, "api uuid_broadcast "+cust+moh, originateFor(1, id, "a1", "&park()"))

	f.disconnect()
	f.fs.answerLeg(a1)
	f.reconnect()
	f.wantCommands("api uuid_setvar "+cust+" park_after_bridge true", "api uuid_bridge "+cust+" "+a1)
	f.wantCall(id, routing.StateAnswered, "a1")
	f.wantAgent("a1", presence.SysTalking, id)
}

// TestE2EAgentRangOutWhileDisconnected: a1's originate times out while
// the socket is down; the resync finds the leg gone with its cause lost
// (reported "failed"): the call did not reach a1, so a1 is RONA
// (README.md, "Floor rules") and a2 is rung.
func TestE2EAgentRangOutWhileDisconnected(t *testing.T) {
	f := newE2E(t)
	f.fs.setBehavior(dev("a1"), dialRing)
	f.fs.setBehavior(dev("a2"), dialRing)
	f.available("a1")
	id := f.arrive(1, hotline)
	cust, a1 := custUUID(1), legUUID(1)
	f.wantCommands("api uuid_answer "+cust, "api uuid_broadcast "+cust+moh, originateFor(1, id, "a1", "&park()"))
	f.available("a2")
	f.wantCommands()

	f.disconnect()
	f.fs.endLeg(a1, "NO_ANSWER")
	f.reconnect()
	f.wantCommands(originateFor(2, id, "a2", "&park()"))
	f.wantAgent("a1", presence.SysRONA, "")
	f.wantCall(id, routing.StateRinging, "a2")
}

// TestE2EFreeSWITCHRestartEndsCalls: FreeSWITCH restarts mid-call (every
// channel gone, no hangup events). The resync finds none of the call's
// legs; routing ends the call, and the agent wraps up.
func TestE2EFreeSWITCHRestartEndsCalls(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	f.fs.crash()
	f.waitConnected()
	// LegsPresent (empty) comes first: routing ends the call on its
	// customer leg and hangs up the agent's, which FreeSWITCH no longer
	// has ("-ERR No such channel!", no error).
	f.wantCommands("api uuid_kill " + legUUID(1) + " NORMAL_CLEARING")
	f.wantGone(id)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
}

// wantNoCalls checks that no call is live.
func (f *e2e) wantNoCalls() {
	f.t.Helper()
	f.eventually("no live call", func() error {
		calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
		if err != nil {
			return err
		}
		if len(calls) != 0 {
			return fmt.Errorf("%d live calls: %+v", len(calls), calls)
		}
		return nil
	})
}

// TestE2ESnapshotListsLegRoutingIsHangingUp: the agent hangs up and
// routing ends the call, killing the caller's leg; before FreeSWITCH has
// torn that channel down the socket drops and the resync's snapshot still
// lists the caller (parked, a customer leg). Routing must not take the
// leg it is hanging up for a new arrival.
func TestE2ESnapshotListsLegRoutingIsHangingUp(t *testing.T) {
	f := newE2E(t)
	f.available("a2") // someone a spurious new call could ring
	id := f.answeredCall(1, "a1", 1)
	cust, a1 := custUUID(1), legUUID(1)
	f.fs.setHoldKills(true)
	f.fs.bye(a1)
	f.wantCommands("api uuid_kill " + cust + " NORMAL_CLEARING")
	f.wantGone(id)

	f.fs.drop()
	f.waitConnected()
	f.fs.setHoldKills(false)
	f.fs.releaseKills() // the caller's channel finally goes
	f.settle()
	got := f.fs.takeCommands()
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	s, err := f.eng.Stats(f.ctx, f.admin, "sales", "")
	if err != nil {
		t.Fatal(err)
	}
	// Routing remembers it let the caller go: the stale snapshot entry is
	// hung up again, never adopted (no new call, nobody rung, no miss).
	if want := []string{"api uuid_kill " + cust + " NORMAL_CLEARING"}; len(got) > len(want) || (len(got) == 1 && got[0] != want[0]) {
		t.Errorf("commands after resync = %q, want at most %q", got, want)
	}
	if len(calls) > 0 || s.Missed > 0 {
		t.Errorf("the dying caller was adopted: %d live calls, %d missed", len(calls), s.Missed)
	}
	f.wantNoCalls()
}
