package webhook_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/webhook"
)

// delivery is what the receiver saw of one request.
type delivery struct {
	ID, Event, Resource string
	Attempt             int
	Status              int
}

// receiver is a loopback CRM endpoint that verifies signatures and
// answers per its policy.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	secret string
	policy func(r *receiver, d delivery) int

	mu   sync.Mutex
	seen []delivery
	cond chan struct{}
}

func newReceiver(t *testing.T, policy func(r *receiver, d delivery) int) *receiver {
	r := &receiver{t: t, policy: policy, cond: make(chan struct{}, 1)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if err := webhook.Verify(r.secret, req.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute); err != nil {
		r.t.Errorf("signature of %s: %v", req.Header.Get("X-Callfloor-Delivery"), err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &ev); err != nil {
		r.t.Errorf("body %s: %v", body, err)
	}
	var obj struct{ ID string }
	_ = json.Unmarshal(ev.Data, &obj)
	attempt, _ := strconv.Atoi(req.Header.Get("X-Callfloor-Attempt"))
	d := delivery{ID: req.Header.Get("X-Callfloor-Delivery"), Event: ev.ID, Resource: ev.Type + ":" + obj.ID, Attempt: attempt}
	r.mu.Lock()
	d.Status = r.policy(r, d)
	r.seen = append(r.seen, d)
	r.mu.Unlock()
	select {
	case r.cond <- struct{}{}:
	default:
	}
	w.WriteHeader(d.Status)
}

// delivered returns the successful deliveries (caller holds no lock).
func (r *receiver) delivered() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []delivery
	for _, d := range r.seen {
		if d.Status < 300 {
			out = append(out, d)
		}
	}
	return out
}

// waitDelivered waits until n deliveries succeeded.
func (r *receiver) waitDelivered(n int) []delivery {
	r.t.Helper()
	deadline := time.After(15 * time.Second)
	for {
		if got := r.delivered(); len(got) >= n {
			return got
		}
		select {
		case <-r.cond:
		case <-time.After(10 * time.Millisecond):
		case <-deadline:
			r.t.Fatalf("only %d of %d deliveries: %+v", len(r.delivered()), n, r.seen)
		}
	}
}

// leaseStore is a store that also keeps leases, as both stores do.
type leaseStore interface {
	state.StoreLog
	lease.Backend
}

func startDispatcher(t *testing.T, st leaseStore, holder string, opts ...webhook.Option) (stop func()) {
	t.Helper()
	l := lease.New(st, webhook.LeaseName, lease.WithHolder(holder), lease.WithTTL(time.Second))
	d := webhook.NewDispatcher(st, st, l, append([]webhook.Option{
		webhook.WithBackoff(20*time.Millisecond, 100*time.Millisecond), webhook.WithFlushInterval(10 * time.Millisecond),
	}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

func register(t *testing.T, st state.StoreLog, r *receiver, types ...string) webhook.Hook {
	t.Helper()
	h, err := webhook.NewRegistry(st, st).Create(context.Background(), admin, webhook.Input{URL: r.srv.URL + "/hook", Types: types})
	if err != nil {
		t.Fatal(err)
	}
	r.secret = h.Secret
	return h
}

func emit(t *testing.T, st state.Store, typ, id string, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		data, _ := json.Marshal(map[string]any{"id": id, "seq": i})
		if _, err := st.Commit(context.Background(), state.Tx{Events: []state.NewEvent{{Type: typ, Data: data}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// waitForLeader makes sure the dispatcher holds the lease and has fixed
// its starting cursor, so events emitted next are after it.
func waitForLeader(t *testing.T, st state.Store) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		if _, err := st.Get(context.Background(), state.KindMeta, "webhook-dispatcher"); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("dispatcher never took the lease")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestDeliverySignedRetriedOrdered: every delivery is signed; a1's first
// event fails twice (and until a2's has arrived, proving other resources
// are not held up) and is then retried to success; per resource, events
// arrive in log order and no later event overtakes an unfinished one.
func TestDeliverySignedRetriedOrdered(t *testing.T) {
	st := store.NewMemory()
	failures := map[string]int{}
	rcv := newReceiver(t, func(r *receiver, d delivery) int {
		if d.Resource == "agent:a1" && failures[d.ID] < 2 || d.Resource == "agent:a1" && failures[d.ID] < 10 && !r.sawLocked("agent:a2") {
			failures[d.ID]++
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	hook := register(t, st, rcv, "agent")
	startDispatcher(t, st, "a")
	waitForLeader(t, st)
	emit(t, st, "agent", "a1", 3)
	emit(t, st, "queue", "q1", 1) // not subscribed
	emit(t, st, "agent", "a2", 3)
	got := rcv.waitDelivered(6)

	order := map[string][]string{}
	for _, d := range got {
		order[d.Resource] = append(order[d.Resource], d.Event)
	}
	for res, evs := range order {
		for i := 1; i < len(evs); i++ {
			if a, b := mustAtoi(t, evs[i-1]), mustAtoi(t, evs[i]); a >= b {
				t.Fatalf("%s delivered out of order: %v", res, evs)
			}
		}
	}
	rcv.mu.Lock()
	for _, d := range rcv.seen {
		if d.Resource == "queue:q1" {
			t.Fatalf("delivered an unsubscribed type: %+v", d)
		}
	}
	rcv.mu.Unlock()

	// The delivery log shows the retries once persisted.
	reg := webhook.NewRegistry(st, st)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ds, err := reg.Deliveries(context.Background(), admin, hook.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) == 6 && allDelivered(ds) {
			var oldest webhook.Delivery // a1's first event
			for _, d := range ds {
				if d.Resource == "agent:a1" && (oldest.ID == "" || mustAtoi(t, d.EventID) < mustAtoi(t, oldest.EventID)) {
					oldest = d
				}
			}
			if oldest.Resource != "agent:a1" || oldest.Attempts < 3 || oldest.LastStatus != 204 || oldest.DeliveredAt == nil || oldest.LastError != "" {
				t.Fatalf("first delivery recorded as %+v", oldest)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery log %+v", ds)
		}
	}
}

func (r *receiver) sawLocked(resource string) bool {
	for _, d := range r.seen {
		if d.Resource == resource && d.Status < 300 {
			return true
		}
	}
	return false
}

func allDelivered(ds []webhook.Delivery) bool {
	for _, d := range ds {
		if d.State != webhook.StateDelivered {
			return false
		}
	}
	return true
}

func mustAtoi(t *testing.T, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("event id %q", s)
	}
	return n
}

// TestRedirectNotFollowed: a 3xx is a failed attempt; the redirect target
// is never contacted.
func TestRedirectNotFollowed(t *testing.T) {
	st := store.NewMemory()
	var elsewhere sync.Mutex
	hits := 0
	other := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		elsewhere.Lock()
		hits++
		elsewhere.Unlock()
	}))
	defer other.Close()
	rcv := newReceiver(t, func(*receiver, delivery) int { return http.StatusFound })
	rcv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		http.Redirect(w, req, other.URL+"/steal", http.StatusFound)
	})
	hook := register(t, st, rcv)
	startDispatcher(t, st, "a", webhook.WithMaxAttempts(2))
	waitForLeader(t, st)
	emit(t, st, "call", "c1", 1)
	d := waitFinished(t, st, hook.ID)
	if d.State != webhook.StateFailed || d.Attempts != 2 || d.LastStatus != http.StatusFound || d.DeliveredAt != nil {
		t.Fatalf("delivery %+v", d)
	}
	elsewhere.Lock()
	defer elsewhere.Unlock()
	if hits != 0 {
		t.Fatalf("redirect target contacted %d times", hits)
	}
}

// TestRequestTimeout: a receiver that hangs costs one timed-out attempt.
func TestRequestTimeout(t *testing.T) {
	st := store.NewMemory()
	release := make(chan struct{})
	rcv := newReceiver(t, nil)
	rcv.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-req.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	hook := register(t, st, rcv)
	startDispatcher(t, st, "a", webhook.WithMaxAttempts(1), webhook.WithTimeout(50*time.Millisecond))
	waitForLeader(t, st)
	emit(t, st, "call", "c1", 1)
	d := waitFinished(t, st, hook.ID)
	if d.State != webhook.StateFailed || d.Attempts != 1 || d.LastError == "" {
		t.Fatalf("delivery %+v", d)
	}
}

func waitFinished(t *testing.T, st state.StoreLog, hookID string) webhook.Delivery {
	t.Helper()
	reg := webhook.NewRegistry(st, st)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ds, err := reg.Deliveries(context.Background(), admin, hookID)
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) > 0 && ds[0].State != webhook.StatePending {
			return ds[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished delivery: %+v", ds)
		}
	}
}

// TestRestartResumesAndLeaseIsExclusive: two dispatchers run at once
// (only one leads), the leader stops, events emitted meanwhile are
// delivered by the other, and nothing is delivered twice.
func TestRestartResumesAndLeaseIsExclusive(t *testing.T) {
	st := store.NewMemory()
	testRestartResumes(t, st, st)
}

// On Redis the two dispatchers use separate clients, like two processes.
func TestRestartResumesAndLeaseIsExclusiveRedis(t *testing.T) {
	srv := testpeer.StartRedis(t)
	a := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}))
	defer a.Close()
	b := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}))
	defer b.Close()
	testRestartResumes(t, a, b)
}

