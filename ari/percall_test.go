package ari

import (
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// countLog counts what the client tells its observer about its traffic
// with Asterisk.
type countLog struct {
	media.NopObserver
	mu       sync.Mutex
	requests map[string]int
	events   map[string]int
}

func (c *countLog) RequestSent(m string) { c.mu.Lock(); c.requests[m]++; c.mu.Unlock() }
func (c *countLog) EventReceived(t string) {
	c.mu.Lock()
	c.events[t]++
	c.mu.Unlock()
}

// take returns the counts so far and starts again from zero.
func (c *countLog) take() (requests, events map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	requests, events = c.requests, c.events
	c.requests, c.events = map[string]int{}, map[string]int{}
	return requests, events
}

func sum(m map[string]int) (n int) {
	for _, v := range m {
		n += v
	}
	return n
}

// everyEndpoint subscribes the client to the whole technology
// ("endpoint:PJSIP"), as it did before it learnt the agents' devices.
func everyEndpoint(c *Client) { c.cfg.Devices = nil }

// TestE2ERequestsPerCall pins what one routed call costs Asterisk
// (docs/performance.md, "Asterisk side by side with app_queue"): a caller
// waiting with ringback, a1 rung, answering, both in one bridge, the
// caller hanging up. REST requests: ring, originate, answer, the two
// channels added to a call bridge in one request, a1 hung up — 5. The
// bridge, empty again, is kept for the next call (retireBridge), so only
// the first call creates one (one request more) and none is deleted; the
// first call also reads a1's contacts before the dial (one GET, kept for
// DefaultContactsMaxAge, so the next calls read nothing). With music on
// hold one more: music on the caller's channel and off again, no holding
// bridge. ARI events, with the event filter and the fake's model of
// subscriptions (fakesubs_test.go): subscribed to the agents' device
// states, a1's channel events come once and its device changes state
// three times (ringing, in use, not in use); subscribed to all of PJSIP
// (the fallback without a device list), a1's and the trunk's channel
// events come twice and their endpoints change state instead. No
// BridgeDestroyed: the bridge lives on. Requests go over kept-alive
// connections: five calls use at most a few.
func TestE2ERequestsPerCall(t *testing.T) {
	agentEvents := map[string]int{"StasisStart": 2, "StasisEnd": 2, "Dial": 3,
		"ChannelHangupRequest": 2, "ChannelDestroyed": 1, "ChannelEnteredBridge": 2, "ChannelLeftBridge": 2,
		"DeviceStateChanged": 3}
	everyEvents := maps.Clone(agentEvents)
	delete(everyEvents, "DeviceStateChanged")
	everyEvents["EndpointStateChange"] = 4 // a1's and the trunk's, as their channels come and go
	everyEvents["duplicate"] = 6           // a1's and the caller's channel events, again through endpoint:PJSIP
	for _, tc := range []struct {
		name   string
		mode   media.HoldMode
		opts   []Option
		want   int
		events map[string]int
	}{
		{"ringback", media.HoldRingback, nil, 5, agentEvents},
		{"music", media.HoldMusic, nil, 6, agentEvents},
		{"ringback, every endpoint", media.HoldRingback, []Option{everyEndpoint}, 5, everyEvents},
	} {
		t.Run(tc.name, func(t *testing.T) {
			obs := &countLog{requests: map[string]int{}, events: map[string]int{}}
			h := startE2E(t, append([]Option{WithObserver(obs)}, tc.opts...)...)
			mode := tc.mode
			if _, err := h.eng.UpdateQueue(h.ctx, h.admin, "sales", routing.QueueInput{WaitMode: &mode}); err != nil {
				t.Fatal(err)
			}
			h.available("a1")
			h.flush()
			h.f.mu.Lock()
			h.f.restConns = nil
			h.f.mu.Unlock()
			const calls = 5
			for i := range calls {
				h.f.takeRequests()
				obs.take()
				id, cust := h.arrive(caller)
				a1 := h.channelTo("a1")
				h.f.Ring(a1)
				h.f.AnswerDevice(a1)
				h.waitCall(id, routing.StateAnswered, "a1")
				h.f.RemoteHangup(cust)
				h.waitGone(id)
				h.waitAgent("a1", presence.SysAfterCallWork, "")
				h.eventually("channels gone, one empty bridge kept", func() error {
					h.f.mu.Lock()
					defer h.f.mu.Unlock()
					if len(h.f.chans) != 0 {
						return fmt.Errorf("%d channels left over", len(h.f.chans))
					}
					if len(h.f.bridges) != 1 {
						return fmt.Errorf("%d bridges, want the one kept", len(h.f.bridges))
					}
					for _, b := range h.f.bridges {
						if len(b.chans) != 0 {
							return errors.New("the kept bridge is not empty")
						}
					}
					return nil
				})
				// The last events (ChannelLeftBridge) may still be on their
				// way from the socket to the observer.
				h.eventually("the call's events counted", func() error {
					obs.mu.Lock()
					defer obs.mu.Unlock()
					if n := sum(obs.events); n < sum(tc.events) {
						return fmt.Errorf("%d events so far", n)
					}
					return nil
				})
				reqs, evs := obs.take()
				want, gets := tc.want, 0
				if i == 0 {
					want, gets = want+2, 1 // the bridge created, a1's contacts
				}
				if got := sum(reqs); got != want || reqs["GET"] != gets {
					t.Fatalf("call %d: %d requests %v, want %d with %d GET (%q)", i, got, reqs, want, gets, h.f.takeRequests())
				}
				if !maps.Equal(evs, tc.events) {
					t.Fatalf("call %d: events %v (%d), want %v (%d)", i, evs, sum(evs), tc.events, sum(tc.events))
				}
				if _, err := h.svc.EndWrapUp(h.ctx, presence.System, "a1"); err != nil {
					t.Fatal(err)
				}
				h.eng.Kick()
				h.waitAgent("a1", presence.SysAvailable, "")
			}
			h.f.mu.Lock()
			conns := len(h.f.restConns)
			h.f.mu.Unlock()
			if conns > 4 {
				t.Fatalf("%d calls' requests came over %d connections; keep-alive should reuse a few", calls, conns)
			}
		})
	}
}
