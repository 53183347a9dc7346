package ari

import (
	"errors"
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

// TestE2ERequestsPerCall pins what one routed call costs Asterisk in REST
// requests (docs/performance.md, "Asterisk side by side"): a caller waiting
// with ringback, a1 rung, answering, both in one bridge, the caller hanging
// up: ring, originate, answer, one bridge created and filled in one
// request, a1 hung up, the bridge deleted — 7 requests, no GET, no
// holding bridge; with music on hold 12 (answer, holding bridge, its
// music, and leaving it). Requests go over kept-alive connections: five
// calls (60 requests) use at most a few.
func TestE2ERequestsPerCall(t *testing.T) {
	for _, tc := range []struct {
		mode media.HoldMode
		want int
	}{{media.HoldRingback, 7}, {media.HoldMusic, 12}} {
		t.Run(string(tc.mode), func(t *testing.T) {
			obs := &countLog{requests: map[string]int{}, events: map[string]int{}}
			h := startE2E(t, WithObserver(obs))
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
				h.eventually("channels and bridges gone", func() error {
					h.f.mu.Lock()
					defer h.f.mu.Unlock()
					if len(h.f.chans) != 0 || len(h.f.bridges) != 0 {
						return errors.New("left over")
					}
					return nil
				})
				reqs, evs := obs.take()
				if got := sum(reqs); got != tc.want || reqs["GET"] != 0 {
					t.Fatalf("call %d: %d requests %v, want %d and no GET (%q)", i, got, reqs, tc.want, h.f.takeRequests())
				}
				if evs["duplicate"] != 0 || evs["undecodable"] != 0 || sum(evs) == 0 {
					t.Fatalf("call %d: events %v", i, evs)
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
