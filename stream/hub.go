package stream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/callfloor/callfloor/internal/pause"
	"github.com/callfloor/callfloor/state"
)

// Reasons a subscriber is cut off. The consumer drains what was already
// queued, then gets one of these from Take.
var (
	// ErrSlowConsumer: the subscriber's queue overflowed; reconnect from
	// the last event id received.
	ErrSlowConsumer = errors.New("stream: slow consumer cut off")
	// ErrHubStopped: the hub is shutting down.
	ErrHubStopped = errors.New("stream: hub stopped")
	// ErrResync: the hub itself fell behind the log's retention and lost
	// its place; reconnecting yields a reset where events were missed.
	ErrResync = errors.New("stream: hub lost its log position")
)

// Hub tails one state.Log and fans events out to in-process subscribers.
// Create it with NewHub, start Run in a goroutine, then Subscribe.
type Hub struct {
	log     state.Log
	logger  *slog.Logger
	batch   int
	wait    time.Duration
	linger  time.Duration
	retry   time.Duration
	window  int
	maxLive int
	obs     Observer

	ready chan struct{}

	mu      sync.Mutex
	pos     string   // newest event fanned out ("" if none yet)
	recent  []*entry // the last `window` events fanned out, oldest first
	subs    map[*Subscriber]struct{}
	stopped bool
}

// HubOption configures a Hub.
type HubOption func(*Hub)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) HubOption { return func(h *Hub) { h.logger = l } }

// WithBatch sets how many events one log read returns at most (default 512).
func WithBatch(n int) HubOption { return func(h *Hub) { h.batch = max(n, 1) } }

// WithReadWait sets how long one blocking log read waits (default 5 s); a
// shorter wait only costs more idle reads.
func WithReadWait(d time.Duration) HubOption {
	return func(h *Hub) { h.wait = max(d, time.Millisecond) }
}

// WithWindow sets how many recent events the hub keeps so reconnecting
// subscribers resume without reading the log (default 1024).
func WithWindow(n int) HubOption { return func(h *Hub) { h.window = max(n, 0) } }

// WithSubscriberBuffer sets how many events may wait for one subscriber
// before it is cut off as slow (default 4096).
func WithSubscriberBuffer(n int) HubOption { return func(h *Hub) { h.maxLive = max(n, 1) } }

// WithLinger sets how long the hub pauses after a read that caught up
// with the log before it reads again (default 10 ms), so the events of a
// busy floor reach subscribers in batches of up to that age rather than
// one wake-up of the hub and of every subscriber per store commit (docs/
// performance.md, Wake-ups). An event after a quiet spell is still
// delivered at once: the pause only follows a delivery. 0 disables it.
func WithLinger(d time.Duration) HubOption { return func(h *Hub) { h.linger = max(d, 0) } }

// WithRetry sets the pause after a failed log read (default 500 ms).
func WithRetry(d time.Duration) HubOption { return func(h *Hub) { h.retry = max(d, time.Millisecond) } }

// NewHub returns a hub over log. Nothing runs until Run.
func NewHub(log state.Log, opts ...HubOption) *Hub {
	h := &Hub{
		log: log, logger: slog.Default(), batch: 512, wait: 5 * time.Second,
		linger: 10 * time.Millisecond, retry: 500 * time.Millisecond, window: 1024, maxLive: 4096,
		ready: make(chan struct{}), subs: make(map[*Subscriber]struct{}), obs: nopObserver{},
	}
	for _, o := range opts {
		o(h)
	}
	return h
}

// Run tails the log until ctx ends, then cuts every subscriber off with
// ErrHubStopped and returns. It is the hub's only goroutine.
func (h *Hub) Run(ctx context.Context) error {
	defer h.stop()
	pos, err := h.lastPosition(ctx)
	if err != nil {
		return nil // ctx ended before the log answered
	}
	h.mu.Lock()
	h.pos = pos
	h.mu.Unlock()
	close(h.ready)
	for {
		evs, err := h.log.ReadAfter(ctx, pos, h.batch, h.wait)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, state.ErrTrimmed) || errors.Is(err, state.ErrBadPosition):
			h.logger.Error("event hub fell behind the log; cutting subscribers off", "position", pos, "err", err)
			if pos, err = h.lastPosition(ctx); err != nil {
				return nil
			}
			h.resync(pos)
			continue
		case err != nil:
			h.logger.Warn("event log read failed; retrying", "err", err)
			if !pause.For(ctx, h.retry) {
				return nil
			}
			continue
		}
		if len(evs) > 0 {
			h.fanOut(evs)
			pos = evs[len(evs)-1].ID
		}
		if len(evs) > 0 && len(evs) < h.batch && h.linger > 0 && !pause.For(ctx, h.linger) {
			return nil
		}
	}
}

