package lease

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/callfloor/callfloor/internal/pause"
	"github.com/callfloor/callfloor/state"
)

// DefaultTTL is how long a grant lasts without renewal: the longest a
// floor goes without an owner when the owner dies without releasing.
const DefaultTTL = 5 * time.Second

// Lease is the holder side of one named lease on a Backend.
type Lease struct {
	b       Backend
	name    string
	holder  string
	ttl     time.Duration
	renew   time.Duration
	pause   time.Duration
	log     *slog.Logger
	observe func(Status)

	mu     sync.Mutex
	status Status
}

// Status is what a Lease is doing, for logs, metrics and tests.
type Status struct {
	Name   string
	Holder string
	// Held is true while this replica holds the grant and runs its work.
	Held  bool
	Token int64 // of the current (or last) grant
	// Since is when Held last changed.
	Since time.Time
	// Acquired counts grants taken; Lost counts grants lost without
	// being released (expired, taken over, unreachable store).
	Acquired, Lost int64
}

// Term is one uninterrupted holding of a lease.
type Term struct {
	Name   string
	Holder string
	Token  int64
}

// Fence is what store writes made for this term carry, so that they are
// refused once a newer owner exists.
func (t Term) Fence() state.Fence { return state.Fence{Lease: t.Name, Token: t.Token} }

// Option configures a Lease.
type Option func(*Lease)

// WithHolder names this replica (default: host name, process id and a
// random suffix, so a restarted process is a new holder).
func WithHolder(id string) Option {
	return func(l *Lease) {
		if id != "" {
			l.holder = id
		}
	}
}

