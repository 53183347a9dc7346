package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/cpustat"
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

// BenchmarkEventsFanOut measures events/s from a commit to the whole SSE
// event read by each of 1,000 connected clients, and commit → read
// latency (p50/p99): what a client sees (docs/performance.md, Event
// stream fan-out).
//
// "max" commits as fast as the clients keep up (at most `ahead` events
// in flight beyond the slowest client, so none is cut off as slow; latency
// is then mostly queueing behind those events); "paced" commits one event
// every 20 ms (50 events/s = 50,000 deliveries/s).
//
// "clients-process" reads with the 1,000 clients in a separate process,
// as an independent client does; "clients-inproc" reads them in the
// benchmark's own process. The in-process readers share one Go scheduler
// with the server, so their latency includes waiting behind the server's
// own fan-out goroutines: that variant is kept to show the difference.
func BenchmarkEventsFanOut(b *testing.B) {
	for _, backend := range []string{"memory", "redis"} {
		for _, pace := range []time.Duration{0, 20 * time.Millisecond} {
			for _, where := range []string{"clients-process", "clients-inproc"} {
				name := backend + "/max/" + where
				if pace > 0 {
					name = backend + "/paced-50eps/" + where
				}
				b.Run(name, func(b *testing.B) {
					var st state.StoreLog = store.NewMemory(store.WithRetention(100000))
					if backend == "redis" {
						st = redisStore(b, testpeer.StartRedis(b))
					}
					benchFanOut(b, st, 1000, pace, where == "clients-process")
				})
			}
		}
	}
}

// readEvents reads one stream and calls got(latency) at the blank line
// that ends each event whose data is {"ts":<commit UnixNano>}.
func readEvents(body interface{ Read([]byte) (int, error) }, got func(time.Duration)) {
	r := bufio.NewReaderSize(body, 64<<10)
	var ts int64
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return
		}
		if v, ok := bytes.CutPrefix(line, []byte(`data: {"ts":`)); ok {
			ts, _ = strconv.ParseInt(string(bytes.TrimRight(v, "}\r\n")), 10, 64)
		} else if len(line) == 1 && ts != 0 {
			got(time.Since(time.Unix(0, ts)))
			ts = 0
		}
	}
}

// clientProcessEnv starts TestFanOutClientProcess as the clients.
const clientProcessEnv = "CALLFLOOR_FANOUT_CLIENTS"

// clientResult is what the client process prints when done.
type clientResult struct {
	Received int64
	P50, P99 time.Duration
	CPU      time.Duration // the client process's CPU while reading
}

// TestFanOutClientProcess is not a test: BenchmarkEventsFanOut runs the
// test binary again with clientProcessEnv set ("<url> <clients>
// <events>") to read the streams from a separate process. It prints
// "ready" once every stream is open, then its clientResult as JSON once
// every client read every event (or after a minute without progress).
func TestFanOutClientProcess(t *testing.T) {
	spec := os.Getenv(clientProcessEnv)
	if spec == "" {
		t.Skip("helper process of BenchmarkEventsFanOut")
	}
	var (
		url             string
		clients, events int
	)
	if _, err := fmt.Sscan(spec, &url, &clients, &events); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tr := &http.Transport{MaxIdleConnsPerHost: clients}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr}
	var (
		hist     latencyHist
		received atomic.Int64
		wg       sync.WaitGroup
	)
	for range clients {
		req, _ := http.NewRequestWithContext(ctx, "GET", url+"/v1/events?types=call", nil)
		req.Header.Set("Authorization", "Bearer demo-admin")
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer res.Body.Close()
			readEvents(res.Body, func(d time.Duration) { hist.add(d); received.Add(1) })
		}()
	}
	fmt.Println("ready")
	cpu0 := cpustat.Self()
	want := int64(clients) * int64(events)
	last, lastAt := int64(-1), time.Now()
	for n := received.Load(); n < want && time.Since(lastAt) < time.Minute; n = received.Load() {
		if n != last {
			last, lastAt = n, time.Now()
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	wg.Wait()
	out, _ := json.Marshal(clientResult{Received: received.Load(), P50: hist.quantile(0.5), P99: hist.quantile(0.99),
		CPU: cpustat.Self() - cpu0})
	fmt.Println(string(out))
}

func benchFanOut(b *testing.B, st state.StoreLog, clients int, pace time.Duration, separate bool) {
	f := newFloor(b, st, []stream.HubOption{stream.WithSubscriberBuffer(8192)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var (
		hist     latencyHist
		received atomic.Int64 // in-process clients only
		wg       sync.WaitGroup
		proc     *exec.Cmd
		procOut  *bufio.Scanner
	)
	if separate {
		proc = exec.CommandContext(ctx, os.Args[0], "-test.run=^TestFanOutClientProcess$", "-test.count=1")
		proc.Env = append(os.Environ(), fmt.Sprintf("%s=%s %d %d", clientProcessEnv, f.srv.URL, clients, b.N))
		proc.Stderr = os.Stderr
		stdout, err := proc.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := proc.Start(); err != nil {
			b.Fatal(err)
		}
		defer func() { _ = proc.Wait() }()
		procOut = bufio.NewScanner(stdout)
		ready := false
		for !ready && procOut.Scan() {
			ready = procOut.Text() == "ready"
		}
		if !ready {
			b.Fatal("the client process ended before its streams were open")
		}
	} else {
		tr := &http.Transport{MaxIdleConnsPerHost: clients}
		defer tr.CloseIdleConnections()
		client := &http.Client{Transport: tr}
		for range clients {
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
				readEvents(res.Body, func(d time.Duration) { hist.add(d); received.Add(1) })
			}()
		}
	}
	for f.hub.Subscribers() < clients {
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
		time.Sleep(time.Millisecond)
	}
	const ahead = 64
	b.ResetTimer()
	start, cpu0 := time.Now(), cpustat.Self()
	for i := 0; i < b.N; i++ {
		if !separate {
			for int64(i-ahead)*int64(clients) > received.Load() {
				time.Sleep(50 * time.Microsecond)
			}
		} else {
			// Clients out of process: throttle on the hub's queues instead.
			for f.hub.Backlog() > ahead*clients {
				time.Sleep(50 * time.Microsecond)
			}
		}
		if pace > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(i) * pace)))
		}
		data := fmt.Appendf(nil, `{"ts":%d}`, time.Now().UnixNano())
		if _, err := st.Commit(ctx, state.Tx{Events: []state.NewEvent{{Type: "call", Data: data}}}); err != nil {
			b.Fatal(err)
		}
	}
	var p50, p99, clientCPU time.Duration
	total := int64(b.N) * int64(clients)
	if separate {
		var res clientResult
		for procOut.Scan() {
			if err := json.Unmarshal(procOut.Bytes(), &res); err == nil {
				break
			}
		}
		if res.Received != total {
			b.Fatalf("the client process read %d of %d events", res.Received, total)
		}
		p50, p99, clientCPU = res.P50, res.P99, res.CPU
	} else {
		for received.Load() < total {
			time.Sleep(100 * time.Microsecond)
		}
		p50, p99 = hist.quantile(0.50), hist.quantile(0.99)
	}
	elapsed, cpu := time.Since(start), cpustat.Self()-cpu0+clientCPU
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(total)/elapsed.Seconds(), "deliveries/s")
	b.ReportMetric(float64(p50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	// CPU of server and clients (both processes) per delivery, and the
	// cores busy: what the load costs, whatever else runs on the machine.
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(total), "cpu-ns/delivery")
	b.ReportMetric(cpu.Seconds()/elapsed.Seconds(), "cores")
	cancel()
	wg.Wait()
}