// testRestartResumes runs dispatcher "a" on st and "b" on other (the same
// store, or another client of the same Redis).
func testRestartResumes(t *testing.T, st, other leaseStore) {
	rcv := newReceiver(t, func(*receiver, delivery) int { return http.StatusOK })
	hook := register(t, st, rcv)
	stopA := startDispatcher(t, st, "a")
	waitForLeader(t, st)
	startDispatcher(t, other, "b")
	emit(t, st, "agent", "a1", 5)
	rcv.waitDelivered(5)
	// Stop once A has recorded them (a delivery cut short by a shutdown
	// before it is recorded is retried: at-least-once).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ds, _ := webhook.NewRegistry(st, st).Deliveries(context.Background(), admin, hook.ID)
		if len(ds) == 5 && allDelivered(ds) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v", ds)
		}
	}
	stopA() // releases the lease
	emit(t, st, "agent", "a1", 5)
	emit(t, st, "call", "c1", 5)
	got := rcv.waitDelivered(15)
	time.Sleep(50 * time.Millisecond) // let any duplicate show up
	got = rcv.delivered()
	seen := map[string]bool{}
	for _, d := range got {
		if seen[d.ID] {
			t.Fatalf("delivered twice: %s (%d deliveries)", d.ID, len(got))
		}
		seen[d.ID] = true
	}
	if len(got) != 15 {
		t.Fatalf("%d deliveries, want 15", len(got))
	}
}

