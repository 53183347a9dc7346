package stream_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

var admin = presence.Actor{ID: "root", Role: presence.RoleAdmin}

func subscribe(t testing.TB, h *stream.Hub, sub stream.Subscription) *stream.Subscriber {
	t.Helper()
	s, err := h.Subscribe(context.Background(), sub)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestResumeExactlyOnce: a subscriber that stops after event k and resumes
// from k receives k+1..n exactly once, in order, then live events — from
// the hub's window, from the log, and across the seam between them.
func TestResumeExactlyOnce(t *testing.T) {
	for _, tc := range []struct {
		name   string
		window int
	}{{"window", 1024}, {"log", 0}, {"window-too-small", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.NewMemory()
			testResume(t, st, st, tc.window)
		})
	}
}

func testResume(t *testing.T, st state.Store, log state.Log, window int) {
	h := startHub(t, log, stream.WithWindow(window), stream.WithBatch(4))
	first := subscribe(t, h, stream.Subscription{Actor: admin})
	all := commit(t, st, "agent", state.Scope{Agent: "a1"}, 10)
	equal(t, collect(t, first, 10), all)
	first.Close()

	k := 4 // the client saw all[0..3] = events 1..4
	again := subscribe(t, h, stream.Subscription{Actor: admin, After: all[k-1]})
	more := commit(t, st, "agent", state.Scope{Agent: "a1"}, 5)
	equal(t, collect(t, again, 6+5), append(all[k:], more...))
	quiet(t, h, log, again)
}

// gatedLog lets a test hold the hub's blocking reads (wait > 0) while
// catch-up reads (wait == 0) go through, so the hub lags the log.
type gatedLog struct {
	state.Log
	mu   sync.RWMutex
	held bool
}

func (g *gatedLog) ReadAfter(ctx context.Context, after string, limit int, wait time.Duration) ([]state.Event, error) {
	if wait > 0 {
		for {
			g.mu.RLock()
			held := g.held
			g.mu.RUnlock()
			if !held {
				break
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(time.Millisecond):
			}
		}
	}
	return g.Log.ReadAfter(ctx, after, limit, wait)
}

func (g *gatedLog) hold(v bool) { g.mu.Lock(); g.held = v; g.mu.Unlock() }

// TestResumeAheadOfHub: a client that saw events on another replica whose
// hub is ahead of this one resumes without duplicates once this hub catches up.
func TestResumeAheadOfHub(t *testing.T) {
	st := store.NewMemory()
	g := &gatedLog{Log: st}
	h := startHub(t, g, stream.WithReadWait(5*time.Millisecond))
	a := commit(t, st, "call", state.Scope{Groups: []string{"g1"}}, 3)
	waitPosition(t, h, st)
	g.hold(true)
	time.Sleep(20 * time.Millisecond) // let the hub's in-flight read return
	b := commit(t, st, "call", state.Scope{Groups: []string{"g1"}}, 6)
	if h.Position() != a[2] {
		t.Fatalf("hub at %s, want held at %s", h.Position(), a[2])
	}
	// The client saw up to b[2] elsewhere.
	sub := subscribe(t, h, stream.Subscription{Actor: admin, After: b[2]})
	equal(t, collect(t, sub, 3), b[3:])
	g.hold(false)
	c := commit(t, st, "call", state.Scope{Groups: []string{"g1"}}, 2)
	equal(t, collect(t, sub, 2), c)
	quiet(t, h, st, sub)
}

func TestTrimmedPositionResets(t *testing.T) {
	st := store.NewMemory(store.WithRetention(5))
	h := startHub(t, st, stream.WithWindow(0))
	old := commit(t, st, "agent", state.Scope{Agent: "a1"}, 20)
	waitPosition(t, h, st)
	sub := subscribe(t, h, stream.Subscription{Actor: admin, After: old[1]})
	next := commit(t, st, "agent", state.Scope{Agent: "a1"}, 2)
	equal(t, collect(t, sub, 3), append([]string{"reset"}, next...))
	quiet(t, h, st, sub)
}

func TestMalformedPositionResets(t *testing.T) {
	st := store.NewMemory()
	h := startHub(t, st)
	commit(t, st, "agent", state.Scope{Agent: "a1"}, 2)
	waitPosition(t, h, st)
	for _, after := range []string{"not-a-position", "999999"} {
		sub := subscribe(t, h, stream.Subscription{Actor: admin, After: after})
		next := commit(t, st, "agent", state.Scope{Agent: "a1"}, 1)
		equal(t, collect(t, sub, 2), append([]string{"reset"}, next...))
	}
}

