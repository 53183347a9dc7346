package stream

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// Subscription says what a subscriber wants.
type Subscription struct {
	Actor  presence.Actor // visibility
	Filter Filter
	// After is the last event id the client received (SSE Last-Event-ID);
	// "" starts live from now.
	After string
}

// Item is one thing to send: an event, or a reset telling the client its
// position was trimmed and it must reload before trusting further events.
// A reset's Event carries only ID: the position the stream continues
// from ("" when the log was empty), which the client resumes from next.
type Item struct {
	Event state.Event
	Reset bool
	// shared is the hub's entry of a live event (nil for catch-up reads
	// and resets): its frame is encoded once for every subscriber.
	shared *entry
}

// entry is one event the hub fanned out, shared by every subscriber that
// queues it.
type entry struct {
	ev    state.Event
	once  sync.Once
	frame []byte
}

// Frame returns encode(&it.Event). For a live event it is computed once,
// by the first consumer that asks, and the same bytes are returned to
// every other subscriber: all consumers calling Frame must pass the same
// encode (the SSE endpoint does), and must not modify the result. This
// removes the per-client encoding from the fan-out (docs/performance.md).
func (it *Item) Frame(encode func(*state.Event) []byte) []byte {
	if it.shared == nil {
		return encode(&it.Event)
	}
	e := it.shared
	e.once.Do(func() { e.frame = encode(&e.ev) })
	return e.frame
}

// Subscriber receives the events its Subscription selects. One goroutine
// consumes it (Take / Next); the hub feeds it concurrently.
type Subscriber struct {
	hub    *Hub
	actor  presence.Actor
	filter Filter
	notify chan struct{} // holds a token while Take may have something
	self   chan struct{} // holds a token after an event about the actor's own record

	// Catch-up state, set at Subscribe and then touched by the consumer
	// only (catching is also read by offer, under mu).
	cursor string // last position read during catch-up
	stopAt string // the hub position at Subscribe: catch-up ends there
	probed bool   // an empty catch-up read was already re-checked once

	mu       sync.Mutex
	catching bool
	// live holds events fanned out since Subscribe. While catching it is
	// raw (unfiltered, so the seam can be found by id); afterwards only
	// events this subscriber should get.
	live      []*entry
	skipUntil string // drop live events up to and including this id
	err       error  // why the hub cut us off
	last      string // last event id handed to the consumer
	closed    bool
}

func (s *Subscriber) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// SelfChanged receives a value when an event about the subscriber's own
// agent record passes through the hub, visible to it or not: its role or
// groups may have changed, so the consumer re-checks it (SetActor).
func (s *Subscriber) SelfChanged() <-chan struct{} { return s.self }

// SetActor narrows or widens what the subscriber receives from now on,
// and drops queued events the new actor may not see, so a narrower role
// takes effect at once. Only the consumer goroutine calls it.
func (s *Subscriber) SetActor(a presence.Actor) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.actor = a
	if s.catching {
		return // raw while catching; filtered when the catch-up ends
	}
	kept := s.live[:0]
	for i := range s.live {
		if s.wants(&s.live[i].ev) {
			kept = append(kept, s.live[i])
		}
	}
	clear(s.live[len(kept):])
	s.live = kept
}

// C receives a value whenever Take may return something new.
func (s *Subscriber) C() <-chan struct{} { return s.notify }

func (s *Subscriber) wants(e *state.Event) bool {
	return Visible(s.actor, e.Scope) && s.filter.Match(e)
}

// offer queues events from the hub (called with the hub lock held).
func (s *Subscriber) offer(evs []*entry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	added := false
	for _, en := range evs {
		e := &en.ev
		if e.Type == presence.EventAgent && e.Scope.Agent == s.actor.ID {
			select {
			case s.self <- struct{}{}:
			default:
			}
		}
		if !s.catching {
			if s.skipUntil != "" {
				if e.ID == s.skipUntil {
					s.skipUntil = ""
				}
				continue
			}
			if !s.wants(e) {
				continue
			}
		}
		if len(s.live) >= s.hub.maxLive {
			s.err = ErrSlowConsumer
			s.hub.obs.SlowConsumer()
			break
		}
		s.live = append(s.live, en)
		added = true
	}
	if added || s.err != nil {
		s.signal()
	}
}

// cut ends the subscription with reason once the queue is drained.
func (s *Subscriber) cut(reason error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = reason
	}
	s.signal()
}

