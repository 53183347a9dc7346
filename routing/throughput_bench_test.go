package routing_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/cpustat"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/store"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// BenchmarkFactThroughput: whole inbound calls through the engine on the
// memory store — CallArrived, the dispatcher's offer, LegAnswered, the
// caller's LegEnded — 50 calls in flight at a time across 50 agents.
// One op = one call (3 facts, 4 commits).
func BenchmarkFactThroughput(b *testing.B) {
	benchThroughput(b, newFloor(b, nil, time.Time{}))
}

// BenchmarkFactThroughputRedis is the same on a real redis-server.
func BenchmarkFactThroughputRedis(b *testing.B) {
	srv := testpeer.StartRedis(b)
	st := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}), store.WithPrefix("{bench}:"))
	benchThroughput(b, newFloorOn(b, st, nil, time.Time{}))
}

// BenchmarkFactThroughputFloor is BenchmarkFactThroughput on a floor of
// FLOOR_AGENTS agents (default 2,000) in 20 groups and 20 queues, calls
// arriving on one queue of 100 agents: what one call costs the engine when
// the floor around it is large (docs/performance.md, Routing). It reports
// the process's CPU per call, which does not depend on other load.
func BenchmarkFactThroughputFloor(b *testing.B) {
	agents, _ := benchFloorSize()
	if os.Getenv("FLOOR_AGENTS") == "" {
		agents = 2000
	}
	f := newFloor(b, nil, time.Time{})
	const groups = 20
	for g := range groups {
		id := fmt.Sprintf("g%02d", g)
		if _, err := f.agents.PutGroup(f.ctx, presence.System, id, true, presence.GroupPatch{Name: &id}); err != nil {
			b.Fatal(err)
		}
	}
	for i := range agents {
		f.addAgent(fmt.Sprintf("f%05d", i), presence.RoleAgent, fmt.Sprintf("g%02d", i%groups))
	}
	for g := 1; g < groups; g++ {
		f.addQueue(fmt.Sprintf("q%02d", g), routing.LongestIdle, 0, []string{fmt.Sprintf("g%02d", g)})
	}
	benchCalls(b, f, "main", []string{"g00"})
}

func benchThroughput(b *testing.B, f *testFloor) {
	members := []string{}
	for i := range 50 {
		id := fmt.Sprintf("a%02d", i)
		f.addAgent(id, presence.RoleAgent)
		members = append(members, id)
	}
	benchCalls(b, f, "main", members)
}

// benchCalls adds queue id over members (taking hotline +842800) and runs
// b.N whole inbound calls through it, 50 in flight.
func benchCalls(b *testing.B, f *testFloor, id string, members []string) {
	const batch = 50
	f.addQueue(id, routing.LongestIdle, 0, members)
	cpu0 := cpustat.Self()
	n := 0
	b.ResetTimer()
	for done := 0; done < b.N; done += batch {
		k := min(batch, b.N-done)
		custs := make([]media.LegID, k)
		for i := range k {
			n++
			custs[i] = media.LegID(fmt.Sprintf("bench-%d", n))
			f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: custs[i], Caller: fmt.Sprintf("+849010%05d", n%100000), Hotline: "+842800"})
		}
		f.flush()
		dials := f.media.Dials()
		for _, d := range dials {
			f.eng.Report(media.LegAnswered{FactBase: f.at(), Leg: d.Result})
		}
		f.flush()
		for _, c := range custs {
			f.eng.Report(media.LegEnded{FactBase: f.at(), Leg: c, Cause: media.CauseNormal})
		}
		f.flush()
		if len(dials) != k {
			b.Fatalf("%d calls dialled %d agents", k, len(dials))
		}
		f.media.Reset()
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
	b.ReportMetric(float64((cpustat.Self()-cpu0).Microseconds())/float64(b.N), "cpu-µs/call")
}
