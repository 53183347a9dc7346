package ari

import (
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/cpustat"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// BenchmarkE2EInboundCall runs whole inbound calls through the product
// path — fake Asterisk, client, engine, presence, memory store: arrival,
// answer and hold, a1 rung and answering, bridged, the caller hangs up,
// a1's wrap-up ended. One op is one call; the figure includes WebSocket
// and REST round trips on loopback and the test's polling (50 µs).
func BenchmarkE2EInboundCall(b *testing.B) {
	h := startE2E(b)
	h.available("a1")
	spin := func(what string, cond func() bool) {
		deadline := time.Now().Add(5 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				h.f.mu.Lock()
				left := fmt.Sprintf("channels %v bridges %v", h.f.sortedChans(), len(h.f.bridges))
				h.f.mu.Unlock()
				b.Fatalf("%s: not in 5 s (%s; requests %q)", what, left, h.peek())
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	a1 := func() presence.Agent { a, _ := h.svc.Agent(h.ctx, "a1"); return a }
	b.ResetTimer()
	cpu0 := cpustat.Self()
	for range b.N {
		cust := h.f.Inbound(caller, salesHotline)
		var leg string
		spin("a1 rung", func() bool {
			h.f.mu.Lock()
			defer h.f.mu.Unlock()
			for id, ch := range h.f.chans {
				if ch.endpoint == "a1" {
					leg = id
					return true
				}
			}
			return false
		})
		h.f.AnswerDevice(leg)
		spin("answered", func() bool {
			calls, err := h.eng.Calls(h.ctx, h.admin, routing.CallFilter{State: string(routing.StateAnswered)})
			return err == nil && len(calls) == 1
		})
		spin("bridged", func() bool {
			h.f.mu.Lock()
			defer h.f.mu.Unlock()
			for _, br := range h.f.bridges {
				if br.name == "call-"+cust && len(br.chans) == 2 {
					return true
				}
			}
			return false
		})
		h.f.RemoteHangup(cust)
		spin("a1 wrapping up", func() bool { return a1().SystemStatus == presence.SysAfterCallWork })
		if _, err := h.svc.EndWrapUp(h.ctx, presence.System, "a1"); err != nil {
			b.Fatal(err)
		}
		h.eng.Kick()
		spin("call gone", func() bool {
			calls, err := h.eng.Calls(h.ctx, h.admin, routing.CallFilter{})
			return err == nil && len(calls) == 0
		})
		spin("channels and bridges gone", func() bool {
			h.f.mu.Lock()
			defer h.f.mu.Unlock()
			return len(h.f.chans) == 0 && len(h.f.bridges) == 0
		})
	}
	// One call at a time: calls/s is one call's latency. CPU per call
	// (fake Asterisk, client, engine, store all in this process) gives the
	// rate two idle cores allow with calls in parallel.
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64((cpustat.Self()-cpu0).Microseconds())/float64(b.N), "cpu-us/call")
}
