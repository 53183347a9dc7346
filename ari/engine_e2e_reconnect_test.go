package ari

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// cut drops the events socket and keeps Asterisk refusing reconnects
// until reconnect; while away, events are lost as on a real Asterisk.
func (h *e2e) cut() {
	h.t.Helper()
	h.f.Cut(true)
	waitFor(h.t, func() bool { return !h.c.Connected() })
}

// reconnect lets the client back in and waits for its resync and the
// requests that follow from it.
func (h *e2e) reconnect(then ...string) {
	h.t.Helper()
	h.f.SetDown(false)
	h.expectSeq(append(slices.Clone(e2eReconnectRequests), then...)...)
	waitFor(h.t, h.c.Connected)
	h.flush()
}

// (8) reconnect.jsonl: the socket is cut mid-call; the client reconnects,
// re-subscribes and resynchronises; the call is still answered with a1
// talking, and it goes on to end normally.
func TestE2EReconnectKeepsCall(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, _ := h.talking(caller)

	h.cut()
	if _, err := h.eng.StartMonitor(h.ctx, h.sup, id, media.MonitorListen, ""); !errors.Is(err, media.ErrMediaUnavailable) {
		t.Fatalf("monitor while disconnected = %v, want ErrMediaUnavailable", err)
	}
	h.reconnect()
	h.waitCall(id, routing.StateAnswered, "a1")
	h.waitAgent("a1", presence.SysTalking, id)
	if n := h.f.Conns(); n != 2 {
		t.Fatalf("connections = %d, want 2", n)
	}
	h.expectSeq() // nothing hung up, nothing re-created

	// The resynchronised tables still drive the call.
	h.f.RemoteHangup(cust)
	h.waitGone(id)
	h.expectSeq("DELETE /channels/" + a1 + "?reason_code=16")
	h.waitAgent("a1", presence.SysAfterCallWork, "")
}

// The caller hangs up while no socket is connected (Asterisk does not
// replay the StasisEnd): the resync notices, the call ends, a1's leg is
// hung up and a1 wraps up.
func TestE2ECallerLeftWhileDisconnected(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, _ := h.talking(caller)
	h.cut()
	h.f.RemoteHangup(cust)
	h.reconnect("DELETE /channels/" + a1 + "?reason_code=16")
	h.waitGone(id)
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	if s := h.stats(); s.Accepted != 1 || s.Talking != 0 {
		t.Fatalf("stats: %+v", s)
	}
}

// a1 answers while no socket is connected: the StasisStart is lost, but
// the channel is Up in our application when the client resynchronises,
// so the answer must still reach routing (not a RONA 18 s later).
func TestE2EAgentAnsweredWhileDisconnected(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust := h.arrive(caller)
	a1 := h.channelTo("a1")
	h.expectSeq(append(heldRequests(cust), originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))...)
	h.waitAgent("a1", presence.SysRinging, id)

	h.cut()
	h.f.Ring(a1)
	h.f.AnswerDevice(a1)
	h.f.SetDown(false)
	waitFor(t, func() bool { return h.f.Conns() == 2 })
	h.waitCall(id, routing.StateAnswered, "a1")
	h.waitAgent("a1", presence.SysTalking, id)
	call := h.f.bridgeNamed("call-" + cust)
	h.expectChains(e2eReconnectRequests,
		[]string{"DELETE /channels/" + cust + "/moh",
			"POST /bridges?name=call-" + cust + "&type=mixing", "POST /bridges/" + call + "/addChannel?channel=" + esc(cust+","+a1)})
	h.advance(20 * time.Second) // past the ring timeout: nothing to time out
	h.waitAgent("a1", presence.SysTalking, id)
	h.expectSeq()
}

// A ring that ends while no socket is connected (a1's phone rang out):
// the resync ends the leg with an unknown cause; the call goes back to
// its queue and a1, whom it did not reach, is RONA (README.md, "Floor
// rules").
func TestE2ERingEndedWhileDisconnected(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust := h.arrive(caller)
	a1 := h.channelTo("a1")
	h.expectSeq(append(heldRequests(cust), originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))...)
	h.cut()
	h.f.NoAnswer(a1)
	h.reconnect()
	h.waitCall(id, routing.StateCalling, "a1")
	h.waitAgent("a1", presence.SysRONA, "")
	h.expectSeq()
}

// The engine's own ring timeout (the queue's 18 s) hangs up a ringing
// leg with cause 19 and makes the agent RONA, whatever Asterisk does.
func TestE2EEngineRingTimeout(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust := h.arrive(caller)
	a1 := h.channelTo("a1")
	h.expectSeq(append(heldRequests(cust), originate("agent,a1,"+id, caller, a1, "PJSIP/a1", 18))...)
	h.f.Ring(a1)
	h.advance(17 * time.Second)
	h.waitAgent("a1", presence.SysRinging, id)
	h.advance(time.Second)
	h.waitAgent("a1", presence.SysRONA, "")
	h.waitCall(id, routing.StateCalling, "a1")
	h.expectSeq("DELETE /channels/" + a1 + "?reason_code=19")
}

