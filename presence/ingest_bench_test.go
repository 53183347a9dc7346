package presence_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/cpustat"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// BenchmarkStatusIngest measures how many manual status changes per second
// the agent service commits (record, history row, agent event: one atomic
// commit each), on a floor of 1,000 agents, with 32 concurrent writers
// (as many API requests in flight); one op = one change. Memory and a real
// redis-server (docs/performance.md, Ingest).
func BenchmarkStatusIngest(b *testing.B) {
	const agents = 1000
	backends := []struct {
		name string
		open func(b *testing.B) state.StoreLog
	}{
		{"memory", func(b *testing.B) state.StoreLog { return store.NewMemory() }},
		{"redis", func(b *testing.B) state.StoreLog {
			srv := testpeer.StartRedis(b)
			return store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64}))
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			defer st.Close()
			svc := presence.NewService(st)
			ctx := context.Background()
			if _, err := svc.PutGroup(ctx, admin, "sales", true, presence.GroupPatch{Name: ptr("sales")}); err != nil {
				b.Fatal(err)
			}
			seedAgents(b, svc, agents, time.Now().Add(time.Hour))
			statuses := []string{presence.StatusAvailable, presence.StatusShortBreak}
			var next atomic.Int64
			b.SetParallelism(16) // × GOMAXPROCS writers
			b.ResetTimer()
			cpu0 := cpustat.Self()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					n := next.Add(1)
					// Writers take agents in turn, so two rarely touch one
					// agent at once (a conflict would be retried, as in real use).
					id := fmt.Sprintf("s%05d", n%agents)
					st := statuses[(n/agents)%2]
					if _, err := svc.SetStatus(ctx, admin, id, &st, nil); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "changes/s")
			// CPU per change (this process; on Redis the server's own CPU
			// is not in it): 2 cores / this = the rate two idle cores allow.
			b.ReportMetric(float64((cpustat.Self()-cpu0).Microseconds())/float64(b.N), "cpu-us/op")
		})
	}
}
