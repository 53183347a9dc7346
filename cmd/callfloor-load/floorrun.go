package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo/sip"
)

// floorOptions drive a whole floor for a bounded time.
type floorOptions struct {
	base        string
	sipAddr     string // the server's SIP path (UDP)
	hotline     string
	agents      int     // agents l00001… (see writeFloor)
	clients     int     // SSE subscribers
	statusRate  float64 // status changes per second, all agents together
	callRate    float64 // new calls per second through the SIP path
	answerDelay time.Duration
	talk        time.Duration
	duration    time.Duration
	pid         int // server process (0: found from the HTTP port)
	allowRemote bool
}

// samples is a concurrent list of latencies.
type samples struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *samples) add(d time.Duration) {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
}

func (s *samples) String() string {
	s.mu.Lock()
	d := slices.Clone(s.d)
	s.mu.Unlock()
	if len(d) == 0 {
		return "no samples"
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(p*float64(len(d))))] }
	r := func(x time.Duration) string { return x.Round(10 * time.Microsecond).String() }
	return fmt.Sprintf("p50 %s, p99 %s, max %s (%d samples)", r(q(0.5)), r(q(0.99)), r(d[len(d)-1]), len(d))
}

func (s *samples) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.d)
}

// floorReport is what one floor run measured.
type floorReport struct {
	o                                     floorOptions
	elapsed                               time.Duration
	changesSent, changeErrors             int64
	callsPlaced, callsAnswered, callsDone int64
	callErrors                            int64
	firstErrors                           []string
	events, streamErrors                  int64
	changeLat, callLat, answerLat         samples
	pid                                   int
	procErr                               error
	cpu                                   time.Duration
	rssEnd, rssMax                        int64
}

func (r *floorReport) String() string {
	var b strings.Builder
	secs := r.elapsed.Seconds()
	fmt.Fprintf(&b, "floor run: %s, %d agents, %d SSE clients\n", r.elapsed.Round(time.Millisecond), r.o.agents, r.o.clients)
	fmt.Fprintf(&b, "status changes: offered %.1f/s, achieved %.1f/s (%d over %s), errors %d\n",
		r.o.statusRate, float64(r.changesSent)/r.o.duration.Seconds(), r.changesSent, r.o.duration, r.changeErrors)
	fmt.Fprintf(&b, "calls: offered %.1f/s, placed %d (%.1f/s), answered %d, completed %d, failed %d, unfinished at the end %d\n",
		r.o.callRate, r.callsPlaced, float64(r.callsPlaced)/r.o.duration.Seconds(), r.callsAnswered, r.callsDone, r.callErrors,
		r.unfinished())
	for _, e := range r.firstErrors {
		fmt.Fprintf(&b, "  error: %s\n", e)
	}
	fmt.Fprintf(&b, "events read by clients: %d (%.0f/s), stream errors %d\n", r.events, float64(r.events)/secs, r.streamErrors)
	fmt.Fprintf(&b, "latency status change sent → agent event read: %s\n", &r.changeLat)
	fmt.Fprintf(&b, "latency INVITE sent → first call event read: %s\n", &r.callLat)
	fmt.Fprintf(&b, "latency 200 OK at the trunk → answered call event read: %s\n", &r.answerLat)
	fmt.Fprintf(&b, "  (an answered event a client read before the trunk got its 200 OK is not a sample)\n")
	switch {
	case r.procErr != nil:
		fmt.Fprintf(&b, "server process: not measured (%v)\n", r.procErr)
	default:
		per := "n/a"
		if r.callsDone > 0 {
			per = fmt.Sprintf("%.2f s", r.cpu.Seconds()*1000/float64(r.callsDone))
		}
		fmt.Fprintf(&b, "server pid %d: CPU %.2f s (%s per 1,000 calls), RSS %.1f MiB at the end, %.1f MiB max\n",
			r.pid, r.cpu.Seconds(), per, float64(r.rssEnd)/(1<<20), float64(r.rssMax)/(1<<20))
	}
	return b.String()
}

// unfinished counts calls still in progress when the run's time was up
// (neither completed nor failed): under overload, calls never answered.
func (r *floorReport) unfinished() int64 { return r.callsPlaced - r.callsDone - r.callErrors }

func (r *floorReport) failed(mu *sync.Mutex, err error) {
	mu.Lock()
	if len(r.firstErrors) < 5 {
		r.firstErrors = append(r.firstErrors, err.Error())
	}
	mu.Unlock()
}

// floorState correlates what was sent with what clients read.
type floorState struct {
	mu      sync.Mutex
	changes map[string][]change // per agent, in order
	calls   sync.Map            // customer number → *callTimes
}

