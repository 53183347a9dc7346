package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/cpustat"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// BenchmarkListAgentsUnderChanges measures GET /v1/agents (admin, every
// agent) on a floor of 10,000 agents while 500 status changes per second
// are made in the background; one op is one whole response read, and
// p50/p99 are reported (docs/performance.md, Agents list).
func BenchmarkListAgentsUnderChanges(b *testing.B) {
	for _, backend := range []string{"memory", "redis"} {
		b.Run(backend, func(b *testing.B) {
			var st state.StoreLog = store.NewMemory()
			if backend == "redis" {
				st = store.NewRedis(redis.NewClient(&redis.Options{Addr: testpeer.StartRedis(b).Addr()}))
			}
			f := newFloor(b, st, nil)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			const agents = 10000
			ids := make([]string, agents)
			for i := range ids {
				ids[i] = fmt.Sprintf("b%05d", i)
				id, email, role, groups := ids[i], ids[i]+"@example.com", presence.RoleAgent, []string{"sales"}
				if _, err := f.svc.CreateAgent(ctx, presence.System, presence.AgentInput{ID: &id, Name: &id, Email: &email,
					Role: &role, Groups: &groups}); err != nil {
					b.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			wg.Add(1)
			go func() { // 500 changes/s
				defer wg.Done()
				t := time.NewTicker(2 * time.Millisecond)
				defer t.Stop()
				statuses := []string{presence.StatusAvailable, presence.StatusShortBreak}
				for i := 0; ; i++ {
					select {
					case <-ctx.Done():
						return
					case <-t.C:
					}
					s := statuses[(i/agents)%2]
					_, _ = f.svc.SetStatus(ctx, presence.System, ids[i%agents], &s, nil)
				}
			}()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			cpu0 := cpustat.Self()
			for b.Loop() {
				start := time.Now()
				req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/v1/agents", nil)
				req.Header.Set("Authorization", "Bearer demo-admin")
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				n, _ := io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != 200 || n < agents*100 {
					b.Fatalf("GET /v1/agents: %d, %d bytes", res.StatusCode, n)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			cpu := cpustat.Self() - cpu0
			cancel()
			wg.Wait()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Microseconds())/1000, "p99-ms")
			// CPU per request, the background changes included.
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
		})
	}
}
