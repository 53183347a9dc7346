package routing

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/state"
)

// DefaultHeldFacts bounds the media facts held while the store is
// unreachable (README.md, Limits and outages).
const DefaultHeldFacts = 10000

// WithHeldFacts sets how many media facts are held, in order, while the
// store is unreachable (default DefaultHeldFacts).
func WithHeldFacts(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.held.max = n
		}
	}
}

// heldFacts keeps the media facts that could not be committed because
// the store was unreachable, in the order they were reported, and every
// fact reported after them (a call's later fact must not overtake an
// earlier one): once one fact is held, the rest queue behind it until the
// store answers and they are replayed through Report, in order. The bound
// protects memory in a long outage; past it the oldest fact a later one
// makes moot goes first (ringing, DTMF, a device's state), else the
// oldest — counted, logged and exported (Observer.FactDropped).
type heldFacts struct {
	mu      sync.Mutex
	facts   []media.Fact
	max     int
	waiting bool
	// wake tells the replayer a fact is held.
	wake chan struct{}
}

func newHeldFacts() *heldFacts {
	return &heldFacts{max: DefaultHeldFacts, wake: make(chan struct{}, 1)}
}

// holdable are the facts whose handling commits to the store and can be
// replayed as is.
func holdable(f media.Fact) bool {
	switch f.(type) {
	case media.CallArrived, media.LegRinging, media.LegAnswered, media.LegEnded, media.DeviceState, media.LegsPresent:
		return true
	}
	return false
}

// moot: a fact whose loss a later fact or the next resync repairs.
func moot(f media.Fact) bool {
	switch f.(type) {
	case media.LegRinging, media.DTMF, media.DeviceState:
		return true
	}
	return false
}

// holdLocked appends f, dropping one fact if the bound is reached.
// Called with h.mu held.
func (e *Engine) holdLocked(f media.Fact) {
	h := e.held
	if len(h.facts) >= h.max {
		drop := 0
		for i, g := range h.facts {
			if moot(g) {
				drop = i
				break
			}
		}
		lost := h.facts[drop]
		h.facts = append(h.facts[:drop], h.facts[drop+1:]...)
		e.log.Warn("store unreachable: held media facts over the bound; dropped one",
			"dropped", fmt.Sprintf("%T", lost), "bound", h.max)
		e.obs.FactDropped()
	}
	h.facts = append(h.facts, f)
	if !h.waiting {
		e.log.Warn("store unreachable: holding media facts until it answers", "bound", h.max)
	}
	h.waiting = true
	e.obs.FactsHeld(len(h.facts))
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// holdIfWaiting holds f instead of handling it while earlier facts wait
// for the store: handlers call it first, so a fact already queued on a
// call loop when the outage began does not overtake one held before it.
//
// undo, if not nil, runs first, under the queue's lock, so the replay
// never sees f before it ran (an arrival unbinds its leg).
func (e *Engine) holdIfWaiting(f media.Fact, undo func()) bool {
	h := e.held
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.waiting {
		return false
	}
	if undo != nil {
		undo()
	}
	e.holdLocked(f)
	return true
}

// holdOnOutage holds f if err says the store was unreachable (its
// handling committed nothing: a transaction only decides) and reports
// whether it did.
// undo is as for holdIfWaiting.
func (e *Engine) holdOnOutage(f media.Fact, err error, undo func()) bool {
	if !errors.Is(err, state.ErrUnavailable) {
		return false
	}
	h := e.held
	h.mu.Lock()
	if undo != nil {
		undo()
	}
	e.holdLocked(f)
	h.mu.Unlock()
	return true
}

// replayHeld waits for held facts, then for the store to answer, and
// reports them again in order. It runs for one engine run.
func (e *Engine) replayHeld(ctx context.Context) {
	h := e.held
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		}
		for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
			if err := e.st.Ping(ctx); err == nil {
				break
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
		// Facts already queued on a call loop when the outage began run
		// (and, still waiting, are held behind the earlier ones) before
		// the replay: none can run after it, out of order.
		if !e.barrier(ctx) {
			return
		}
		h.mu.Lock()
		facts := h.facts
		h.facts, h.waiting = nil, false
		// Under h.mu, so a fact reported meanwhile queues behind these.
		for _, f := range facts {
			e.dispatchFact(f)
		}
		e.obs.FactsHeld(0)
		h.mu.Unlock()
		if len(facts) > 0 {
			e.log.Info("store reachable again: replayed held media facts", "facts", len(facts))
		}
	}
}

// barrier waits until every call loop has run what was queued on it
// before; false if the run ended first.
func (e *Engine) barrier(ctx context.Context) bool {
	stopped := e.stoppedC()
	marks := make([]chan struct{}, len(e.shards))
	for i, l := range e.shards {
		marks[i] = make(chan struct{})
		e.push(l, func(context.Context) { close(marks[i]) })
	}
	for _, m := range marks {
		select {
		case <-m:
		case <-ctx.Done():
			return false
		case <-stopped:
			return false
		}
	}
	return true
}

// resetHeld empties the queue when a run starts: a new term resyncs with
// the media server, which repairs whatever an earlier term still held.
func (e *Engine) resetHeld() {
	h := e.held
	h.mu.Lock()
	if n := len(h.facts); n > 0 {
		e.log.Warn("a new term starts with media facts still held; the media server's resync replaces them", "facts", n)
	}
	h.facts, h.waiting = nil, false
	e.obs.FactsHeld(0)
	h.mu.Unlock()
	select {
	case <-h.wake:
	default:
	}
}

// HeldFacts reports how many media facts wait for the store.
func (e *Engine) HeldFacts() int {
	e.held.mu.Lock()
	defer e.held.mu.Unlock()
	return len(e.held.facts)
}