type change struct {
	status string
	at     time.Time
}

type callTimes struct {
	invite   time.Time
	answered atomic.Int64 // UnixNano of the 200 OK at the trunk
}

func (s *floorState) addChange(agent, status string, at time.Time) {
	s.mu.Lock()
	s.changes[agent] = append(s.changes[agent], change{status, at})
	s.mu.Unlock()
}

func (s *floorState) changeAt(agent string, k int) (change, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k < len(s.changes[agent]) {
		return s.changes[agent][k], true
	}
	return change{}, false
}

func runFloor(ctx context.Context, o floorOptions) (*floorReport, error) {
	rep := &floorReport{o: o}
	if !o.allowRemote {
		if err := checkLoopback(o.base); err != nil {
			return rep, err
		}
		if err := checkLoopback("sip://" + o.sipAddr); err != nil {
			return rep, err
		}
	}
	host, portStr, err := net.SplitHostPort(o.sipAddr)
	if err != nil {
		return rep, fmt.Errorf("sip address: %w", err)
	}
	port, _ := strconv.Atoi(portStr)
	server := sip.Uri{Scheme: "sip", Host: host, Port: port}
	rep.pid = o.pid
	if rep.pid == 0 {
		u := strings.TrimPrefix(strings.TrimPrefix(o.base, "http://"), "https://")
		rep.pid, rep.procErr = serverPID(strings.SplitN(u, "/", 2)[0])
	}

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	ph, err := startPhones(runCtx, o.answerDelay)
	if err != nil {
		return rep, err
	}
	defer ph.close()
	tr, err := startTrunk(server, o.hotline, o.talk)
	if err != nil {
		return rep, err
	}
	defer tr.close()

	// Log the floor in: every phone registers, every agent is available.
	agents := make([]string, o.agents)
	for i := range agents {
		agents[i] = agentID(i)
	}
	if err := parallel(ctx, agents, 16, func(ctx context.Context, a string) error {
		if err := ph.register(ctx, server, a); err != nil {
			return err
		}
		return putStatus(ctx, o.base, agentToken(a), a, "available")
	}); err != nil {
		return rep, fmt.Errorf("log the floor in: %w", err)
	}

	st := &floorState{changes: map[string][]change{}}
	var streams sync.WaitGroup
	ready := make(chan error, o.clients)
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	for i := range o.clients {
		streams.Add(1)
		go func() {
			defer streams.Done()
			err := followFloor(streamCtx, o, agentToken(agents[i%len(agents)]), st, rep, ready)
			if err != nil && streamCtx.Err() == nil {
				atomic.AddInt64(&rep.streamErrors, 1)
			}
		}()
	}
	for range o.clients {
		if err := <-ready; err != nil {
			stopStreams()
			streams.Wait()
			return rep, err
		}
	}

	var errMu sync.Mutex
	before, perr := readProc(rep.pid)
	if rep.procErr == nil {
		rep.procErr = perr
	}
	rssMax := before.rss
	start := time.Now()
	end := start.Add(o.duration)
	var work sync.WaitGroup

	// Status changes: an agent goes on a short break and straight back,
	// agents in turn, so the floor keeps its capacity for calls.
	if o.statusRate > 0 {
		work.Add(1)
		go func() {
			defer work.Done()
			pace(runCtx, start, end, o.statusRate/2, func(i int) {
				a := agents[i%len(agents)]
				for _, s := range []string{"short_break", "available"} {
					st.addChange(a, s, time.Now())
					atomic.AddInt64(&rep.changesSent, 1)
					if err := putStatus(runCtx, o.base, agentToken(a), a, s); err != nil && runCtx.Err() == nil {
						atomic.AddInt64(&rep.changeErrors, 1)
						rep.failed(&errMu, err)
					}
				}
			})
		}()
	}
	// Calls at callRate, each in its own goroutine.
	var calls sync.WaitGroup
	if o.callRate > 0 {
		work.Add(1)
		go func() {
			defer work.Done()
			pace(runCtx, start, end, o.callRate, func(i int) {
				customer := fmt.Sprintf("+8491%07d", i%10000000)
				ct := &callTimes{invite: time.Now()}
				st.calls.Store(customer, ct)
				atomic.AddInt64(&rep.callsPlaced, 1)
				calls.Add(1)
				go func() {
					defer calls.Done()
					err := tr.call(runCtx, customer, func() {
						ct.answered.Store(time.Now().UnixNano())
						atomic.AddInt64(&rep.callsAnswered, 1)
					})
					if err != nil {
						if runCtx.Err() == nil {
							atomic.AddInt64(&rep.callErrors, 1)
							rep.failed(&errMu, fmt.Errorf("call %s: %w", customer, err))
						}
						return
					}
					atomic.AddInt64(&rep.callsDone, 1)
				}()
			})
		}()
	}
	// RSS peak while the load runs.
	sampler, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(250 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampler:
				return
			case <-t.C:
				if s, err := readProc(rep.pid); err == nil {
					rssMax = max(rssMax, s.rss)
				}
			}
		}
	}()
	work.Wait()
	calls.Wait() // each ends after its talk time (or when ctx ends)
	rep.elapsed = time.Since(start)
	close(sampler)
	<-sampled
	if after, err := readProc(rep.pid); err == nil && rep.procErr == nil {
		rep.cpu, rep.rssEnd, rep.rssMax = after.cpu-before.cpu, after.rss, max(rssMax, after.rss)
	}
	// Let the last events reach the clients.
	drain := time.NewTimer(500 * time.Millisecond)
	select {
	case <-drain.C:
	case <-ctx.Done():
		drain.Stop()
	}
	stopStreams()
	streams.Wait()
	return rep, nil
}

