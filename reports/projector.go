package reports

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callfloor/callfloor/internal/pause"
	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/state"
)

// Observer is told what the projector does, for metrics. Implementations
// must not block.
type Observer interface {
	// Applied: n events were projected.
	Applied(n int)
	// Gap: the log was trimmed past the projector's position; the events
	// between were never projected.
	Gap()
}

type noObserver struct{}

func (noObserver) Applied(int) {}
func (noObserver) Gap()        {}

// Projector tails the store's event log and projects it into the reports
// database. Only one may run per floor: run it under a lease (see Run).
type Projector struct {
	db       *DB
	store    state.Store
	log      state.Log
	logger   *slog.Logger
	observer Observer
	now      func() time.Time
	batch    int
	wait     time.Duration
	linger   time.Duration

	gaps    atomic.Int64
	leading atomic.Bool
	mu      sync.Mutex
	caught  chan struct{} // closed and replaced each time the projector reaches the log's end
}

// ProjectorOption configures a Projector.
type ProjectorOption func(*Projector)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) ProjectorOption { return func(p *Projector) { p.logger = l } }

// WithObserver injects the metrics observer.
func WithObserver(o Observer) ProjectorOption { return func(p *Projector) { p.observer = o } }

// WithBatch sets how many events one SQL transaction applies at most
// (default 500).
func WithBatch(n int) ProjectorOption { return func(p *Projector) { p.batch = max(n, 1) } }

// WithReadWait sets how long one blocking log read waits (default 1 s).
func WithReadWait(d time.Duration) ProjectorOption {
	return func(p *Projector) { p.wait = max(d, time.Millisecond) }
}

// WithLinger sets how long the projector waits after applying less than
// a full batch before it reads again (default 200 ms), so a live floor's
// events go into SQL tens of calls per transaction rather than one or two:
// a transaction's begin and commit cost as much as several rows. Reports
// are that much later than the event stream; 0 reads again at once.
func WithLinger(d time.Duration) ProjectorOption { return func(p *Projector) { p.linger = max(d, 0) } }

// WithClock replaces time.Now (cursor bookkeeping, gap times).
func WithClock(now func() time.Time) ProjectorOption { return func(p *Projector) { p.now = now } }

// NewProjector returns a projector from the store's log into db.
func NewProjector(db *DB, store state.Store, log state.Log, opts ...ProjectorOption) *Projector {
	p := &Projector{db: db, store: store, log: log, logger: slog.Default(), observer: noObserver{},
		now: time.Now, batch: 500, wait: time.Second, linger: 200 * time.Millisecond, caught: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	return p
}

// GapsSeen is how many gaps this process's projector has met (a metric;
// the database keeps the total, see DB.Cursor).
func (p *Projector) GapsSeen() int64 { return p.gaps.Load() }

// Leading reports whether this replica's projector is running.
func (p *Projector) Leading() bool { return p.leading.Load() }

// CaughtUp returns a channel closed the next time the projector has
// applied everything the log holds (tests and readiness wait on it).
func (p *Projector) CaughtUp() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.caught
}

func (p *Projector) signalCaughtUp() {
	p.mu.Lock()
	close(p.caught)
	p.caught = make(chan struct{})
	p.mu.Unlock()
}

// LeaseName is the lease one replica holds to run the projector.
const LeaseName = "reports-projector"

// epochID is the meta record naming the current log (see epoch).
const epochID = "reports-log-epoch"

// Lease runs work while this replica holds a floor-wide lease and cancels
// it when the lease is lost (lease.Lease.Run fits through an adapter).
type Lease func(ctx context.Context, work func(ctx context.Context) error) error

