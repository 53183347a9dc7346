package routing

import (
	"context"
	"errors"
	"time"

	"github.com/callfloor/callfloor/media"
)

// DefaultMaxLoopDelay is how late the engine's loops may run before new
// calls are refused (WithMaxLoopDelay).
//
// Every fact, action and offer of a call runs on its call's loop, and
// each loop waits for its media commands' round trips. When the media
// server (or the host it shares with callfloor) cannot keep up, the work
// queued on the loops grows and every call's setup grows with it: at
// 200 calls/s on two cores shared with Asterisk, agents were rung 1.4 s
// after their callers arrived (docs/performance.md, "Back-pressure").
// Refusing new callers while the oldest queued work has waited longer
// than this keeps the calls already admitted at normal speed; the ones
// turned away hear a fast failure (503 on a SIP trunk) their carrier can
// reroute, instead of a slow answer.
const DefaultMaxLoopDelay = 250 * time.Millisecond

// ReasonOverload is the reason refusals for a late engine are counted
// under (Observer.CallRefused).
const ReasonOverload = "overload"

// WithMaxLoopDelay sets how late the loops may run before new calls are
// refused; 0 or less, the engine's default, never refuses (callfloor
// passes max_loop_delay_ms, DefaultMaxLoopDelay unless set).
func WithMaxLoopDelay(d time.Duration) Option { return func(e *Engine) { e.maxLoopDelay = d } }

// started reports how long one item waited on its loop.
func (e *Engine) started(queued time.Time) { e.obs.LoopDelay(time.Since(queued)) }

// lateness is how long the oldest item queued on the dispatcher or any
// call loop has waited (the refusal loop does not count: it is the cure).
// It is read at each arrival, not averaged, so an idle engine is never
// late and a backlog counts as soon as it forms.
func (e *Engine) lateness() time.Duration {
	oldest := e.dispatch.oldest()
	for _, l := range e.shards {
		if at := l.oldest(); !at.IsZero() && (oldest.IsZero() || at.Before(oldest)) {
			oldest = at
		}
	}
	if oldest.IsZero() {
		return 0
	}
	return time.Since(oldest)
}

// overloaded reports whether a new call should be refused now, and how
// late the engine is.
func (e *Engine) overloaded() (bool, time.Duration) {
	if e.maxLoopDelay <= 0 {
		return false, 0
	}
	late := e.lateness()
	return late > e.maxLoopDelay, late
}

// refuse turns a new caller away before any record exists: counted, logged
// at most every 10 s, and hung up with CauseFailed on the refusal loop,
// which no backlog delays. The leg is noted as hung up by routing, so a
// resync that still lists it does not adopt it.
func (e *Engine) refuse(f media.CallArrived, late time.Duration) {
	e.obs.CallRefused(ReasonOverload)
	if e.refusedLog.Allow(time.Now(), 10*time.Second) {
		e.log.Warn("refusing new calls: routing runs late", "late", late, "max", e.maxLoopDelay, "leg", f.Leg)
	}
	e.noteHungUp(f.Leg)
	e.push(e.refusals, func(ctx context.Context) {
		if err := e.mediaPath().Hangup(ctx, f.Leg, media.CauseFailed); err != nil && !errors.Is(err, media.ErrLegGone) {
			e.log.Warn("hang up refused call", "leg", f.Leg, "err", err)
		}
	})
}