// (9) endpoint-presence.jsonl through presence: a device registering and
// unregistering flips the agent's online flag; so does a registration
// that changed while the socket was down (re-read on resync).
func TestE2EEndpointPresence(t *testing.T) {
	h := startE2E(t)
	online := func(id string, want bool) {
		t.Helper()
		h.eventually(id+" online", func() error {
			if got := h.agent(id).Online; got != want {
				return fmt.Errorf("%s online = %v, want %v", id, got, want)
			}
			return nil
		})
	}
	h.f.Register("a3", true)
	online("a3", true)
	h.f.Register("a3", false)
	online("a3", false)
	// Only the unregistered endpoint's agent flips.
	online("a1", true)

	h.cut()
	h.f.Register("a8", true) // missed: the subscription died with the socket
	h.f.Register("a1", false)
	h.f.Register("a1-desk", false)
	h.reconnect()
	online("a8", true)
	online("a1", false) // neither of a1's devices is registered any more
	// The new socket is subscribed again: live events flow.
	h.f.Register("a1", true)
	online("a1", true)
	h.expectSeq()
}

// The controller restarts mid-call (new engine, new client, same store,
// same Asterisk): the channels stayed in Stasis, the new client adopts
// them and the call bridge, the engine recovers the call from the store,
// and the call goes on to end normally.
func TestE2ERestartKeepsCall(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, _ := h.talking(caller)
	h.restart()
	h.waitCall(id, routing.StateAnswered, "a1")
	h.waitAgent("a1", presence.SysTalking, id)
	h.expectSeq() // nothing hung up or re-created

	h.f.RemoteHangup(cust)
	h.waitGone(id)
	h.expectSeq("DELETE /channels/" + a1 + "?reason_code=16")
	h.waitAgent("a1", presence.SysAfterCallWork, "")
}

// An agent whose record renames its IP phone (a3: ip_phone, desk device
// "desk-a3") is rung on that endpoint, and that endpoint's registration
// must make the agent online: the application subscribes to the renamed
// device at the next device sync and reports its registration, which
// came before.
func TestE2ENamedDevicePresence(t *testing.T) {
	h := startE2E(t, WithDeviceSync(20*time.Millisecond))
	desk, dev := "desk-a3", "PJSIP/desk-a3"
	h.f.Register("desk-a3", true)
	if _, err := h.svc.UpdateAgent(h.ctx, presence.System, "a3", presence.AgentInput{DeskDevice: &desk}); err != nil {
		t.Fatal(err)
	}
	// Routing finds the agent whose record names the endpoint (the client
	// only knows the endpoint: PJSIP/desk-a3 → agent id "desk-a3").
	online := func(want bool) {
		h.eventually("a3 online", func() error {
			if got := h.agent("a3").Online; got != want {
				return fmt.Errorf("a3 online = %v, want %v", got, want)
			}
			return nil
		})
	}
	online(true)
	// The sync: the new device's state subscribed, a3's old desk
	// device's dropped, registrations reported again.
	h.expectSeq(subscribeReq("POST", "deviceState:PJSIP/desk-a3"), subscribeReq("DELETE", "deviceState:PJSIP/a3-desk"), "GET /endpoints")
	h.available("a3")
	id, cust := h.arrive(caller)
	ch := h.channelTo("desk-a3")
	h.expectSeq(append(heldRequests(cust), originate("agent,a3,"+id, caller, ch, dev, 18))...)
	h.f.Register("desk-a3", false)
	online(false)
}

// Devices registered for longer than a day stay online: Asterisk only
// reports changes and presence lets a registration of unknown expiry
// lapse after 24 h, so the client reports registered devices again
// periodically.
func TestE2ELongRegistrationStaysOnline(t *testing.T) {
	h := startE2E(t, WithPresenceRefresh(20*time.Millisecond))
	h.f.Register("a3", true)
	h.eventually("a3 online", func() error {
		if !h.agent("a3").Online {
			return fmt.Errorf("offline")
		}
		return nil
	})
	h.advance(25 * time.Hour)
	h.eventually("registrations refreshed", func() error {
		for _, id := range []string{"a1", "a3"} {
			if a := h.agent(id); !a.DeviceUntil.After(h.clock.Now()) {
				return fmt.Errorf("%s registered until %v", id, a.DeviceUntil)
			}
		}
		return nil
	})
	if err := h.svc.Expire(h.ctx); err != nil {
		t.Fatal(err)
	}
	for id, want := range map[string]bool{"a1": true, "a3": true, "sup-sales": true, "a8": false} {
		if got := h.agent(id).Online; got != want {
			t.Errorf("%s online = %v after a day, want %v", id, got, want)
		}
	}
}

// The agent hangs up while no socket is connected: on resync the call
// ends (agent gone) and the caller is hung up — and only that: the
// caller's channel, still listed when the client resynchronised, must
// not come back as a new call.
func TestE2EAgentLeftWhileDisconnected(t *testing.T) {
	h := startE2E(t)
	h.available("a1")
	id, cust, a1, _ := h.talking(caller)
	h.cut()
	h.f.RemoteHangup(a1)
	h.reconnect("DELETE /channels/" + cust + "?reason_code=16")
	h.waitGone(id)
	if calls := h.callsSoon(); len(calls) != 0 {
		t.Fatalf("calls after the caller was hung up: %+v", calls)
	}
	h.waitAgent("a1", presence.SysAfterCallWork, "")
	if s := h.stats(); s.Accepted != 1 || s.Missed != 0 {
		t.Fatalf("stats: %+v", s)
	}
	h.expectSeq()
}