// TestSupervisorSeesOnlyTheirGroups runs every event shape through a
// supervisor's and an agent's stream, live and on resume from the log.
func TestSupervisorSeesOnlyTheirGroups(t *testing.T) {
	st := store.NewMemory()
	h := startHub(t, st, stream.WithWindow(0))
	sup := presence.Actor{ID: "s1", Role: presence.RoleSupervisor, Groups: []string{"g9"}, Supervises: []string{"g1"}}
	agent := presence.Actor{ID: "a1", Role: presence.RoleAgent, Groups: []string{"g2"}}
	liveSup := subscribe(t, h, stream.Subscription{Actor: sup})
	liveAgent := subscribe(t, h, stream.Subscription{Actor: agent})
	start := commit(t, st, "stats", state.Scope{}, 1)[0]

	visibleSup := commit(t, st, "agent", state.Scope{Agent: "a7", Groups: []string{"g1"}}, 1)
	visibleSup = append(visibleSup, commit(t, st, "call", state.Scope{Agent: "a7", Queue: "q1", Groups: []string{"g1", "g3"}}, 1)...)
	visibleSup = append(visibleSup, commit(t, st, "agent", state.Scope{Agent: "s1"}, 1)...)           // themself
	visibleSup = append(visibleSup, commit(t, st, "call", state.Scope{Groups: []string{"g9"}}, 1)...) // a group they belong to
	visibleAgent := commit(t, st, "call", state.Scope{Agent: "a1", Queue: "q2", Groups: []string{"g4"}}, 1)
	visibleAgent = append(visibleAgent, commit(t, st, "agent", state.Scope{Agent: "a5", Groups: []string{"g2"}}, 1)...)
	commit(t, st, "agent", state.Scope{Agent: "a8", Groups: []string{"g2x"}}, 1)
	commit(t, st, "call", state.Scope{Agent: "a8", Queue: "q1", Groups: []string{"g5"}}, 1)
	commit(t, st, "stats", state.Scope{}, 1) // floor-wide: admins only
	commit(t, st, "call_ended", state.Scope{Queue: "q1"}, 1)

	equal(t, collect(t, liveSup, len(visibleSup)), visibleSup)
	quiet(t, h, st, liveSup)
	equal(t, collect(t, liveAgent, len(visibleAgent)), visibleAgent)
	quiet(t, h, st, liveAgent)

	resumed := subscribe(t, h, stream.Subscription{Actor: sup, After: start})
	equal(t, collect(t, resumed, len(visibleSup)), visibleSup)
	quiet(t, h, st, resumed)
}

func TestFilterTypesAndQueue(t *testing.T) {
	st := store.NewMemory()
	h := startHub(t, st)
	f, err := stream.ParseFilter("call, queue", "sales")
	if err != nil {
		t.Fatal(err)
	}
	sub := subscribe(t, h, stream.Subscription{Actor: admin, Filter: f})
	commit(t, st, "agent", state.Scope{Agent: "a1"}, 1)
	want := commit(t, st, "call", state.Scope{Queue: "sales"}, 1)
	commit(t, st, "call", state.Scope{Queue: "support"}, 1)
	want = append(want, commit(t, st, "queue", state.Scope{Queue: "sales"}, 1)...)
	want = append(want, commit(t, st, "call", state.Scope{}, 1)...) // not about a queue
	equal(t, collect(t, sub, len(want)), want)
	quiet(t, h, st, sub)

	if _, err := stream.ParseFilter("agent,calls", ""); err == nil {
		t.Fatal("unknown type accepted")
	}
}

// TestSlowSubscriberCutOff: a subscriber that never reads is cut off with
// ErrSlowConsumer after its queued events, while another one receives
// every event.
func TestSlowSubscriberCutOff(t *testing.T) {
	st := store.NewMemory()
	h := startHub(t, st, stream.WithSubscriberBuffer(8))
	slow := subscribe(t, h, stream.Subscription{Actor: admin})
	fast := subscribe(t, h, stream.Subscription{Actor: admin})
	var got []string
	var all []string
	for i := 0; i < 50; i++ {
		all = append(all, commit(t, st, "agent", state.Scope{Agent: "a1"}, 1)...)
		got = append(got, collect(t, fast, 1)...)
	}
	equal(t, got, all)

	items, err := slow.Take(context.Background(), nil)
	if err != nil || len(items) != 8 {
		t.Fatalf("slow got %d items, err %v; want its 8 queued events first", len(items), err)
	}
	equal(t, ids(items), all[:8])
	if _, err := slow.Take(context.Background(), nil); !errors.Is(err, stream.ErrSlowConsumer) {
		t.Fatalf("err = %v, want ErrSlowConsumer", err)
	}
	// Its reconnect resumes exactly after the last event it got.
	again := subscribe(t, h, stream.Subscription{Actor: admin, After: slow.Last()})
	equal(t, collect(t, again, 42), all[8:])
}

