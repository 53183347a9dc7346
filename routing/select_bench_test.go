package routing

import (
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
)

// BenchmarkSelect10kAgents500Queues: one dispatcher decision for every
// queue of a 10,000-agent, 500-queue floor (100 groups of 100 agents; each
// queue spans 2 groups and 5 direct agents; a third of agents busy).
// One op = all 500 queues.
func BenchmarkSelect10kAgents500Queues(b *testing.B) {
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	agents := make([]presence.Agent, 10000)
	for i := range agents {
		a := &agents[i]
		a.ID = fmt.Sprintf("a%05d", i)
		a.Groups = []string{fmt.Sprintf("g%03d", i%100)}
		a.CallStatus, a.SystemStatus = presence.StatusAvailable, presence.SysAvailable
		if i%3 == 0 {
			a.SystemStatus = presence.SysTalking
		}
		a.LastCallEndedAt = t0.Add(-time.Duration(i%977) * time.Second)
	}
	f := newFloor(agents)
	strategies := []Strategy{RingAll, LongestIdle, RoundRobin, FewestCalls, Random}
	queues := make([]Queue, 500)
	for i := range queues {
		queues[i] = Queue{ID: fmt.Sprintf("q%03d", i), Strategy: strategies[i%len(strategies)],
			Members: []string{fmt.Sprintf("g%03d", i%100), fmt.Sprintf("g%03d", (i+37)%100)}}
		for j := range 5 {
			queues[i].Members = append(queues[i].Members, fmt.Sprintf("a%05d", (i*13+j*101)%10000))
		}
	}
	today := map[string]int64{}
	for i := 0; i < 10000; i += 7 {
		today[fmt.Sprintf("a%05d", i)] = int64(i % 11)
	}
	intn := func(n int) int { return n / 2 }
	noSkip := func(string) bool { return false }
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for qi := range queues {
			cands, _ := f.candidates(&queues[qi], noSkip, today)
			if len(Select(queues[qi].Strategy, cands, 3, intn)) == 0 {
				b.Fatal("no pick")
			}
		}
	}
}
