package reports

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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
// database. Run it on every replica: one at a time holds the lease (a
// compare-and-set meta record in the store) and projects; the others wait.
type Projector struct {
	db       *DB
	store    state.Store
	log      state.Log
	logger   *slog.Logger
	observer Observer
	owner    string
	now      func() time.Time
	leaseTTL time.Duration
	batch    int
	wait     time.Duration

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

// WithOwner names this replica in the lease (default random).
func WithOwner(id string) ProjectorOption { return func(p *Projector) { p.owner = id } }

// WithLeaseTTL sets how long the projector lease lasts without renewal
// (default 15 s): the failover time when the projecting replica dies.
func WithLeaseTTL(d time.Duration) ProjectorOption {
	return func(p *Projector) { p.leaseTTL = max(d, 10*time.Millisecond) }
}

// WithBatch sets how many events one SQL transaction applies at most
// (default 500).
func WithBatch(n int) ProjectorOption { return func(p *Projector) { p.batch = max(n, 1) } }

// WithReadWait sets how long one blocking log read waits (default 1 s).
func WithReadWait(d time.Duration) ProjectorOption {
	return func(p *Projector) { p.wait = max(d, time.Millisecond) }
}

// WithClock replaces time.Now (lease expiry, cursor bookkeeping).
func WithClock(now func() time.Time) ProjectorOption { return func(p *Projector) { p.now = now } }

// NewProjector returns a projector from the store's log into db.
func NewProjector(db *DB, store state.Store, log state.Log, opts ...ProjectorOption) *Projector {
	owner := make([]byte, 8)
	_, _ = rand.Read(owner)
	p := &Projector{db: db, store: store, log: log, logger: slog.Default(), observer: noObserver{},
		owner: hex.EncodeToString(owner), now: time.Now, leaseTTL: 15 * time.Second, batch: 500, wait: time.Second,
		caught: make(chan struct{})}
	for _, o := range opts {
		o(p)
	}
	return p
}

// GapsSeen is how many gaps this process's projector has met (a metric;
// the database keeps the total, see DB.Cursor).
func (p *Projector) GapsSeen() int64 { return p.gaps.Load() }

// Leading reports whether this replica holds the projector lease.
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

// leaseID is the meta record holding the projector lease; epochID the
// record naming the current log (see epoch).
const (
	leaseID = "reports-projector"
	epochID = "reports-log-epoch"
)

type leaseRecord struct {
	Owner string    `json:"owner"`
	Until time.Time `json:"until"`
}

var errLostLease = errors.New("reports: projector lease lost")

// Run projects until ctx ends: it waits for the lease, projects while it
// holds it, and releases it on the way out.
func (p *Projector) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		version, err := p.acquire(ctx)
		if err != nil {
			return nil // ctx ended
		}
		p.leading.Store(true)
		p.logger.Info("reports projector leading", "owner", p.owner)
		err = p.lead(ctx, version)
		p.leading.Store(false)
		if ctx.Err() != nil {
			return nil
		}
		p.logger.Warn("reports projector stopped leading", "owner", p.owner, "err", err)
		sleep(ctx, p.leaseTTL/3)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (p *Projector) acquire(ctx context.Context) (int64, error) {
	for {
		v, err := p.writeLease(ctx, -1, p.now().Add(p.leaseTTL))
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, errLostLease) && ctx.Err() == nil {
			p.logger.Warn("reports projector lease", "err", err)
		}
		if !sleep(ctx, p.leaseTTL/3) {
			return 0, ctx.Err()
		}
	}
}

// writeLease takes (version < 0: free, expired or ours) or renews (the
// version we hold) the lease, returning its new version.
func (p *Projector) writeLease(ctx context.Context, version int64, until time.Time) (int64, error) {
	ifVersion := version
	if version < 0 {
		rr, err := p.store.Get(ctx, state.KindMeta, leaseID)
		switch {
		case errors.Is(err, state.ErrNotFound):
			ifVersion = state.MustNotExist
		case err != nil:
			return 0, fmt.Errorf("read lease: %w", err)
		default:
			var rec leaseRecord
			if err := json.Unmarshal(rr.Data, &rec); err != nil {
				return 0, fmt.Errorf("decode lease: %w", err)
			}
			if rec.Owner != p.owner && p.now().Before(rec.Until) {
				return 0, errLostLease
			}
			ifVersion = rr.Version
		}
	}
	data, _ := json.Marshal(leaseRecord{Owner: p.owner, Until: until})
	_, err := p.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindMeta, ID: leaseID, Data: data, IfVersion: ifVersion}}})
	if errors.Is(err, state.ErrConflict) {
		return 0, errLostLease
	}
	if err != nil {
		return 0, fmt.Errorf("write lease: %w", err)
	}
	return ifVersion + 1, nil // MustNotExist is 0: the new record is version 1
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

func (p *Projector) lead(ctx context.Context, version int64) error {
	defer func() {
		// Hand the lease over at once on the way out.
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_, _ = p.writeLease(fctx, version, p.now())
	}()
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
	renewAt := p.now().Add(p.leaseTTL / 3)
	for ctx.Err() == nil {
		if !p.now().Before(renewAt) {
			if version, err = p.writeLease(ctx, version, p.now().Add(p.leaseTTL)); err != nil {
				return err
			}
			renewAt = p.now().Add(p.leaseTTL / 3)
		}
		wait := min(p.wait, p.leaseTTL/3)
		evs, err := p.log.ReadAfter(ctx, pos, p.batch, wait)
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
			sleep(ctx, time.Second)
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
			sleep(ctx, time.Second)
			continue
		}
		pos = evs[len(evs)-1].ID
		p.observer.Applied(len(evs))
		if len(evs) < p.batch {
			p.signalCaughtUp()
		}
	}
	return nil
}