// Take returns the items ready now, appended to dst (nil and no error when
// there are none: wait on C). While catching up it reads one batch from
// the log. Once the hub cut the subscriber off and its queue is drained,
// Take returns the reason (ErrSlowConsumer, ErrHubStopped, ErrResync).
func (s *Subscriber) Take(ctx context.Context, dst []Item) ([]Item, error) {
	s.mu.Lock()
	catching, cutErr := s.catching, s.err
	s.mu.Unlock()
	if catching {
		if cutErr != nil {
			return dst, cutErr
		}
		var err error
		if dst, err = s.catchUp(ctx, dst); err != nil {
			return dst, err
		}
		s.mu.Lock()
		catching = s.catching
		s.mu.Unlock()
		if catching {
			return dst, nil
		}
		// Caught up: what queued meanwhile follows in the same call.
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.live) == 0 {
		return dst, s.err
	}
	for _, e := range s.live {
		dst = append(dst, Item{Event: e.ev, shared: e})
	}
	s.hub.obs.Delivered(len(s.live))
	s.last = s.live[len(s.live)-1].ev.ID
	clear(s.live)
	s.live = s.live[:0]
	return dst, nil
}

// Next blocks until Take has something, ctx ends or the subscriber is cut off.
func (s *Subscriber) Next(ctx context.Context) ([]Item, error) {
	for {
		items, err := s.Take(ctx, nil)
		if len(items) > 0 || err != nil {
			return items, err
		}
		select {
		case <-s.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// catchUp reads the next batch of missed events from the log.
func (s *Subscriber) catchUp(ctx context.Context, dst []Item) ([]Item, error) {
	log := s.hub.log
	evs, err := log.ReadAfter(ctx, s.cursor, s.hub.batch, 0)
	switch {
	case errors.Is(err, state.ErrTrimmed) || errors.Is(err, state.ErrBadPosition):
		return s.reset(dst), nil
	case err != nil:
		return dst, fmt.Errorf("catch up from %s: %w", s.cursor, err)
	}
	if len(evs) == 0 {
		// Nothing after the cursor: either we are at the head of the log
		// (the client was ahead of this hub), or the position is one this
		// log never issued. Last tells them apart; a concurrent append
		// can make Last move on, so re-read once before deciding.
		last, err := log.Last(ctx)
		if err != nil {
			return dst, fmt.Errorf("catch up: %w", err)
		}
		switch {
		case last == s.cursor:
			s.finishCatchUp(s.cursor)
		case s.probed:
			return s.reset(dst), nil
		default:
			s.probed = true
		}
		s.signal()
		return dst, nil
	}
	s.probed = false
	done := false
	n := len(dst)
	defer func() { s.hub.obs.Delivered(len(dst) - n) }()
	for i := range evs {
		e := &evs[i]
		s.cursor = e.ID
		if s.wants(e) {
			dst = append(dst, Item{Event: *e})
			s.setLast(e.ID)
		}
		if e.ID == s.stopAt {
			done = true
			break
		}
	}
	if done {
		s.finishCatchUp("")
	}
	s.signal()
	return dst, nil
}

func (s *Subscriber) setLast(id string) {
	s.mu.Lock()
	s.last = id
	s.mu.Unlock()
}

// reset ends the catch-up with a Reset item: the client's position is
// gone, so it reloads and continues live from the hub's position.
func (s *Subscriber) reset(dst []Item) []Item {
	s.finishCatchUp("")
	s.signal()
	return append(dst, Item{Reset: true, Event: state.Event{ID: s.stopAt}})
}

// finishCatchUp switches to live delivery: the raw events queued during
// the catch-up are skipped up to skip (events the catch-up already sent)
// and filtered.
func (s *Subscriber) finishCatchUp(skip string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := s.live
	s.live = nil
	s.catching = false
	s.skipUntil = skip
	for _, en := range raw {
		e := &en.ev
		if s.skipUntil != "" {
			if e.ID == s.skipUntil {
				s.skipUntil = ""
			}
			continue
		}
		if s.wants(e) {
			s.live = append(s.live, en)
		}
	}
}

// Last returns the id of the last event handed to the consumer (the
// position a reconnect should resume from).
func (s *Subscriber) Last() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

// Close detaches the subscriber from the hub.
func (s *Subscriber) Close() {
	s.mu.Lock()
	already := s.closed
	s.closed = true
	s.mu.Unlock()
	if !already {
		s.hub.remove(s)
	}
}