func TestRunStopsSubscribers(t *testing.T) {
	st := store.NewMemory()
	h := stream.NewHub(st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	sub, err := h.Subscribe(context.Background(), stream.Subscription{Actor: admin})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, err := sub.Next(context.Background()); !errors.Is(err, stream.ErrHubStopped) {
		t.Fatalf("err = %v, want ErrHubStopped", err)
	}
	if _, err := h.Subscribe(context.Background(), stream.Subscription{Actor: admin}); !errors.Is(err, stream.ErrHubStopped) {
		t.Fatalf("subscribe after stop: %v", err)
	}
}

func TestVisible(t *testing.T) {
	sup := presence.Actor{ID: "s1", Role: presence.RoleSupervisor, Supervises: []string{"g1"}}
	ag := presence.Actor{ID: "a1", Role: presence.RoleAgent, Groups: []string{"g2"}}
	for _, tc := range []struct {
		actor presence.Actor
		sc    state.Scope
		want  bool
	}{
		{admin, state.Scope{}, true},
		{admin, state.Scope{Groups: []string{"x"}}, true},
		{sup, state.Scope{Groups: []string{"g1"}}, true},
		{sup, state.Scope{Groups: []string{"g2"}}, false},
		{sup, state.Scope{Agent: "a9", Groups: []string{"g2"}}, false},
		{sup, state.Scope{Agent: "s1"}, true},
		{sup, state.Scope{}, false},
		{sup, state.Scope{Queue: "q1"}, false},
		{ag, state.Scope{Groups: []string{"g2"}}, true},
		{ag, state.Scope{Groups: []string{"g1"}}, false},
		{ag, state.Scope{Agent: "a1"}, true},
		{ag, state.Scope{Agent: "a2"}, false},
	} {
		if got := stream.Visible(tc.actor, tc.sc); got != tc.want {
			t.Errorf("Visible(%s, %+v) = %v, want %v", tc.actor.ID, tc.sc, got, tc.want)
		}
	}
}

func FuzzParseFilter(f *testing.F) {
	f.Add("agent,call", "sales")
	f.Add(" , stats ,,", "a,,b")
	f.Add("bogus", "")
	f.Fuzz(func(t *testing.T, types, queues string) {
		flt, err := stream.ParseFilter(types, queues)
		if err != nil {
			return
		}
		for _, ty := range flt.Types {
			found := false
			for _, k := range stream.Types {
				found = found || k == ty
			}
			if !found {
				t.Fatalf("accepted unknown type %q", ty)
			}
		}
		for _, q := range flt.Queues {
			if q == "" {
				t.Fatal("empty queue name kept")
			}
		}
	})
}

// countingLog counts the reads that returned events.
type countingLog struct {
	state.Log
	mu    sync.Mutex
	reads int
}

func (c *countingLog) ReadAfter(ctx context.Context, after string, limit int, wait time.Duration) ([]state.Event, error) {
	evs, err := c.Log.ReadAfter(ctx, after, limit, wait)
	if len(evs) > 0 {
		c.mu.Lock()
		c.reads++
		c.mu.Unlock()
	}
	return evs, err
}

func (c *countingLog) count() int { c.mu.Lock(); defer c.mu.Unlock(); return c.reads }

// TestLingerBatchesBursts: after a delivery the hub waits out its linger,
// so the commits made meanwhile reaches the hub in one read and a
// subscriber in one wake-up, while the first event of a quiet spell is
// delivered without waiting (docs/performance.md, Wake-ups).
func TestLingerBatchesBursts(t *testing.T) {
	const linger = 500 * time.Millisecond
	st := store.NewMemory()
	log := &countingLog{Log: st}
	h := startHub(t, log, stream.WithLinger(linger))
	sub := subscribe(t, h, stream.Subscription{Actor: admin})

	first := commit(t, st, "agent", state.Scope{Agent: "a1"}, 1)
	equal(t, collect(t, sub, 1), first)
	// Commits 5 ms apart: without the linger each would be a read of its own.
	start := time.Now()
	var burst []string
	for range 20 {
		burst = append(burst, commit(t, st, "agent", state.Scope{Agent: "a1"}, 1)...)
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); took > linger/2 {
		t.Skipf("the burst of commits took %v, too close to the linger of %v to tell", took, linger)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	items, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != len(burst) {
		t.Fatalf("one wake-up delivered %d events, want the whole burst of %d", len(items), len(burst))
	}
	if n := log.count(); n != 2 {
		t.Fatalf("the hub needed %d reads with events for 2 batches", n)
	}

	// A quiet spell longer than the linger: the next event is not held back.
	time.Sleep(linger + 100*time.Millisecond)
	start = time.Now()
	late := commit(t, st, "agent", state.Scope{Agent: "a1"}, 1)
	equal(t, collect(t, sub, 1), late)
	if waited := time.Since(start); waited >= linger {
		t.Fatalf("an event after a quiet spell waited %v, the whole linger", waited)
	}
}