// TestDeadReceiverIsolated: a receiver that is down holds back only its
// own webhook; another webhook gets every event.
func TestDeadReceiverIsolated(t *testing.T) {
	st := store.NewMemory()
	dead := newReceiver(t, func(*receiver, delivery) int { return http.StatusServiceUnavailable })
	register(t, st, dead)
	ok := newReceiver(t, func(*receiver, delivery) int { return http.StatusOK })
	register(t, st, ok)
	startDispatcher(t, st, "a", webhook.WithMaxPending(2), webhook.WithBackoff(time.Hour, time.Hour))
	for i := 0; i < 10; i++ {
		emit(t, st, "agent", fmt.Sprintf("a%d", i), 1)
	}
	ok.waitDelivered(10)
}

// TestStaleLeaderFenced: the lease is taken from under a delivering
// dispatcher (as a newer owner would after a pause or partition). It stops
// at its next renewal, delivers nothing while another holds the lease, its
// cursor writes are refused by the fence, and once the lease is free again
// it resumes without delivering anything twice.
func TestStaleLeaderFenced(t *testing.T) {
	st := store.NewMemory()
	rcv := newReceiver(t, func(*receiver, delivery) int { return http.StatusOK })
	hook := register(t, st, rcv)
	l := lease.New(st, webhook.LeaseName, lease.WithHolder("a"), lease.WithTTL(300*time.Millisecond))
	d := webhook.NewDispatcher(st, st, l, webhook.WithFlushInterval(10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	waitForLeader(t, st)
	emit(t, st, "agent", "a1", 1)
	rcv.waitDelivered(1)
	// Once recorded: a delivery cut short before it is recorded is
	// retried by the next term (at-least-once).
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		ds, _ := webhook.NewRegistry(st, st).Deliveries(ctx, admin, hook.ID)
		if len(ds) == 1 && allDelivered(ds) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries %+v", ds)
		}
	}
	first := l.Status().Token

	var thief lease.Grant
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		_ = st.Release(ctx, webhook.LeaseName, "a", l.Status().Token)
		g, err := st.TryAcquire(ctx, webhook.LeaseName, "thief", time.Hour)
		if err == nil {
			thief = g
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("could not take the lease from the dispatcher")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); l.Status().Held; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the dispatcher never noticed it lost the lease")
		}
	}
	// The stale term's fence is refused by the store.
	if _, err := st.Commit(ctx, state.Tx{Fence: state.Fence{Lease: webhook.LeaseName, Token: first}}); !errors.Is(err, state.ErrFenced) {
		t.Fatalf("stale term's commit: %v, want ErrFenced", err)
	}
	emit(t, st, "agent", "a1", 3)
	time.Sleep(200 * time.Millisecond) // room for a wrong delivery to show up
	if n := len(rcv.delivered()); n != 1 {
		t.Fatalf("%d deliveries while another replica held the lease, want 1", n)
	}
	if err := st.Release(ctx, webhook.LeaseName, "thief", thief.Token); err != nil {
		t.Fatal(err)
	}
	rcv.waitDelivered(4)
	time.Sleep(50 * time.Millisecond) // let any duplicate show up
	seen := map[string]bool{}
	for _, d := range rcv.delivered() {
		if seen[d.ID] {
			t.Fatalf("delivered twice: %s", d.ID)
		}
		seen[d.ID] = true
	}
	if st := l.Status(); !st.Held || st.Token <= thief.Token || st.Lost != 1 {
		t.Fatalf("dispatcher lease after resuming: %+v (thief had %d)", st, thief.Token)
	}
}
