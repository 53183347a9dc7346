// Command callfloor-load measures a running callfloor end to end: it opens
// N event-stream clients, makes M agent status changes through the REST
// API, and reports how long each change took to reach every client
// (p50/p99/max) and the delivered event rate. It is bounded: it stops after
// M changes or at -timeout, whichever comes first, and refuses targets
// that are not loopback unless -allow-remote is given.
//
//	go run ./cmd/callfloor &
//	go run ./cmd/callfloor-load -clients 200 -changes 400
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

type options struct {
	base        string
	token       string
	clients     int
	changes     int
	agents      []string
	timeout     time.Duration
	allowRemote bool
}

func main() {
	var o options
	var agents string
	flag.StringVar(&o.base, "url", "http://127.0.0.1:8080", "callfloor base URL")
	flag.StringVar(&o.token, "token", "demo-admin", "admin bearer token")
	flag.IntVar(&o.clients, "clients", 100, "event-stream clients")
	flag.IntVar(&o.changes, "changes", 200, "status changes to make")
	flag.StringVar(&agents, "agents", "a1,a2,a3,a4,a5,a6,a7,a8", "agents whose status is toggled")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "stop after this long regardless")
	flag.BoolVar(&o.allowRemote, "allow-remote", false, "allow a non-loopback target")
	flag.Parse()
	o.agents = strings.Split(agents, ",")
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	rep, err := run(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "callfloor-load:", err)
		os.Exit(1)
	}
	fmt.Print(rep)
}

// report is what one run measured.
type report struct {
	clients, changes, delivered, expected int
	elapsed                               time.Duration
	latencies                             []time.Duration
}

func (r report) String() string {
	slices.Sort(r.latencies)
	q := func(p float64) time.Duration {
		if len(r.latencies) == 0 {
			return 0
		}
		return r.latencies[min(len(r.latencies)-1, int(p*float64(len(r.latencies))))]
	}
	return fmt.Sprintf("clients %d, changes %d, events delivered %d/%d in %s (%.0f events/s)\nchange→event latency p50 %s, p99 %s, max %s\n",
		r.clients, r.changes, r.delivered, r.expected, r.elapsed.Round(time.Millisecond),
		float64(r.delivered)/r.elapsed.Seconds(), q(0.50), q(0.99), q(1))
}

func checkLoopback(base string) error {
	u, err := url.Parse(base)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	host := u.Hostname()
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	return fmt.Errorf("%s is not a loopback address; pass -allow-remote to load it anyway", host)
}

// sent records when each change of each agent was sent, in order: a
// client's k-th event about agent x answers the k-th change of x, because
// changes of one agent are serialised and the stream is ordered.
type sent struct {
	mu sync.Mutex
	at map[string][]time.Time
}

func (s *sent) add(agent string, t time.Time) {
	s.mu.Lock()
	s.at[agent] = append(s.at[agent], t)
	s.mu.Unlock()
}

func (s *sent) get(agent string, k int) (time.Time, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k < len(s.at[agent]) {
		return s.at[agent][k], true
	}
	return time.Time{}, false
}

func run(ctx context.Context, o options) (report, error) {
	if !o.allowRemote {
		if err := checkLoopback(o.base); err != nil {
			return report{}, err
		}
	}
	tracked := map[string]bool{}
	for _, a := range o.agents {
		tracked[a] = true
	}
	s := &sent{at: map[string][]time.Time{}}
	rep := report{clients: o.clients, changes: o.changes, expected: o.clients * o.changes}
	var (
		mu        sync.Mutex
		delivered int
		lat       = make([]time.Duration, 0, rep.expected)
	)
	done := make(chan struct{})
	streamCtx, stopStreams := context.WithCancel(ctx)
	defer stopStreams()
	var wg sync.WaitGroup
	ready := make(chan error, o.clients)
	for range o.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := map[string]int{}
			err := readStream(streamCtx, o, ready, func(agent string) {
				if !tracked[agent] {
					return
				}
				t, ok := s.get(agent, seen[agent])
				seen[agent]++
				if !ok {
					return
				}
				d := time.Since(t)
				mu.Lock()
				delivered++
				lat = append(lat, d)
				if delivered == rep.expected {
					close(done)
				}
				mu.Unlock()
			})
			if err != nil && streamCtx.Err() == nil {
				fmt.Fprintln(os.Stderr, "stream:", err)
			}
		}()
	}
	for range o.clients {
		if err := <-ready; err != nil {
			stopStreams()
			wg.Wait()
			return rep, err
		}
	}
	start := time.Now()
	statuses := [2]string{"available", "unavailable"}
	n := map[string]int{}
	for i := range o.changes {
		agent := o.agents[i%len(o.agents)]
		s.add(agent, time.Now())
		if err := setStatus(ctx, o, agent, statuses[n[agent]%2]); err != nil {
			stopStreams()
			wg.Wait()
			return rep, err
		}
		n[agent]++
	}
	select {
	case <-done:
	case <-ctx.Done():
	}
	rep.elapsed = time.Since(start)
	stopStreams()
	wg.Wait()
	mu.Lock()
	rep.delivered, rep.latencies = delivered, lat
	mu.Unlock()
	return rep, nil
}

func setStatus(ctx context.Context, o options, agent, status string) error {
	body, _ := json.Marshal(map[string]string{"call_status": status})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, o.base+"/v1/agents/"+agent+"/status", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("set %s: %w", agent, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		return fmt.Errorf("set %s: %d %s", agent, res.StatusCode, b)
	}
	return nil
}

// readStream reads /v1/events from now on and calls onAgent with the id
// of every agent event; it signals ready once the stream is open.
func readStream(ctx context.Context, o options, ready chan<- error, onAgent func(id string)) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, o.base+"/v1/events?types=agent", nil)
	if err != nil {
		ready <- err
		return err
	}
	req.Header.Set("Authorization", "Bearer "+o.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ready <- err
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		err := fmt.Errorf("events: %s", res.Status)
		ready <- err
		return err
	}
	ready <- nil
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var event string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: ") && event == "agent":
			var a struct {
				ID string `json:"id"`
			}
			if json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &a) == nil {
				onAgent(a.ID)
			}
		case line == "":
			event = ""
		}
	}
	if err := sc.Err(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}
