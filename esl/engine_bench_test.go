package esl

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// BenchmarkE2EInboundCall: one whole inbound call per iteration through
// the fake FreeSWITCH, the client, routing, presence and the memory
// store: park → answer + MOH → originate a1 → answer → bridge → caller
// hangs up → a1's leg killed → wrap-up ended (fake clock).
func BenchmarkE2EInboundCall(b *testing.B) {
	f := newE2E(b)
	f.fs.setBehavior(dev("a1"), dialAnswer)
	f.available("a1")
	b.ResetTimer()
	for n := 1; n <= b.N; n++ {
		id := f.arrive(n, hotline)
		f.wantCall(id, routing.StateAnswered, "a1")
		f.fs.bye(custUUID(n))
		f.wantGone(id)
		f.wantAgent("a1", presence.SysAfterCallWork, "")
		f.clock.Advance(30 * time.Second)
		f.wantAgent("a1", presence.SysAvailable, "")
		f.fs.takeCommands()
	}
}
