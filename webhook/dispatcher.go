package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/state"
)

// LeaseName is the lease whose holder delivers webhooks.
const LeaseName = "webhooks"

// Dispatcher tails the event log and delivers events to the registered
// webhooks. Run it on every replica: only the holder of its lease delivers.
type Dispatcher struct {
	store  state.Store
	log    state.Log
	lease  *lease.Lease
	client *http.Client
	logger *slog.Logger
	now    func() time.Time
	obs    Observer

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

// WithClock replaces time.Now for timestamps in the delivery log.
func WithClock(now func() time.Time) Option { return func(d *Dispatcher) { d.now = now } }

// NewDispatcher returns a dispatcher over the store and its log that
// delivers while it holds l (a lease named LeaseName on the same store):
// its cursor writes carry l's fencing token, so a replica that lost the
// lease cannot move a cursor.
func NewDispatcher(store state.Store, log state.Log, l *lease.Lease, opts ...Option) *Dispatcher {
	d := &Dispatcher{
		store: store, log: log, lease: l, logger: slog.Default(), now: time.Now, obs: nopObserver{},
		client: &http.Client{
			Timeout: 10 * time.Second,
			// Deliveries go only where an admin pointed them: a redirect
			// is answered as a failed attempt, never followed.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		flushEvery: 200 * time.Millisecond, readWait: time.Second,
		batch: 256, maxPending: 10000, concurrency: 8,
		backoffBase: time.Second, backoffMax: 5 * time.Minute, maxAttempts: 10,
	}
	for _, o := range opts {
		o(d)
	}
	return d
}

// cursorID is the meta record holding the dispatcher's cursors.
const cursorID = "webhook-dispatcher"

type cursorRecord struct {
	// Cursors holds, per webhook, the position up to which every event
	// is finished. Each webhook has its own, so a receiver that is down
	// holds back only its own deliveries.
	Cursors map[string]string `json:"cursors"`
	// Token is the lease term that wrote it (for operators).
	Token int64 `json:"token"`
}

var errLostLease = errors.New("webhook: dispatcher lease lost")

// Run dispatches until ctx ends: it waits for the lease, delivers while
// it holds it, and on shutdown persists its progress and hands the lease
// over. It returns after every goroutine it started has stopped.
func (d *Dispatcher) Run(ctx context.Context) error {
	return d.lease.Run(ctx, func(ctx context.Context, term lease.Term) error {
		d.logger.Info("webhook dispatcher leading", "holder", term.Holder, "token", term.Token)
		err := d.lead(ctx, term)
		if ctx.Err() == nil {
			d.logger.Warn("webhook dispatcher stopped leading", "holder", term.Holder, "err", err)
		}
		return err
	})
}

// loadCursors reads the cursors the previous leaders left.
func (d *Dispatcher) loadCursors(ctx context.Context) (map[string]string, error) {
	var rec cursorRecord
	rr, err := d.store.Get(ctx, state.KindMeta, cursorID)
	switch {
	case errors.Is(err, state.ErrNotFound):
	case err != nil:
		return nil, fmt.Errorf("read cursors: %w", err)
	default:
		if err := json.Unmarshal(rr.Data, &rec); err != nil {
			return nil, fmt.Errorf("decode cursors: %w", err)
		}
	}
	if rec.Cursors == nil {
		rec.Cursors = map[string]string{}
	}
	return rec.Cursors, nil
}

// lead runs one leadership term until ctx ends or the lease is lost.
func (d *Dispatcher) lead(ctx context.Context, term lease.Term) error {
	cursors, err := d.loadCursors(ctx)
	if err != nil {
		return err
	}
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s := d.newSession(term, cursors)
	tick := time.NewTicker(d.flushEvery)
	defer tick.Stop()
	var lost error
	// The first persist records the term (and proves the fence admits it).
	force := true
	for lost == nil && sctx.Err() == nil {
		// Follow registrations: start pipes for new hooks, stop deleted ones.
		if err := s.sync(sctx); err != nil && sctx.Err() == nil {
			d.logger.Warn("webhook dispatcher hooks", "err", err)
		}
		if err := s.persist(sctx, force); errors.Is(err, errLostLease) {
			lost = err
		} else if err != nil && sctx.Err() == nil {
			d.logger.Warn("webhook dispatcher persist", "err", err)
		} else if err == nil {
			force = false
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
	// Shutting down or lease lost: save progress while the fence still
	// admits it (a newer owner's fence refuses it, which is right).
	fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer fcancel()
	if err := s.persist(fctx, true); err != nil && !errors.Is(err, errLostLease) {
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