// Run projects while this replica holds the lease, until ctx ends. The
// lease makes one projector the norm; the cursor's compare-and-set keeps
// the rows exact even if two ever overlap (ErrMoved ends the loser's term).
func (p *Projector) Run(ctx context.Context, l Lease) error {
	return l(ctx, func(ctx context.Context) error {
		p.leading.Store(true)
		defer p.leading.Store(false)
		err := p.Project(ctx)
		if err != nil && ctx.Err() == nil {
			p.logger.Warn("reports projector stopped", "err", err)
		}
		return err
	})
}

// epoch names the log the store holds now. The record is created once per
// log: the in-memory store starts a new log (and a new epoch) with every
// process, Redis keeps both. A cursor from another epoch is meaningless.
func (p *Projector) epoch(ctx context.Context) (string, error) {
	for {
		rr, err := p.store.Get(ctx, state.KindMeta, epochID)
		if err == nil {
			return string(rr.Data), nil
		}
		if !errors.Is(err, state.ErrNotFound) {
			return "", fmt.Errorf("read log epoch: %w", err)
		}
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		_, err = p.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindMeta, ID: epochID, Data: []byte(hex.EncodeToString(b)), IfVersion: state.MustNotExist}}})
		if err != nil && !errors.Is(err, state.ErrConflict) {
			return "", fmt.Errorf("create log epoch: %w", err)
		}
	}
}

// Project applies the log until ctx ends (or another projector moved the
// cursor: ErrMoved). Callers make sure one runs per floor (Run).
func (p *Projector) Project(ctx context.Context) error {
	// Another replica may have projected since this one last did: what
	// this DB remembers of its own writes is no longer known to hold.
	p.db.memo.forget()
	epoch, err := p.epoch(ctx)
	if err != nil {
		return err
	}
	cur, err := p.db.Cursor(ctx)
	if err != nil {
		return err
	}
	pos := cur.Position
	if cur.LogEpoch != epoch {
		if cur.LogEpoch != "" {
			p.logger.Info("reports: the store holds a new event log; projecting it from its start", "previous_epoch", cur.LogEpoch, "epoch", epoch)
		}
		if err := p.db.ResetEpoch(ctx, pos, epoch, p.now()); err != nil {
			return err
		}
		pos = ""
	}
	for ctx.Err() == nil {
		evs, err := p.log.ReadAfter(ctx, pos, p.batch, p.wait)
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.Is(err, state.ErrTrimmed) || errors.Is(err, state.ErrBadPosition):
			// Never skipped silently: logged, counted, stored (GET
			// /v1/reports/status), then the projection goes on from the
			// oldest event the log still holds.
			p.logger.Error("reports projector missed events: the log was trimmed past its position; their rows are missing",
				"position", pos, "err", err)
			if err := p.db.RecordGap(ctx, pos, "", epoch, err.Error(), p.now()); err != nil {
				return fmt.Errorf("record gap: %w", err)
			}
			p.gaps.Add(1)
			p.observer.Gap()
			pos = ""
			continue
		case err != nil:
			p.logger.Warn("reports projector: read log", "err", err)
			pause.For(ctx, time.Second)
			continue
		}
		if len(evs) == 0 {
			p.signalCaughtUp()
			continue
		}
		if err := p.db.Apply(ctx, pos, epoch, evs, p.now()); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if errors.Is(err, ErrMoved) {
				return err
			}
			p.logger.Error("reports projector: apply", "from", pos, "err", err)
			pause.For(ctx, time.Second)
			continue
		}
		pos = evs[len(evs)-1].ID
		p.observer.Applied(len(evs))
		if len(evs) < p.batch {
			p.signalCaughtUp()
			if p.linger > 0 {
				pause.For(ctx, p.linger)
			}
		}
	}
	return nil
}

// UnderLease runs the projector under a lease.Lease (a store-backed grant
// with a fencing token; README.md, Running several replicas).
func UnderLease(l *lease.Lease) Lease {
	return func(ctx context.Context, work func(ctx context.Context) error) error {
		return l.Run(ctx, func(ctx context.Context, _ lease.Term) error { return work(ctx) })
	}
}
