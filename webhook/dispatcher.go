package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/callfloor/callfloor/state"
)

// Dispatcher tails the event log and delivers events to the registered
// webhooks. Run it on every replica: one at a time holds the lease.
type Dispatcher struct {
	store  state.Store
	log    state.Log
	owner  string
	client *http.Client
	logger *slog.Logger
	now    func() time.Time
	obs    Observer

	leaseTTL    time.Duration
	flushEvery  time.Duration
	readWait    time.Duration
	batch       int
	maxPending  int
	concurrency int
	backoffBase time.Duration
	backoffMax  time.Duration
	maxAttempts int
}

// Option configures a Dispatcher.
type Option func(*Dispatcher)

// WithLogger sets the logger (default slog.Default()). Secrets and bodies
// are never logged.
func WithLogger(l *slog.Logger) Option { return func(d *Dispatcher) { d.logger = l } }

// WithTimeout bounds each delivery request (default 10 s).
func WithTimeout(t time.Duration) Option { return func(d *Dispatcher) { d.client.Timeout = t } }

// WithBackoff sets the first retry delay and the cap of the doubling
// delays (default 1 s, 5 min).
func WithBackoff(base, maxDelay time.Duration) Option {
	return func(d *Dispatcher) { d.backoffBase, d.backoffMax = max(base, time.Millisecond), max(maxDelay, base) }
}

// WithMaxAttempts sets how many attempts a delivery gets before it is
// marked failed and the resource moves on (default 10).
func WithMaxAttempts(n int) Option { return func(d *Dispatcher) { d.maxAttempts = max(n, 1) } }

// WithLeaseTTL sets how long the dispatcher lease lasts without renewal
// (default 15 s): the failover time when a leader dies.
func WithLeaseTTL(t time.Duration) Option {
	return func(d *Dispatcher) { d.leaseTTL = max(t, 10*time.Millisecond) }
}

// WithFlushInterval sets how often the cursor and delivery states are
// persisted (default 200 ms).
func WithFlushInterval(t time.Duration) Option {
	return func(d *Dispatcher) { d.flushEvery = max(t, time.Millisecond) }
}

// WithMaxPending bounds how many read-but-unfinished events each webhook
// holds in memory before its reader waits (default 10000).
func WithMaxPending(n int) Option { return func(d *Dispatcher) { d.maxPending = max(n, 1) } }

// WithConcurrency bounds simultaneous requests (default 8).
func WithConcurrency(n int) Option { return func(d *Dispatcher) { d.concurrency = max(n, 1) } }

// WithOwner names this replica in the lease (default random).
func WithOwner(id string) Option { return func(d *Dispatcher) { d.owner = id } }

// WithClock replaces time.Now for timestamps in the delivery log.
func WithClock(now func() time.Time) Option { return func(d *Dispatcher) { d.now = now } }

// NewDispatcher returns a dispatcher over the store and its log.
func NewDispatcher(store state.Store, log state.Log, opts ...Option) *Dispatcher {
	owner := make([]byte, 8)
	_, _ = rand.Read(owner)
	d := &Dispatcher{
		store: store, log: log, owner: hex.EncodeToString(owner), logger: slog.Default(), now: time.Now, obs: nopObserver{},
		client: &http.Client{
			Timeout: 10 * time.Second,
			// Deliveries go only where an admin pointed them: a redirect
			// is answered as a failed attempt, never followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		leaseTTL: 15 * time.Second, flushEvery: 200 * time.Millisecond, readWait: time.Second,
		batch: 256, maxPending: 10000, concurrency: 8,
		backoffBase: time.Second, backoffMax: 5 * time.Minute, maxAttempts: 10,
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

// cursorID is the meta record holding the dispatcher's lease and cursors.
const cursorID = "webhook-dispatcher"

type cursorRecord struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
	// Cursors holds, per webhook, the position up to which every event
	// is finished. Each webhook has its own, so a receiver that is down
	// holds back only its own deliveries.
	Cursors map[string]string `json:"cursors"`
}

var errLostLease = errors.New("webhook: dispatcher lease lost")

// Run dispatches until ctx ends: it waits for the lease, delivers while
// it holds it, and on shutdown persists its progress and releases the
// lease. It returns after every goroutine it started has stopped.
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		version, cursors, err := d.acquire(ctx)
		if err != nil {
			return nil // ctx ended
		}
		d.logger.Info("webhook dispatcher leading", "owner", d.owner)
		err = d.lead(ctx, version, cursors)
		if ctx.Err() != nil {
			return nil
		}
		d.logger.Warn("webhook dispatcher stopped leading", "owner", d.owner, "err", err)
	}
}

