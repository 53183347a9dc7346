package routing_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

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

func benchThroughput(b *testing.B, f *testFloor) {
	const batch = 50
	members := []string{}
	for i := range batch {
		id := fmt.Sprintf("a%02d", i)
		f.addAgent(id, presence.RoleAgent)
		members = append(members, id)
	}
	f.addQueue("main", routing.LongestIdle, 0, members)
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
}
