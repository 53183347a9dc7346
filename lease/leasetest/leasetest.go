// Package leasetest is the contract suite every lease.Backend must pass,
// and the proof that lease.Lease holds on top of it: one holder at a time,
// renewal well inside the TTL, a fencing token that grows on every change
// of owner, a prompt stop when the grant is lost, and a hand-over on
// shutdown that the next holder takes at once. A backend's test calls Run
// with a Factory (store runs it for the memory and the Redis store).
package leasetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/lease"
)

// Factory builds the backends under test.
type Factory struct {
	// New returns an empty, isolated backend, closed in t.Cleanup.
	New func(t *testing.T) lease.Backend
	// Peer returns another client of the same backing data as b (another
	// Redis connection with the same prefix), like a second replica. A
	// backend without separate clients returns b itself.
	Peer func(t *testing.T, b lease.Backend) lease.Backend
}

// Run runs the whole suite.
func Run(t *testing.T, f Factory) {
	if f.New == nil || f.Peer == nil {
		t.Fatal("leasetest: Factory.New and Factory.Peer are required")
	}
	t.Run("Acquire", func(t *testing.T) { runAcquire(t, f) })
	t.Run("Renew", func(t *testing.T) { runRenew(t, f) })
	t.Run("ExpiryAndTokens", func(t *testing.T) { runExpiry(t, f) })
	t.Run("Release", func(t *testing.T) { runRelease(t, f) })
	t.Run("WaitRelease", func(t *testing.T) { runWaitRelease(t, f) })
	t.Run("Names", func(t *testing.T) { runNames(t, f) })
	t.Run("HolderExclusive", func(t *testing.T) { runExclusive(t, f) })
	t.Run("HandOver", func(t *testing.T) { runHandOver(t, f) })
	t.Run("HolderLearnsLoss", func(t *testing.T) { runLoss(t, f) })
	t.Run("RenewalsFail", func(t *testing.T) { runRenewalsFail(t, f) })
}

// bound is the generous limit on anything the suite waits for; reaching
// it fails the test (it is a hang detector, not a performance claim).
const bound = 15 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func acquire(t *testing.T, b lease.Backend, name, holder string, ttl time.Duration) lease.Grant {
	t.Helper()
	g, err := b.TryAcquire(ctx(t), name, holder, ttl)
	if err != nil {
		t.Fatalf("TryAcquire(%s, %s): %v", name, holder, err)
	}
	if g.Holder != holder || g.Token <= 0 || g.TTL != ttl {
		t.Fatalf("TryAcquire(%s, %s) = %+v", name, holder, g)
	}
	return g
}

func wantHeld(t *testing.T, b lease.Backend, name, holder, by string, token int64) {
	t.Helper()
	g, err := b.TryAcquire(ctx(t), name, holder, time.Minute)
	if !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("TryAcquire(%s, %s) = %+v, %v; want ErrHeld", name, holder, g, err)
	}
	if g.Holder != by || g.Token != token || g.TTL <= 0 || g.TTL > time.Minute {
		t.Fatalf("TryAcquire(%s, %s) reports holder %+v, want %s with token %d", name, holder, g, by, token)
	}
}

// eventually polls cond until it holds or bound passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(bound); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, bound)
		}
	}
}

func runAcquire(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Peer(t, a)
	g := acquire(t, a, "floor", "A", time.Minute)
	wantHeld(t, b, "floor", "B", "A", g.Token)
	// The holder acquiring again renews and keeps its token.
	if again := acquire(t, b, "floor", "A", time.Minute); again.Token != g.Token {
		t.Fatalf("re-acquire by the holder: token %d, want %d", again.Token, g.Token)
	}
	// Another lease is independent.
	acquire(t, b, "webhooks", "B", time.Minute)
}

