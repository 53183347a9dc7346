package api_test

import (
	"bufio"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/stream"
)

// floor is the demo floor on a given store, served with the event stream.
type floor struct {
	t     testing.TB
	srv   *httptest.Server
	store state.StoreLog
	svc   *presence.Service
	hub   *stream.Hub
}

func newFloor(t testing.TB, st state.StoreLog, hubOpts []stream.HubOption, evOpts ...api.EventOption) *floor {
	t.Helper()
	return newFloorWith(t, st, hubOpts, func(*presence.Service) []api.EventOption { return evOpts })
}

// newFloorWith is newFloor with event options that need the agent service.
func newFloorWith(t testing.TB, st state.StoreLog, hubOpts []stream.HubOption, evOpts func(*presence.Service) []api.EventOption, presOpts ...presence.Option) *floor {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	svc := presence.NewService(st, append([]presence.Option{presence.WithLocation(cfg.Location())}, presOpts...)...)
	if err := config.Bootstrap(context.Background(), cfg, svc); err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(st, hubOpts...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = hub.Run(ctx) }()
	apiOpts := []api.Option{api.WithRoutes(api.EventRoutes(hub, evOpts(svc)...))}
	if _, bench := t.(*testing.B); bench {
		// Benchmarks open a thousand streams with one token: they measure
		// the stream, not the per-token rate limit.
		l := api.DefaultLimits()
		l.RequestsPerSecond = 0
		apiOpts = append(apiOpts, api.WithLimits(l))
	}
	srv := httptest.NewServer(api.New(svc, st, apiOpts...).Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
		wg.Wait()
		st.Close()
	})
	return &floor{t: t, srv: srv, store: st, svc: svc, hub: hub}
}

// frame is one parsed SSE frame (or comment).
type frame struct {
	id, event, data, comment string
	hasID                    bool
}

// sseClient reads frames of one /v1/events response in the background.
type sseClient struct {
	t      testing.TB
	res    *http.Response
	frames chan frame
	done   chan struct{}
	cancel context.CancelFunc

	lastFrame frame // for failure messages
}

// connect opens a stream once the hub has fanned out every event already
// in the log, so "from now" means after what the test did so far (the
// hub lingers between reads: stream.WithLinger).
func (f *floor) connect(token, query string, header map[string]string) *sseClient {
	f.t.Helper()
	f.caughtUp()
	return connectTo(f.t, f.srv.URL, token, query, header)
}

// caughtUp waits until the hub's position is the log's newest event.
func (f *floor) caughtUp() {
	f.t.Helper()
	last, err := f.store.Last(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.hub.Position() != last {
		if time.Now().After(deadline) {
			f.t.Fatalf("the hub is at %q, not at the log's newest event %q", f.hub.Position(), last)
		}
		time.Sleep(time.Millisecond)
	}
}

func connectTo(t testing.TB, base, token, query string, header map[string]string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events"+query, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseClient{t: t, res: res, frames: make(chan frame, 100000), done: make(chan struct{}), cancel: cancel}
	if res.StatusCode != http.StatusOK {
		cancel()
		res.Body.Close()
		close(c.frames)
		close(c.done)
		return c
	}
	go c.read()
	t.Cleanup(c.close)
	return c
}

func (c *sseClient) read() {
	defer close(c.done)
	defer close(c.frames)
	sc := bufio.NewScanner(c.res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var fr frame
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if fr != (frame{}) {
				c.frames <- fr
			}
			fr = frame{}
		case strings.HasPrefix(line, ":"):
			fr.comment = strings.TrimSpace(line[1:])
		default:
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "id":
				fr.id, fr.hasID = v, true
			case "event":
				fr.event = v
			case "data":
				if fr.data != "" {
					fr.data += "\n"
				}
				fr.data += v
			}
		}
	}
}

func (c *sseClient) close() {
	c.cancel()
	c.res.Body.Close()
	<-c.done
}

// next returns the next frame that is not a comment (or a comment when
// comments is true), failing the test after 10 s.
func (c *sseClient) next(comments bool) frame {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case fr, ok := <-c.frames:
			if !ok {
				c.t.Fatalf("stream ended (last frame %+v)", c.lastFrame)
			}
			c.lastFrame = fr
			if fr.comment != "" && fr.event == "" && !comments {
				continue
			}
			return fr
		case <-timeout:
			c.t.Fatal("no frame within 10s")
		}
	}
}

// events reads n event frames and returns their ids.
func (c *sseClient) events(n int) []frame {
	c.t.Helper()
	var out []frame
	for len(out) < n {
		out = append(out, c.next(false))
	}
	return out
}

func idsOf(frames []frame) []string {
	var out []string
	for _, f := range frames {
		out = append(out, f.id)
	}
	return out
}

// setStatus flips an agent's call status through the service (one agent event).
func (f *floor) setStatus(id, status string) {
	f.t.Helper()
	if _, err := f.svc.SetStatus(context.Background(), presence.System, id, &status, nil); err != nil {
		f.t.Fatal(err)
	}
}

func (f *floor) last() string {
	f.t.Helper()
	id, err := f.store.Last(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	return id
}

// waitEnded fails the test unless the server ends the stream within 10 s
// (frames still queued are dropped).
func (c *sseClient) waitEnded() {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case _, ok := <-c.frames:
			if !ok {
				return
			}
		case <-timeout:
			c.t.Fatal("stream still open after 10 s")
		}
	}
}