// acquire waits for the lease: free, expired, or already ours.
func (d *Dispatcher) acquire(ctx context.Context) (int64, map[string]string, error) {
	for {
		version, cursors, err := d.tryAcquire(ctx)
		if err == nil {
			return version, cursors, nil
		}
		if !errors.Is(err, errLostLease) && ctx.Err() == nil {
			d.logger.Warn("webhook lease", "err", err)
		}
		t := time.NewTimer(d.leaseTTL / 3)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (d *Dispatcher) tryAcquire(ctx context.Context) (int64, map[string]string, error) {
	now := d.now()
	ifVersion := state.MustNotExist
	var rec cursorRecord
	rr, err := d.store.Get(ctx, state.KindMeta, cursorID)
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return 0, nil, fmt.Errorf("read lease: %w", err)
	default:
		if err := json.Unmarshal(rr.Data, &rec); err != nil {
			return 0, nil, fmt.Errorf("decode lease: %w", err)
		}
		if rec.Owner != d.owner && now.Before(rec.Until) {
			return 0, nil, errLostLease
		}
		ifVersion = rr.Version
	}
	if rec.Cursors == nil {
		rec.Cursors = map[string]string{}
	}
	rec.Owner, rec.Until = d.owner, now.Add(d.leaseTTL)
	data, _ := json.Marshal(rec)
	_, err = d.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindMeta, ID: cursorID, Data: data, IfVersion: ifVersion}}})
	if errors.Is(err, state.ErrConflict) {
		return 0, nil, errLostLease
	}
	if err != nil {
		return 0, nil, fmt.Errorf("take lease: %w", err)
	}
	if ifVersion == state.MustNotExist {
		return 1, rec.Cursors, nil
	}
	return ifVersion + 1, rec.Cursors, nil
}

// lead runs one leadership session until ctx ends or the lease is lost.
func (d *Dispatcher) lead(ctx context.Context, version int64, cursors map[string]string) error {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := d.newSession(version, cursors)
	tick := time.NewTicker(d.flushEvery)
	defer tick.Stop()
	var lost error
	for lost == nil && sctx.Err() == nil {
		// Follow registrations: start pipes for new hooks, stop deleted ones.
		if err := s.sync(sctx); err != nil && sctx.Err() == nil {
			d.logger.Warn("webhook dispatcher hooks", "err", err)
		}
		if err := s.persist(sctx, false); errors.Is(err, errLostLease) {
			lost = err
		} else if err != nil && sctx.Err() == nil {
			d.logger.Warn("webhook dispatcher persist", "err", err)
		}
		select {
		case <-sctx.Done():
		case <-tick.C:
		}
	}
	cancel()
	s.stopAll()
	if lost != nil {
		return lost
	}
	// Shutting down: save progress and hand the lease over at once.
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer fcancel()
	if err := s.persist(fctx, true); err != nil {
		d.logger.Warn("webhook dispatcher final persist", "err", err)
	}
	return nil
}

// backoff is the delay after the n-th failed attempt: base·2^(n-1), capped.
func (d *Dispatcher) backoff(n int) time.Duration {
	delay := d.backoffBase
	for i := 1; i < n && delay < d.backoffMax; i++ {
		delay *= 2
	}
	return min(delay, d.backoffMax)
}