func runRenew(t *testing.T, f Factory) {
	a := f.New(t)
	g := acquire(t, a, "floor", "A", time.Minute)
	if err := a.Renew(ctx(t), "floor", "A", g.Token, time.Minute); err != nil {
		t.Fatalf("Renew by the holder: %v", err)
	}
	for _, c := range []struct {
		name, holder string
		token        int64
	}{
		{"another holder with the token", "B", g.Token},
		{"the holder with a wrong token", "A", g.Token + 1},
		{"an unknown lease", "A", g.Token},
	} {
		lname := "floor"
		if c.name == "an unknown lease" {
			lname = "nothing"
		}
		if err := a.Renew(ctx(t), lname, c.holder, c.token, time.Minute); !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Renew by %s: %v, want ErrLost", c.name, err)
		}
	}
	// A renewal extends the grant: with a short TTL renewed several times
	// over, nobody else gets in.
	s := acquire(t, a, "short", "A", 300*time.Millisecond)
	for range 5 {
		time.Sleep(100 * time.Millisecond)
		if err := a.Renew(ctx(t), "short", "A", s.Token, 300*time.Millisecond); err != nil {
			t.Fatalf("Renew inside the TTL: %v", err)
		}
	}
	wantHeld(t, a, "short", "B", "A", s.Token)
}

func runExpiry(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Peer(t, a)
	ga := acquire(t, a, "floor", "A", 50*time.Millisecond)
	var gb lease.Grant
	eventually(t, "B acquires the expired lease", func() bool {
		g, err := b.TryAcquire(ctx(t), "floor", "B", time.Minute)
		gb = g
		return err == nil
	})
	if gb.Token <= ga.Token {
		t.Fatalf("token after a change of owner = %d, want > %d", gb.Token, ga.Token)
	}
	if err := a.Renew(ctx(t), "floor", "A", ga.Token, time.Minute); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew by the expired holder: %v, want ErrLost", err)
	}
	// Even the same holder gets a new token once its grant has expired
	// (it may have acted as if it had lost it).
	gc := acquire(t, a, "own", "A", 50*time.Millisecond)
	time.Sleep(200 * time.Millisecond) // let it expire; re-acquiring earlier would renew it
	gd := acquire(t, a, "own", "A", time.Minute)
	if gd.Token <= gc.Token {
		t.Fatalf("token after expiry = %d, want > %d", gd.Token, gc.Token)
	}
}

func runRelease(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Peer(t, a)
	ga := acquire(t, a, "floor", "A", time.Minute)
	// A stale or foreign release changes nothing.
	for _, c := range []struct {
		holder string
		token  int64
	}{{"B", ga.Token}, {"A", ga.Token + 7}} {
		if err := b.Release(ctx(t), "floor", c.holder, c.token); err != nil {
			t.Fatalf("foreign release: %v", err)
		}
		wantHeld(t, b, "floor", "B", "A", ga.Token)
	}
	if err := a.Release(ctx(t), "floor", "A", ga.Token); err != nil {
		t.Fatal(err)
	}
	// Free at once, well before the minute-long TTL.
	gb := acquire(t, b, "floor", "B", time.Minute)
	if gb.Token <= ga.Token {
		t.Fatalf("token after hand-over = %d, want > %d", gb.Token, ga.Token)
	}
	// Releasing again, or A renewing, does not disturb B.
	if err := a.Release(ctx(t), "floor", "A", ga.Token); err != nil {
		t.Fatal(err)
	}
	if err := a.Renew(ctx(t), "floor", "A", ga.Token, time.Minute); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Renew after release: %v, want ErrLost", err)
	}
	wantHeld(t, a, "floor", "A", "B", gb.Token)
	// And A coming back after B gets a greater token again.
	if err := b.Release(ctx(t), "floor", "B", gb.Token); err != nil {
		t.Fatal(err)
	}
	if g := acquire(t, a, "floor", "A", time.Minute); g.Token <= gb.Token {
		t.Fatalf("token = %d, want > %d", g.Token, gb.Token)
	}
}

func runWaitRelease(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Peer(t, a)
	// Nothing released: it returns after the wait.
	if err := b.WaitRelease(ctx(t), "floor", 20*time.Millisecond); err != nil {
		t.Fatalf("WaitRelease timeout: %v", err)
	}
	// A release wakes a waiter long before its (hour-long) wait.
	ga := acquire(t, a, "floor", "A", time.Minute)
	woke := make(chan error, 1)
	wctx, cancel := context.WithCancel(ctx(t))
	defer cancel()
	go func() { woke <- b.WaitRelease(wctx, "floor", time.Hour) }()
	time.Sleep(50 * time.Millisecond) // let it block
	if err := a.Release(ctx(t), "floor", "A", ga.Token); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-woke:
		if err != nil {
			t.Fatalf("WaitRelease woken: %v", err)
		}
	case <-time.After(bound):
		t.Fatal("a release did not wake the waiter")
	}
	// ctx ends a wait.
	go func() { woke <- b.WaitRelease(wctx, "other", time.Hour) }()
	cancel()
	select {
	case err := <-woke:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("WaitRelease after cancel: %v", err)
		}
	case <-time.After(bound):
		t.Fatal("WaitRelease ignored its context")
	}
}