// pace calls f(0), f(1), … at rate per second from start until end or ctx ends.
func pace(ctx context.Context, start, end time.Time, rate float64, f func(i int)) {
	for i := 0; ; i++ {
		at := start.Add(time.Duration(float64(i) / rate * float64(time.Second)))
		if !at.Before(end) {
			return
		}
		if d := time.Until(at); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
				return
			}
		}
		f(i)
	}
}

// parallel runs f over items with at most n at once; the first error wins.
func parallel(ctx context.Context, items []string, n int, f func(context.Context, string) error) error {
	sem := make(chan struct{}, n)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for _, it := range items {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			wg.Wait()
			return ctx.Err()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if err := f(ctx, it); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

func putStatus(ctx context.Context, base, token, agent, status string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, base+"/v1/agents/"+agent+"/status",
		strings.NewReader(`{"call_status":"`+status+`"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("set %s %s: %w", agent, status, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		var b [256]byte
		n, _ := res.Body.Read(b[:])
		return fmt.Errorf("set %s %s: %d %s", agent, status, res.StatusCode, b[:n])
	}
	return nil
}

// jsonString returns the first string value of key in a JSON object
// (enough for the flat views the stream carries; no full decode per
// event and client).
func jsonString(data []byte, key string) string {
	_, rest, ok := bytes.Cut(data, []byte(`"`+key+`":"`))
	if !ok {
		return ""
	}
	v, _, _ := bytes.Cut(rest, []byte(`"`))
	return string(v)
}

// followFloor is one SSE client, an agent of the load group (it sees its
// group's agents and calls): it reads agent and call events and
// records, when the whole event has been read (its blank line), the
// latency of the change or call it answers.
func followFloor(ctx context.Context, o floorOptions, token string, st *floorState, rep *floorReport, ready chan<- error) error {
	res, err := openStream(ctx, o.base, token, "agent,call", ready)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	next := map[string]int{}   // agent → index of the next change to match
	seen := map[string]uint8{} // customer → 1 first event, 2 answered
	r := bufio.NewReaderSize(res.Body, 64<<10)
	var typ string
	var data []byte
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, context.Canceled) || ctx.Err() != nil {
				return nil
			}
			return err
		}
		switch {
		case bytes.HasPrefix(line, []byte("event: ")):
			typ = string(bytes.TrimSpace(line[7:]))
		case bytes.HasPrefix(line, []byte("data: ")):
			data = append(data[:0], line[6:]...)
		case len(bytes.TrimSpace(line)) == 0 && typ != "":
			now := time.Now()
			atomic.AddInt64(&rep.events, 1)
			switch typ {
			case "agent":
				id := jsonString(data, "id")
				if c, ok := st.changeAt(id, next[id]); ok && jsonString(data, "call_status") == c.status {
					rep.changeLat.add(now.Sub(c.at))
					next[id]++
				}
			case "call":
				cust := jsonString(data, "customer_number")
				v, ok := st.calls.Load(cust)
				if !ok {
					break
				}
				ct := v.(*callTimes)
				if seen[cust]&1 == 0 {
					seen[cust] |= 1
					rep.callLat.add(now.Sub(ct.invite))
				}
				if seen[cust]&2 == 0 && jsonString(data, "state") == "answered" {
					if at := ct.answered.Load(); at != 0 {
						seen[cust] |= 2
						rep.answerLat.add(now.Sub(time.Unix(0, at)))
					}
				}
			}
			typ = ""
		}
	}
}
