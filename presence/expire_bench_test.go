package presence_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// BenchmarkSweep10kAgents measures one presence sweep on a floor of
// 10,000 online agents, in memory and on a real redis-server: "idle" is the
// steady state (nothing due: what every second costs), "10-due" has ten
// heartbeats lapse before each sweep, "full-scan" is what the sweep read
// every second before the due index (every agent record). Results and the
// command: docs/performance.md.
func BenchmarkSweep10kAgents(b *testing.B) {
	const agents = 10000
	backends := []struct {
		name string
		open func(b *testing.B) state.StoreLog
	}{
		{"memory", func(b *testing.B) state.StoreLog { return store.NewMemory() }},
		{"redis", func(b *testing.B) state.StoreLog {
			srv := testpeer.StartRedis(b)
			return store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}))
		}},
	}
	for _, be := range backends {
		b.Run(be.name, func(b *testing.B) {
			st := be.open(b)
			defer st.Close()
			clk := newClock(t0)
			svc := presence.NewService(st, presence.WithClock(clk.Now), presence.WithHeartbeatTTL(time.Hour))
			ctx := context.Background()
			if _, err := svc.PutGroup(ctx, admin, "sales", true, presence.GroupPatch{Name: ptr("sales")}); err != nil {
				b.Fatal(err)
			}
			seedAgents(b, svc, agents, clk.Now().Add(time.Hour))
			lapse := func(i int) {
				for j := range 10 {
					id := fmt.Sprintf("s%05d", (i*10+j)%agents)
					if _, err := svc.Mutate(ctx, id, func(a *presence.Agent, now time.Time) ([]presence.HistoryRow, error) {
						a.LoggedIn, a.Online, a.HeartbeatUntil = true, true, now.Add(-time.Millisecond)
						return nil, nil
					}); err != nil {
						b.Fatal(err)
					}
				}
			}
			b.Run("idle", func(b *testing.B) {
				for b.Loop() {
					if err := svc.Expire(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("10-due", func(b *testing.B) {
				i := 0
				for b.Loop() {
					b.StopTimer()
					lapse(i)
					i++
					b.StartTimer()
					if err := svc.Expire(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("full-scan", func(b *testing.B) {
				for b.Loop() {
					if _, err := svc.Agents(ctx); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