// lastPosition asks the log for its newest position, retrying until it
// answers or ctx ends.
func (h *Hub) lastPosition(ctx context.Context) (string, error) {
	for {
		pos, err := h.log.Last(ctx)
		if err == nil {
			return pos, nil
		}
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		h.logger.Warn("event log unavailable; retrying", "err", err)
		if !pause.For(ctx, h.retry) {
			return "", ctx.Err()
		}
	}
}

func (h *Hub) fanOut(evs []state.Event) {
	// One entry per event, shared by every subscriber that queues it, so
	// its SSE frame is encoded once (Item.Frame), not once per client.
	es := make([]*entry, len(evs))
	for i := range evs {
		es[i] = &entry{ev: evs[i]}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.window > 0 {
		h.recent = append(h.recent, es...)
		if over := len(h.recent) - h.window; over > 0 {
			// Shift down rather than reslice so the backing array stays bounded.
			n := copy(h.recent, h.recent[over:])
			clear(h.recent[n:])
			h.recent = h.recent[:n]
		}
	}
	h.pos = evs[len(evs)-1].ID
	for s := range h.subs {
		s.offer(es)
	}
}

// resync restarts the hub at pos after it lost its place: every current
// subscriber may have missed events, so each is cut off and will get a
// reset when it reconnects from its last id.
func (h *Hub) resync(pos string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.pos = pos
	clear(h.recent)
	h.recent = h.recent[:0]
	for s := range h.subs {
		s.cut(ErrResync)
		delete(h.subs, s)
	}
	h.obs.Subscribers(0)
}

func (h *Hub) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.stopped = true
	for s := range h.subs {
		s.cut(ErrHubStopped)
		delete(h.subs, s)
	}
	h.obs.Subscribers(0)
}

// Subscribers returns how many subscribers are attached (for metrics and tests).
func (h *Hub) Subscribers() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.subs)
}

// Backlog returns how many events wait in the subscribers' queues in all
// (benchmarks pace themselves on it: how far behind the consumers are).
func (h *Hub) Backlog() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for s := range h.subs {
		s.mu.Lock()
		n += len(s.live)
		s.mu.Unlock()
	}
	return n
}

// Position returns the newest position the hub has fanned out.
func (h *Hub) Position() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.pos
}

// Subscribe attaches a subscriber. It waits for Run to have found its
// starting position. Close the subscriber when done.
func (h *Hub) Subscribe(ctx context.Context, sub Subscription) (*Subscriber, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("subscribe: %w", ctx.Err())
	}
	s := &Subscriber{hub: h, actor: sub.Actor, filter: sub.Filter, notify: make(chan struct{}, 1), self: make(chan struct{}, 1), last: sub.After}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopped {
		return nil, ErrHubStopped
	}
	switch i := h.indexOf(sub.After); {
	case sub.After == "" || sub.After == h.pos:
		// Live from here.
	case i >= 0 && len(h.recent)-i-1 <= h.maxLive:
		// Resume from the window: the events after it are queued now,
		// under the hub lock, so the next fan-out continues seamlessly.
		s.offer(h.recent[i+1:])
	default:
		// Older than the window, too far back to queue at once, or from
		// another replica's future:
		// catch up from the log up to h.pos while live events queue.
		s.catching, s.cursor, s.stopAt = true, sub.After, h.pos
		s.signal()
	}
	h.subs[s] = struct{}{}
	h.obs.Subscribers(len(h.subs))
	return s, nil
}

func (h *Hub) indexOf(id string) int {
	for i := len(h.recent) - 1; i >= 0; i-- {
		if h.recent[i].ev.ID == id {
			return i
		}
	}
	return -1
}

func (h *Hub) remove(s *Subscriber) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.subs[s]; ok {
		delete(h.subs, s)
		h.obs.Subscribers(len(h.subs))
	}
}
