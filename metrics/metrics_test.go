package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A subscriber that overflows its queue is cut off and counted; the
// subscriber gauge follows attach and detach.
func TestStreamObserverCountsSlowConsumers(t *testing.T) {
	m := New()
	st := store.NewMemory(store.WithObserver(m.Store()))
	defer st.Close()
	hub := stream.NewHub(st, stream.WithSubscriberBuffer(2), stream.WithObserver(m.Stream()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = hub.Run(ctx) }()
	defer func() { cancel(); <-done }()

	sub, err := hub.Subscribe(ctx, stream.Subscription{Actor: presence.System})
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.subscribers); got != 1 {
		t.Fatalf("subscribers = %v, want 1", got)
	}
	if _, err := st.Commit(ctx, state.Tx{Events: []state.NewEvent{{Type: "call", Data: []byte("{}")}, {Type: "call", Data: []byte("{}")}, {Type: "agent", Data: []byte("{}")}}}); err != nil {
		t.Fatal(err)
	}
	var items []stream.Item
	for {
		it, err := sub.Next(ctx)
		items = append(items, it...)
		if err != nil {
			if err != stream.ErrSlowConsumer {
				t.Fatalf("Next: %v", err)
			}
			break
		}
	}
	if got := testutil.ToFloat64(m.slowConsumers); got != 1 {
		t.Errorf("slow consumers = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.eventsDelivered); got != float64(len(items)) || len(items) != 2 {
		t.Errorf("delivered = %v, items %d, want 2", got, len(items))
	}
	if got := testutil.ToFloat64(m.eventsAppended.WithLabelValues("call")); got != 2 {
		t.Errorf("appended calls = %v, want 2", got)
	}
	sub.Close()
	if got := testutil.ToFloat64(m.subscribers); got != 0 {
		t.Errorf("subscribers after close = %v", got)
	}
}

// On Redis every command is timed by name through the client hook, except
// the log tail's blocking XREAD (its time is waiting, not work).
func TestStoreObserverTimesRedisCommands(t *testing.T) {
	srv := testpeer.StartRedis(t)
	m := New()
	st := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}), store.WithObserver(m.Store()))
	defer st.Close()
	ctx := context.Background()
	if _, err := st.Commit(ctx, state.Tx{Events: []state.NewEvent{{Type: "agent", Data: []byte("{}")}}}); err != nil {
		t.Fatal(err)
	}
	last, err := st.Last(ctx)
	if err != nil {
		t.Fatal(err)
	}
	xreads := sampleCount(t, m, "xread")
	if _, err := st.ReadAfter(ctx, last, 10, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if got := sampleCount(t, m, "xread"); got != xreads {
		t.Errorf("a blocking read was timed: xread samples %d → %d", xreads, got)
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	text := string(body)
	if !strings.Contains(text, `callfloor_store_command_seconds_count{op="evalsha"}`) &&
		!strings.Contains(text, `callfloor_store_command_seconds_count{op="eval"}`) {
		t.Errorf("the commit script is not timed:\n%s", grepLines(text, "store_command"))
	}
	if got := testutil.ToFloat64(m.eventsAppended.WithLabelValues("agent")); got != 1 {
		t.Errorf("appended agent events = %v, want 1", got)
	}
}

func sampleCount(t *testing.T, m *Metrics, op string) uint64 {
	t.Helper()
	mfs, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "callfloor_store_command_seconds" {
			continue
		}
		for _, s := range mf.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetName() == "op" && l.GetValue() == op {
					return s.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return 0
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// The SIP path's malformed packets are one unlabelled counter (a label
// per source would grow without bound under a flood).
func TestSIPPacketObserverCounts(t *testing.T) {
	m := New()
	o := m.SIPPackets()
	for range 3 {
		o.MalformedPacket("192.0.2.1")
	}
	o.MalformedPacket("192.0.2.2")
	if got := testutil.ToFloat64(m.sipMalformed); got != 4 {
		t.Fatalf("sip_malformed_packets_total = %v, want 4", got)
	}
}

// TestLeaseObserver: a real lease on a memory store taken, lost (pulled
// from under its holder) and taken again shows up as held, token and one
// loss.
func TestLeaseObserver(t *testing.T) {
	m := New()
	st := store.NewMemory()
	defer st.Close()
	l := lease.New(st, "media:x", lease.WithHolder("A"), lease.WithTTL(300*time.Millisecond), lease.WithObserver(m.Lease()))
	ctx, cancel := context.WithCancel(context.Background())
	terms := make(chan lease.Term, 4)
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = l.Run(ctx, func(ctx context.Context, term lease.Term) error { terms <- term; <-ctx.Done(); return nil })
	}()
	first := <-terms
	if got := testutil.ToFloat64(m.leaseHeld.WithLabelValues("media:x")); got != 1 {
		t.Fatalf("lease_held = %v while held", got)
	}
	if err := st.Release(ctx, "media:x", "A", first.Token); err != nil {
		t.Fatal(err)
	}
	second := <-terms // lost at the next renewal, then taken again
	if got := testutil.ToFloat64(m.leaseLost.WithLabelValues("media:x")); got != 1 {
		t.Fatalf("lease_lost_total = %v, want 1", got)
	}
	if got := testutil.ToFloat64(m.leaseToken.WithLabelValues("media:x")); got != float64(second.Token) || second.Token <= first.Token {
		t.Fatalf("lease_token = %v, want %d (> %d)", got, second.Token, first.Token)
	}
	cancel()
	<-done
	if got := testutil.ToFloat64(m.leaseHeld.WithLabelValues("media:x")); got != 0 {
		t.Fatalf("lease_held = %v after shutdown", got)
	}
}

// The reports projector's counters move.
func TestReportsObserver(t *testing.T) {
	m := New()
	r := m.Reports()
	r.Applied(3)
	r.Gap()
	if got := testutil.ToFloat64(m.reportsApplied); got != 3 {
		t.Errorf("projected = %v", got)
	}
	if got := testutil.ToFloat64(m.reportsGaps); got != 1 {
		t.Errorf("gaps = %v", got)
	}
}

// Media facts held for the store and dropped past the bound are exported
// (routing's Observer.FactsHeld / FactDropped, held.go).
func TestRoutingHeldFactsExported(t *testing.T) {
	m := New()
	o := m.Routing()
	o.FactsHeld(3)
	o.FactDropped()
	o.FactDropped()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{"callfloor_routing_facts_held 3\n", "callfloor_routing_facts_dropped_total 2\n"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
