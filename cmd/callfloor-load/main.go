// Command callfloor-load measures a running callfloor end to end
// (docs/performance.md). It is bounded in time (-duration, -timeout) and
// refuses targets that are not loopback unless -allow-remote is given.
//
// Floor mode (the default) drives a whole floor: N agents log in (their
// phones register over SIP and answer after -answer-delay) and change
// statuses at -status-rate, a trunk places calls at -call-rate through the
// built-in SIP path and hangs up after -talk, and K event-stream clients
// read what happens. It prints offered and achieved rates, errors, the
// latency from each change or call to the whole event read by every
// client (p50/p99/max), and the server's CPU seconds per 1,000 calls and
// RSS read from /proc.
//
//	go run ./cmd/callfloor-load -write-floor 50 > /tmp/floor.yaml
//	CALLFLOOR_CONFIG=/tmp/floor.yaml go run ./cmd/callfloor &
//	go run ./cmd/callfloor-load
//
// Changes mode (-changes M) makes M status changes one after another on
// the demo floor and reports how long each took to reach every client:
//
//	go run ./cmd/callfloor-load -token demo-admin -clients 200 -changes 400
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
	"log/slog"
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
	var (
		o           options
		f           floorOptions
		toggle      string
		writeAgents int
		sipMedia    string
	)
	flag.StringVar(&o.base, "url", "http://127.0.0.1:8080", "callfloor base URL")
	flag.StringVar(&o.token, "token", "demo-admin", "changes mode: admin bearer token (floor mode acts as each agent with its own token)")
	flag.IntVar(&o.clients, "clients", 20, "event-stream clients")
	flag.IntVar(&o.changes, "changes", 0, "changes mode: make this many status changes one after another (agents from -toggle) and stop")
	flag.StringVar(&toggle, "toggle", "a1,a2,a3,a4,a5,a6,a7,a8", "changes mode: agents whose status is toggled")
	flag.DurationVar(&o.timeout, "timeout", 60*time.Second, "stop after this long regardless")
	flag.BoolVar(&o.allowRemote, "allow-remote", false, "allow a non-loopback target")
	flag.IntVar(&writeAgents, "write-floor", 0, "print a floor configuration with this many agents (for CALLFLOOR_CONFIG) and exit")
	flag.StringVar(&sipMedia, "floor-sip-media", "signalling", "with -write-floor: the SIP path's media mode, signalling or anchored")
	flag.StringVar(&f.sipAddr, "sip", "127.0.0.1:5060", "floor mode: the server's SIP address (UDP)")
	flag.StringVar(&f.hotline, "hotline", loadHotline, "floor mode: the number the trunk calls")
	flag.IntVar(&f.agents, "agents", 50, "floor mode: agents l00001… that log in (the floor must have them: -write-floor)")
	flag.Float64Var(&f.statusRate, "status-rate", 20, "floor mode: status changes per second")
	flag.Float64Var(&f.callRate, "call-rate", 10, "floor mode: new calls per second through the SIP path")
	flag.DurationVar(&f.answerDelay, "answer-delay", 200*time.Millisecond, "floor mode: phones answer after this")
	flag.DurationVar(&f.talk, "talk", time.Second, "floor mode: the trunk hangs up after this talk time")
	flag.DurationVar(&f.duration, "duration", 15*time.Second, "floor mode: how long calls and changes are offered")
	flag.IntVar(&f.pid, "pid", 0, "floor mode: server process id for CPU and RSS (default: the process listening on -url's port)")
	flag.Parse()
	// sipgo logs through the default logger (retransmissions under load at
	// INFO); the report says what went wrong.
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if writeAgents > 0 {
		if err := writeFloor(os.Stdout, writeAgents, sipMedia); err != nil {
			fmt.Fprintln(os.Stderr, "callfloor-load:", err)
			os.Exit(1)
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	if o.changes > 0 {
		o.agents = strings.Split(toggle, ",")
		rep, err := run(ctx, o)
		if err != nil {
			fmt.Fprintln(os.Stderr, "callfloor-load:", err)
			os.Exit(1)
		}
		fmt.Print(rep)
		return
	}
	f.base, f.clients, f.allowRemote = o.base, o.clients, o.allowRemote
	// The floor needs its duration, then the last calls' answer and talk.
	if need := f.duration + f.answerDelay + f.talk + 30*time.Second; o.timeout < need {
		cancel()
		ctx, cancel = context.WithTimeout(context.Background(), need)
		defer cancel()
	}
	rep, err := runFloor(ctx, f)
	if err != nil {
		fmt.Fprintln(os.Stderr, "callfloor-load:", err)
		os.Exit(1)
	}
	fmt.Print(rep)
	if rep.callErrors > 0 || rep.unfinished() > 0 || rep.changeErrors > 0 || rep.streamErrors > 0 {
		os.Exit(2)
	}
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

// openStream opens /v1/events?types=types and reports on ready whether it
// did; the caller closes the body.
func openStream(ctx context.Context, base, token, types string, ready chan<- error) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/events?types="+types, nil)
	if err != nil {
		ready <- err
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		ready <- err
		return nil, err
	}
	if res.StatusCode != http.StatusOK {
		res.Body.Close()
		err := fmt.Errorf("events: %s", res.Status)
		ready <- err
		return nil, err
	}
	ready <- nil
	return res, nil
}

// readStream reads /v1/events from now on and calls onAgent with the id
// of every agent event; it signals ready once the stream is open.
func readStream(ctx context.Context, o options, ready chan<- error, onAgent func(id string)) error {
	res, err := openStream(ctx, o.base, o.token, "agent", ready)
	if err != nil {
		return err
	}
	defer res.Body.Close()
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
