package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// StatsSource computes the current stats as events to append: typically
// one floor-wide event (unscoped: admins) and one per group or queue
// (scoped, so Visible shows each supervisor only theirs). Type should be
// TypeStats.
type StatsSource interface {
	Snapshot(ctx context.Context) ([]state.NewEvent, error)
}

// Committer appends to the log; state.Store satisfies it.
type Committer interface {
	Commit(ctx context.Context, tx state.Tx) ([]state.Event, error)
}

// StatsPublisher recomputes stats when events that move them pass by and
// appends them as "stats" events at most once per interval, so a busy
// floor gives dashboards a few updates a second, not one per call event.
// Run one per floor, not per replica: callfloor runs it on the holder of
// the floor lease and commits with its fence (README.md, Running several
// replicas).
type StatsPublisher struct {
	hub      *Hub
	src      StatsSource
	out      Committer
	interval time.Duration
	triggers []string
	logger   *slog.Logger
}

// StatsOption configures a StatsPublisher.
type StatsOption func(*StatsPublisher)

// WithInterval sets the minimum spacing of stats publications (default 500 ms).
func WithInterval(d time.Duration) StatsOption {
	return func(p *StatsPublisher) { p.interval = max(d, time.Millisecond) }
}

// WithTriggers sets the event types that make stats stale (default agent,
// call, call_ended, queue).
func WithTriggers(types ...string) StatsOption {
	return func(p *StatsPublisher) { p.triggers = types }
}

// WithStatsLogger sets the logger.
func WithStatsLogger(l *slog.Logger) StatsOption { return func(p *StatsPublisher) { p.logger = l } }

// NewStatsPublisher publishes src's stats through out whenever hub carries
// a trigger event.
func NewStatsPublisher(hub *Hub, src StatsSource, out Committer, opts ...StatsOption) *StatsPublisher {
	p := &StatsPublisher{
		hub: hub, src: src, out: out, interval: 500 * time.Millisecond,
		triggers: []string{TypeAgent, TypeCall, TypeCallEnded, TypeQueue}, logger: slog.Default(),
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

// Run publishes until ctx ends or the hub stops.
func (p *StatsPublisher) Run(ctx context.Context) error {
	var (
		sub     *Subscriber
		dirty   bool
		lastPub time.Time
		timer   = time.NewTimer(time.Hour)
		due     <-chan time.Time
		items   []Item
	)
	timer.Stop()
	defer timer.Stop()
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for {
		if sub == nil {
			s, err := p.hub.Subscribe(ctx, Subscription{Actor: presence.System, Filter: Filter{Types: p.triggers}})
			if err != nil {
				return nil // ctx ended or the hub stopped
			}
			// Whatever happened while we were not subscribed may have moved the stats.
			sub, dirty = s, true
		}
		var subC <-chan struct{} = sub.C()
		if !dirty || due != nil {
			// keep listening
		} else if wait := p.interval - time.Since(lastPub); wait > 0 {
			timer.Reset(wait)
			due = timer.C
		} else {
			p.publish(ctx)
			dirty, lastPub = false, time.Now()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-due:
			due = nil
		case <-subC:
			var err error
			items, err = sub.Take(ctx, items[:0])
			if len(items) > 0 {
				dirty = true
			}
			switch {
			case errors.Is(err, ErrHubStopped):
				return nil
			case err != nil:
				// Cut off (slow or resync): resubscribe; the stats are
				// recomputed from the store, so nothing is lost.
				sub.Close()
				sub = nil
			}
		}
	}
}

func (p *StatsPublisher) publish(ctx context.Context) {
	if err := p.PublishNow(ctx); err != nil && ctx.Err() == nil {
		p.logger.Warn("stats publication failed", "err", err)
	}
}

// PublishNow computes and appends the stats events once.
func (p *StatsPublisher) PublishNow(ctx context.Context) error {
	evs, err := p.src.Snapshot(ctx)
	if err != nil {
		return fmt.Errorf("compute stats: %w", err)
	}
	if len(evs) == 0 {
		return nil
	}
	if _, err := p.out.Commit(ctx, state.Tx{Events: evs}); err != nil {
		return fmt.Errorf("append stats: %w", err)
	}
	return nil
}