func runNames(t *testing.T, f Factory) {
	a := f.New(t)
	for _, name := range []string{"media:asterisk:callfloor", "media:sip:127.0.0.1:5060", "ünïcode lease", "{braces}"} {
		g := acquire(t, a, name, "A", time.Minute)
		wantHeld(t, a, name, "B", "A", g.Token)
		if err := a.Release(ctx(t), name, "A", g.Token); err != nil {
			t.Fatal(err)
		}
	}
}

// runExclusive runs three holders on one lease with a short TTL through
// several renewals: never two at work at once, and the token of a term
// grows whenever the holder changes (a holder that kept its grant through
// a slow renewal may go on with the same token; never a smaller one).
func runExclusive(t *testing.T, f Factory) {
	first := f.New(t)
	var (
		active  atomic.Int32
		mu      sync.Mutex
		tokens  []int64
		holders []string
		overlap atomic.Bool
	)
	work := func(ctx context.Context, term lease.Term) error {
		if active.Add(1) > 1 {
			overlap.Store(true)
		}
		mu.Lock()
		tokens, holders = append(tokens, term.Token), append(holders, term.Holder)
		mu.Unlock()
		// Work for a few renewals, then hand over.
		select {
		case <-ctx.Done():
		case <-time.After(250 * time.Millisecond):
		}
		active.Add(-1)
		return nil
	}
	rctx, cancel := context.WithCancel(ctx(t))
	var wg sync.WaitGroup
	for i, holder := range []string{"A", "B", "C"} {
		b := first
		if i > 0 {
			b = f.Peer(t, first)
		}
		l := lease.New(b, "floor", lease.WithHolder(holder), lease.WithTTL(150*time.Millisecond))
		wg.Add(1)
		go func() { defer wg.Done(); _ = l.Run(rctx, work) }()
	}
	eventually(t, "four terms", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(tokens) >= 4
	})
	cancel()
	wg.Wait()
	if overlap.Load() {
		t.Fatal("two holders worked at once")
	}
	mu.Lock()
	defer mu.Unlock()
	for i := 1; i < len(tokens); i++ {
		if tokens[i] < tokens[i-1] || holders[i] != holders[i-1] && tokens[i] == tokens[i-1] {
			t.Fatalf("terms %v with tokens %v: a new holder must get a greater token", holders, tokens)
		}
	}
}

// startHolder runs l with a work function that records its term and
// blocks until its context ends, recording the cause.
type holder struct {
	l       *lease.Lease
	cancel  context.CancelFunc
	done    chan struct{}
	terms   chan lease.Term
	endings chan error
}

func startHolder(t *testing.T, b lease.Backend, id string, ttl time.Duration) *holder {
	h := &holder{
		l:    lease.New(b, "floor", lease.WithHolder(id), lease.WithTTL(ttl)),
		done: make(chan struct{}), terms: make(chan lease.Term, 16), endings: make(chan error, 16),
	}
	var rctx context.Context
	rctx, h.cancel = context.WithCancel(context.Background())
	go func() {
		defer close(h.done)
		_ = h.l.Run(rctx, func(ctx context.Context, term lease.Term) error {
			h.terms <- term
			<-ctx.Done()
			h.endings <- context.Cause(ctx)
			return nil
		})
	}()
	t.Cleanup(h.stop)
	return h
}

func (h *holder) stop() { h.cancel(); <-h.done }

func (h *holder) term(t *testing.T, what string) lease.Term {
	t.Helper()
	select {
	case term := <-h.terms:
		return term
	case <-time.After(bound):
		t.Fatalf("%s: no term within %s", what, bound)
	}
	return lease.Term{}
}

