package api_test

import (
	"context"
	"encoding/json"
	"fmt"
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

// BenchmarkListAgentsUnderChanges measures GET /v1/agents (admin) on a
// floor of 10,000 agents while 500 status changes per second are made in
// the background: the whole floor (every page) and each page, p50/p99
// (docs/performance.md, Agents list).
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
			// One op reads the whole floor: GET /v1/agents and its next
			// pages (at most presence.MaxPage agents each) until no cursor.
			lat := make([]time.Duration, 0, b.N)
			var pageLat []time.Duration
			b.ResetTimer()
			cpu0 := cpustat.Self()
			for b.Loop() {
				start, cursor, read := time.Now(), "", 0
				for first := true; first || cursor != ""; first = false {
					t0 := time.Now()
					req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/v1/agents?cursor="+cursor, nil)
					req.Header.Set("Authorization", "Bearer demo-admin")
					res, err := http.DefaultClient.Do(req)
					if err != nil {
						b.Fatal(err)
					}
					var page []struct {
						ID string `json:"id"`
					}
					err = json.NewDecoder(res.Body).Decode(&page)
					res.Body.Close()
					if res.StatusCode != 200 || err != nil {
						b.Fatalf("GET /v1/agents: %d, %v", res.StatusCode, err)
					}
					read += len(page)
					cursor = res.Header.Get("X-Next-Cursor")
					pageLat = append(pageLat, time.Since(t0))
				}
				if read < agents {
					b.Fatalf("read %d agents of %d", read, agents)
				}
				lat = append(lat, time.Since(start))
			}
			b.StopTimer()
			cpu := cpustat.Self() - cpu0
			cancel()
			wg.Wait()
			q := func(d []time.Duration, p float64) float64 {
				slices.Sort(d)
				return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
			}
			b.ReportMetric(q(lat, 0.5), "floor-p50-ms")
			b.ReportMetric(q(lat, 0.99), "floor-p99-ms")
			b.ReportMetric(q(pageLat, 0.5), "page-p50-ms")
			b.ReportMetric(q(pageLat, 0.99), "page-p99-ms")
			// CPU per request, the background changes included.
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(len(lat)), "cpu-ms/floor")
		})
	}
}
