package routing_test

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/store"
)

// heldObserver counts what the engine says about held facts.
type heldObserver struct {
	countingObserver
	held, maxHeld, dropped atomic.Int64
}

func (o *heldObserver) FactsHeld(n int) {
	o.held.Store(int64(n))
	if int64(n) > o.maxHeld.Load() {
		o.maxHeld.Store(int64(n))
	}
}
func (o *heldObserver) FactDropped() { o.dropped.Add(1) }

// syncBuffer is a log sink shared by the engine's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds, failing after 30 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 30 s", what)
		}
	}
}

// heldFloor is a floor on a real redis-server (append-only, so a restart
// keeps every acknowledged write) with a1 in queue main.
func heldFloor(t *testing.T, opts ...routing.Option) (*testFloor, *testpeer.RedisServer) {
	srv := testpeer.StartRedis(t, testpeer.WithAppendOnly())
	prefix := fmt.Sprintf("{held%d}:", redisPrefixes.Add(1))
	// Few retries, short timeouts: an outage shows at once.
	st := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 1,
		DialTimeout: 200 * time.Millisecond, ReadTimeout: 500 * time.Millisecond}), store.WithPrefix(prefix))
	f := newFloorOn(t, st, nil, time.Time{}, opts...)
	f.addGroup("sales")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addQueue("main", routing.LongestIdle, 10, []string{"sales"}, "+842800")
	return f, srv
}

// Media facts that arrive while Redis is down are held in order and
// applied in that order once it is back: a1 answers and then the caller
// hangs up, both during the outage; a replay in another order would count
// a miss (ended before the answer) instead of an accepted call. A call
// arriving during the outage is adopted after it, not lost.
func TestHeldFactsReplayInOrder(t *testing.T) {
	obs := &heldObserver{}
	f, srv := heldFloor(t, routing.WithObserver(obs))
	id, cust := f.arrive("+84901000001", "+842800")
	agentLeg := f.legOf("a1")

	srv.Stop()
	f.eng.Report(media.LegAnswered{FactBase: f.at(), Leg: agentLeg})
	waitFor(t, "the answer held for the store", func() bool { return f.eng.HeldFacts() == 1 })
	f.eng.Report(media.LegEnded{FactBase: f.at(), Leg: cust, Cause: media.CauseNormal})
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-late", Caller: "+84901000002", Hotline: "+842800"})
	if n := f.eng.HeldFacts(); n != 3 {
		t.Fatalf("%d facts held, want 3 (every fact after the first queues behind it)", n)
	}
	if obs.held.Load() != 3 {
		t.Fatalf("observer saw %d held, want 3", obs.held.Load())
	}

	srv.Start(t)
	waitFor(t, "held facts replayed", func() bool { return f.eng.HeldFacts() == 0 })
	f.flush()
	f.wantGone(id)
	if s := f.stats("", ""); s.Accepted != 1 || s.Missed != 0 {
		t.Fatalf("after the replay: accepted %d missed %d, want 1 and 0 (answer applied before the hang-up)", s.Accepted, s.Missed)
	}
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].CustomerNumber != "+84901000002" {
		t.Fatalf("live calls after the replay: %+v, want the call that arrived during the outage", calls)
	}
	if obs.held.Load() != 0 || obs.dropped.Load() != 0 {
		t.Fatalf("observer: held %d dropped %d, want 0 and 0", obs.held.Load(), obs.dropped.Load())
	}
}

// Past the bound the oldest moot fact (a device's state, which the next
// registration repeats) is dropped first, then the oldest fact; each drop
// is counted and logged. What is kept is still applied in order.
func TestHeldFactsBound(t *testing.T) {
	obs := &heldObserver{}
	logs := &syncBuffer{}
	f, srv := heldFloor(t, routing.WithObserver(obs), routing.WithHeldFacts(3),
		routing.WithLogger(slog.New(slog.NewTextHandler(logs, nil))))
	id, cust := f.arrive("+84901000001", "+842800")
	agentLeg := f.legOf("a1")

	srv.Stop()
	f.eng.Report(media.DeviceState{FactBase: f.at(), AgentID: "a1", Device: "a1", Registered: true})
	waitFor(t, "the device fact held for the store", func() bool { return f.eng.HeldFacts() == 1 })
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-dropped", Caller: "+84901000003", Hotline: "+842800"})
	f.eng.Report(media.LegAnswered{FactBase: f.at(), Leg: agentLeg})
	f.eng.Report(media.LegEnded{FactBase: f.at(), Leg: cust, Cause: media.CauseNormal}) // over the bound: the device fact goes
	if n, d := f.eng.HeldFacts(), obs.dropped.Load(); n != 3 || d != 1 {
		t.Fatalf("held %d dropped %d, want 3 and 1", n, d)
	}
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-kept", Caller: "+84901000004", Hotline: "+842800"}) // no moot one left: the oldest goes
	if n, d := f.eng.HeldFacts(), obs.dropped.Load(); n != 3 || d != 2 {
		t.Fatalf("held %d dropped %d, want 3 and 2", n, d)
	}
	for _, want := range []string{"dropped=media.DeviceState bound=3", "dropped=media.CallArrived bound=3"} {
		if !strings.Contains(logs.String(), "level=WARN msg=\"store unreachable: held media facts over the bound; dropped one\" "+want) {
			t.Fatalf("no WARN line for the drop %q in:\n%s", want, logs.String())
		}
	}

	srv.Start(t)
	waitFor(t, "held facts replayed", func() bool { return f.eng.HeldFacts() == 0 })
	f.flush()
	f.wantGone(id)
	if s := f.stats("", ""); s.Accepted != 1 {
		t.Fatalf("accepted %d after the replay, want 1", s.Accepted)
	}
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 1 || calls[0].CustomerNumber != "+84901000004" {
		t.Fatalf("live calls: %+v, want only the kept arrival (the dropped one was the oldest)", calls)
	}
}