// runHandOver: with a TTL far beyond the test's bound, the second holder
// can only start because the first one released on shutdown.
func runHandOver(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Peer(t, a)
	ha := startHolder(t, a, "A", time.Hour)
	ta := ha.term(t, "A")
	hb := startHolder(t, b, "B", time.Hour)
	time.Sleep(50 * time.Millisecond) // B is waiting
	select {
	case term := <-hb.terms:
		t.Fatalf("B started while A held the lease: %+v", term)
	default:
	}
	ha.stop()
	if err := <-ha.endings; !errors.Is(err, context.Canceled) {
		t.Fatalf("A's work ended with %v, want its shutdown", err)
	}
	tb := hb.term(t, "B after A's shutdown")
	if tb.Token <= ta.Token {
		t.Fatalf("B's token %d, want > A's %d", tb.Token, ta.Token)
	}
	if st := ha.l.Status(); st.Held || st.Lost != 0 || st.Acquired != 1 {
		t.Fatalf("A's status after hand-over: %+v", st)
	}
	if st := hb.l.Status(); !st.Held || st.Token != tb.Token {
		t.Fatalf("B's status: %+v", st)
	}
}

// runLoss: the grant disappears under the holder (as when a newer owner
// took it); the holder's work context ends with ErrLost at its next
// renewal, the status says so, and the holder contends again.
func runLoss(t *testing.T, f Factory) {
	a := f.New(t)
	b := f.Peer(t, a)
	ha := startHolder(t, a, "A", 300*time.Millisecond)
	ha.term(t, "A")
	// Pull A's grant from under it and take it, as a newer owner would.
	// A may win it back in between (it contends again at once), so
	// repeat until B holds it.
	var g lease.Grant
	eventually(t, "B takes the lease from under A", func() bool {
		if err := b.Release(ctx(t), "floor", "A", ha.l.Status().Token); err != nil {
			t.Fatal(err)
		}
		var err error
		g, err = b.TryAcquire(ctx(t), "floor", "B", time.Hour)
		return err == nil
	})
	select {
	case err := <-ha.endings:
		if !errors.Is(err, lease.ErrLost) {
			t.Fatalf("A's work ended with %v, want ErrLost", err)
		}
	case <-time.After(bound):
		t.Fatal("A never learnt it lost the lease")
	}
	eventually(t, "A's status shows the loss", func() bool {
		st := ha.l.Status()
		return !st.Held && st.Lost >= 1
	})
	if err := b.Release(ctx(t), "floor", "B", g.Token); err != nil {
		t.Fatal(err)
	}
	for {
		if t2 := ha.term(t, "A again after B released"); t2.Token > g.Token {
			break
		}
	}
}

// unreachable wraps a backend that stops answering, as a store does when
// it becomes unreachable.
type unreachable struct {
	lease.Backend
	down atomic.Bool
}

var errUnreachable = errors.New("leasetest: store unreachable")

func (u *unreachable) TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (lease.Grant, error) {
	if u.down.Load() {
		return lease.Grant{}, errUnreachable
	}
	return u.Backend.TryAcquire(ctx, name, holder, ttl)
}

func (u *unreachable) Renew(ctx context.Context, name, holder string, token int64, ttl time.Duration) error {
	if u.down.Load() {
		return errUnreachable
	}
	return u.Backend.Renew(ctx, name, holder, token, ttl)
}

func (u *unreachable) Release(ctx context.Context, name, holder string, token int64) error {
	if u.down.Load() {
		return errUnreachable
	}
	return u.Backend.Release(ctx, name, holder, token)
}

// runRenewalsFail: a holder whose store stops answering stops working
// once the TTL since its last successful renewal has run out (so before
// another replica can have taken over), says why, and another replica
// then takes the lease with a greater token.
func runRenewalsFail(t *testing.T, f Factory) {
	u := &unreachable{Backend: f.New(t)}
	ha := startHolder(t, u, "A", 200*time.Millisecond)
	ta := ha.term(t, "A")
	u.down.Store(true)
	select {
	case err := <-ha.endings:
		if !errors.Is(err, lease.ErrLost) {
			t.Fatalf("A's work ended with %v, want ErrLost", err)
		}
	case <-time.After(bound):
		t.Fatal("A kept working without renewals")
	}
	eventually(t, "A's status shows the loss", func() bool {
		st := ha.l.Status()
		return !st.Held && st.Lost == 1
	})
	b := f.Peer(t, u.Backend)
	var gb lease.Grant
	eventually(t, "B takes over", func() bool {
		g, err := b.TryAcquire(ctx(t), "floor", "B", time.Hour)
		gb = g
		return err == nil
	})
	if gb.Token <= ta.Token {
		t.Fatalf("B's token %d, want > A's %d", gb.Token, ta.Token)
	}
}
