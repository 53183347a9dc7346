package api_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

// latencyHist is a shared histogram of commit → client-read latencies in
// 10 µs buckets up to 2 s.
type latencyHist struct{ b [200000]atomic.Int64 }

func (h *latencyHist) add(d time.Duration) {
	i := int(d / (10 * time.Microsecond))
	if i >= len(h.b) {
		i = len(h.b) - 1
	}
	if i < 0 {
		i = 0
	}
	h.b[i].Add(1)
}

func (h *latencyHist) quantile(q float64) time.Duration {
	var total int64
	for i := range h.b {
		total += h.b[i].Load()
	}
	want := int64(q * float64(total))
	var n int64
	for i := range h.b {
		if n += h.b[i].Load(); n > want {
			return time.Duration(i+1) * 10 * time.Microsecond
		}
	}
	return 0
}

// BenchmarkEventsFanOut measures events/s from a commit to the SSE bytes
// read by each of 1,000 connected clients, and commit → read latency
// (p50/p99). The committer keeps at most `ahead` events in flight beyond
// the slowest client so no client is cut off as slow.
//
// "max" commits as fast as the clients keep up (throughput; latency is then
// mostly queueing behind `ahead` events); "paced" commits one event every
// 20 ms (50 events/s = 50,000 deliveries/s) to show latency below saturation.
func BenchmarkEventsFanOut(b *testing.B) {
	for _, backend := range []string{"memory", "redis"} {
		for _, pace := range []time.Duration{0, 20 * time.Millisecond} {
			name := backend + "/max"
			if pace > 0 {
				name = backend + "/paced-50eps"
			}
			b.Run(name, func(b *testing.B) {
				var st state.StoreLog = store.NewMemory(store.WithRetention(100000))
				if backend == "redis" {
					st = redisStore(b, testpeer.StartRedis(b))
				}
				benchFanOut(b, st, 1000, pace)
			})
		}
	}
}

func benchFanOut(b *testing.B, st state.StoreLog, clients int, pace time.Duration) {
	f := newFloor(b, st, []stream.HubOption{stream.WithSubscriberBuffer(8192)})
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		hist     latencyHist
		received atomic.Int64
		wg       sync.WaitGroup
	)
	for i := 0; i < clients; i++ {
		req, _ := http.NewRequestWithContext(ctx, "GET", f.srv.URL+"/v1/events?types=call", nil)
		req.Header.Set("Authorization", "Bearer demo-admin")
		res, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer res.Body.Close()
			r := bufio.NewReaderSize(res.Body, 64<<10)
			for {
				line, err := r.ReadSlice('\n')
				if err != nil {
					return
				}
				if ts, ok := bytes.CutPrefix(line, []byte(`data: {"ts":`)); ok {
					n, _ := strconv.ParseInt(string(bytes.TrimRight(ts, "}\n")), 10, 64)
					hist.add(time.Since(time.Unix(0, n)))
					received.Add(1)
				}
			}
		}()
	}
	for f.hub.Subscribers() < clients {
		time.Sleep(time.Millisecond)
	}
	const ahead = 64
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for int64(i-ahead)*int64(clients) > received.Load() {
			time.Sleep(50 * time.Microsecond)
		}
		if pace > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * pace)))
		}
		data := fmt.Appendf(nil, `{"ts":%d}`, time.Now().UnixNano())
		if _, err := st.Commit(ctx, state.Tx{Events: []state.NewEvent{{Type: "call", Data: data}}}); err != nil {
			b.Fatal(err)
		}
	}
	for received.Load() < int64(b.N)*int64(clients) {
		time.Sleep(100 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)*float64(clients)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(hist.quantile(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(hist.quantile(0.99).Microseconds())/1000, "p99-ms")
	cancel()
	wg.Wait()
}