// WithTTL sets the grant lifetime (default DefaultTTL). Renewal happens
// every third of it.
func WithTTL(ttl time.Duration) Option {
	return func(l *Lease) { l.ttl = max(ttl, 30*time.Millisecond) }
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(log *slog.Logger) Option {
	return func(l *Lease) {
		if log != nil {
			l.log = log
		}
	}
}

// WithObserver is called with the new Status after every change of
// holding (acquired, lost, released), e.g. to export it as a metric. It
// must not block.
func WithObserver(f func(Status)) Option { return func(l *Lease) { l.observe = f } }

// New returns the holder side of lease name on b.
func New(b Backend, name string, opts ...Option) *Lease {
	l := &Lease{b: b, name: name, holder: NewHolderID(), ttl: DefaultTTL, log: slog.Default()}
	for _, o := range opts {
		o(l)
	}
	l.renew = l.ttl / 3
	l.pause = l.ttl / 5
	l.status = Status{Name: name, Holder: l.holder, Since: time.Now()}
	return l
}

// NewHolderID returns a holder id for this process: host name, process id
// and a random suffix, so a restarted process is a new holder. A replica
// uses one for all its leases.
func NewHolderID() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Name is the lease name.
func (l *Lease) Name() string { return l.name }

// Holder is this replica's holder id.
func (l *Lease) Holder() string { return l.holder }

// TTL is the grant lifetime.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Status returns the current status.
func (l *Lease) Status() Status {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.status
}

func (l *Lease) setHeld(held bool, token int64, lost bool) {
	l.mu.Lock()
	st := &l.status
	st.Held, st.Since = held, time.Now()
	if held {
		st.Token = token
		st.Acquired++
	}
	if lost {
		st.Lost++
	}
	snap := *st
	l.mu.Unlock()
	if l.observe != nil {
		l.observe(snap)
	}
}

// Run waits for the lease and runs work while it holds it, as many terms
// as it takes, until ctx ends. work's context ends the moment the grant is
// lost (its cause wraps ErrLost) or ctx ends; work should then stop acting
// at once and return. When ctx ends Run waits for work to return and
// releases the grant, so the next owner takes over without waiting out the
// TTL. If work returns by itself the grant is released too, and Run
// contends again after a pause (another replica may do better).
func (l *Lease) Run(ctx context.Context, work func(ctx context.Context, t Term) error) error {
	for {
		g, start, err := l.acquire(ctx)
		if err != nil {
			return nil // ctx ended
		}
		l.term(ctx, g, start, work)
		if ctx.Err() != nil {
			return nil
		}
	}
}

// acquire waits until the lease is granted (or ctx ends). start is when
// the successful request was sent: the grant is safe to use until
// start+TTL, whatever the network delay.
func (l *Lease) acquire(ctx context.Context) (Grant, time.Time, error) {
	for {
		start := time.Now()
		g, err := l.b.TryAcquire(ctx, l.name, l.holder, l.ttl)
		if err == nil {
			return g, start, nil
		}
		if ctx.Err() != nil {
			return Grant{}, start, ctx.Err()
		}
		wait := l.pause
		if errors.Is(err, ErrHeld) {
			// Wake when the holder's grant would run out, or earlier
			// when it is released.
			wait = min(max(g.TTL, 10*time.Millisecond), l.ttl)
		} else {
			l.log.Warn("lease: cannot contend", "lease", l.name, "err", err)
		}
		if err := l.b.WaitRelease(ctx, l.name, wait); err != nil {
			if ctx.Err() != nil {
				return Grant{}, start, ctx.Err()
			}
			pause.For(ctx, wait)
		}
	}
}

// term runs work for one grant and keeps renewing it.
func (l *Lease) term(ctx context.Context, g Grant, start time.Time, work func(ctx context.Context, t Term) error) {
	t := Term{Name: l.name, Holder: l.holder, Token: g.Token}
	l.log.Info("lease acquired", "lease", l.name, "holder", l.holder, "token", g.Token)
	l.setHeld(true, g.Token, false)
	workCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	done := make(chan error, 1)
	go func() { done <- work(workCtx, t) }()

	valid := start.Add(l.ttl) // the grant is provably ours until then
	renewT := time.NewTimer(l.renew)
	defer renewT.Stop()
	expiry := time.NewTimer(time.Until(valid))
	defer expiry.Stop()
	var (
		lost     error
		lastErr  error
		finished bool
		workErr  error
	)
loop:
	for {
		select {
		case workErr = <-done:
			finished = true
			break loop
		case <-ctx.Done():
			break loop
		case <-expiry.C:
			lost = fmt.Errorf("%w: not renewed within %s (last error: %v)", ErrLost, l.ttl, lastErr)
			break loop
		case <-renewT.C:
			sent := time.Now()
			rctx, rcancel := context.WithDeadline(ctx, valid)
			err := l.b.Renew(rctx, l.name, l.holder, g.Token, l.ttl)
			rcancel()
			switch {
			case err == nil:
				valid = sent.Add(l.ttl)
				expiry.Reset(time.Until(valid))
				renewT.Reset(l.renew)
				lastErr = nil
			case errors.Is(err, ErrLost):
				lost = err
				break loop
			case ctx.Err() != nil:
				break loop
			default:
				// The store is slow or unreachable: retry soon; the expiry
				// timer stops the work if no renewal gets through in time.
				lastErr = err
				l.log.Warn("lease: renewal failed, retrying", "lease", l.name, "err", err)
				renewT.Reset(max(l.renew/4, time.Millisecond))
			}
		}
	}
	if lost != nil {
		cancel(lost)
		l.log.Warn("lease lost: stopped acting for it", "lease", l.name, "holder", l.holder, "token", g.Token, "err", lost)
	} else {
		cancel(nil)
	}
	if !finished {
		workErr = <-done
	}
	if lost != nil {
		// Give up what may be left of the grant (it may still exist when
		// only the renewals failed), so the next term gets a new token.
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), l.renew)
		_ = l.b.Release(rctx, l.name, l.holder, g.Token)
		rcancel()
		l.setHeld(false, g.Token, true)
		return
	}
	if finished && ctx.Err() == nil && workErr != nil {
		l.log.Warn("lease: work stopped, handing the lease over", "lease", l.name, "err", workErr)
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), max(l.ttl, time.Second))
	if err := l.b.Release(rctx, l.name, l.holder, g.Token); err != nil {
		l.log.Warn("lease: release failed (it expires by itself)", "lease", l.name, "err", err)
	}
	rcancel()
	l.setHeld(false, g.Token, false)
	l.log.Info("lease released", "lease", l.name, "holder", l.holder, "token", g.Token)
	if finished && ctx.Err() == nil {
		pause.For(ctx, l.pause)
	}
}
