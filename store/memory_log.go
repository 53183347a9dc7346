package store

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/callfloor/callfloor/state"
)

// ring is the bounded event log of the memory store. Event n (1-based,
// counting every event ever pushed) has position "n"; only the newest
// len(buf) events are kept.
type ring struct {
	buf   []state.Event
	start int    // index of the oldest retained event in buf
	n     int    // retained events
	last  uint64 // ordinal of the newest event ever pushed (0: none)
}

func newRing(capacity int) ring {
	return ring{buf: make([]state.Event, capacity)}
}

// push appends e, overwriting the oldest event when full, and returns it
// with its assigned ID.
func (r *ring) push(e state.Event) state.Event {
	r.last++
	e.ID = strconv.FormatUint(r.last, 10)
	if r.n < len(r.buf) {
		r.buf[(r.start+r.n)%len(r.buf)] = e
		r.n++
	} else {
		r.buf[r.start] = e
		r.start = (r.start + 1) % len(r.buf)
	}
	return e
}

// oldest is the ordinal of the oldest retained event (last+1 when empty).
func (r *ring) oldest() uint64 { return r.last - uint64(r.n) + 1 }

// at returns the retained event with ordinal seq.
func (r *ring) at(seq uint64) state.Event {
	return r.buf[(r.start+int(seq-r.oldest()))%len(r.buf)]
}

// parseMemoryPosition parses a position this log issues: a decimal ordinal.
func parseMemoryPosition(pos string) (uint64, error) {
	if pos == "" || len(pos) > 20 {
		return 0, fmt.Errorf("position %q: %w", pos, state.ErrBadPosition)
	}
	for i := 0; i < len(pos); i++ {
		if pos[i] < '0' || pos[i] > '9' {
			return 0, fmt.Errorf("position %q: %w", pos, state.ErrBadPosition)
		}
	}
	n, err := strconv.ParseUint(pos, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("position %q: %w", pos, state.ErrBadPosition)
	}
	return n, nil
}

// ReadAfter implements state.Log. A position newer than the newest event
// (left over from an earlier process, whose log this one does not have)
// is reported as state.ErrTrimmed: the reader must reload either way.
func (m *Memory) ReadAfter(ctx context.Context, after string, limit int, wait time.Duration) ([]state.Event, error) {
	var pos uint64
	if after != "" {
		p, err := parseMemoryPosition(after)
		if err != nil {
			return nil, err
		}
		pos = p
	}
	var deadline time.Time
	if wait > 0 {
		deadline = time.Now().Add(wait)
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		evs, changed, err := m.readNow(after == "", pos, limit)
		if err != nil || len(evs) > 0 || wait <= 0 {
			return evs, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return []state.Event{}, nil
		}
		if timer == nil {
			timer = time.NewTimer(left)
		} else {
			timer.Reset(left)
		}
		select {
		case <-changed:
		case <-timer.C:
			return []state.Event{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readNow returns the retained events after pos (or from the oldest when
// fromOldest) and the channel that will be closed on the next append.
func (m *Memory) readNow(fromOldest bool, pos uint64, limit int) ([]state.Event, <-chan struct{}, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, state.ErrClosed
	}
	first := m.log.oldest()
	if fromOldest {
		pos = first - 1
	}
	if pos > m.log.last {
		return nil, nil, fmt.Errorf("position %d is past the newest event %d: %w", pos, m.log.last, state.ErrTrimmed)
	}
	if pos+1 < first {
		return nil, nil, fmt.Errorf("position %d is before the oldest retained event %d: %w", pos, first, state.ErrTrimmed)
	}
	n := m.log.last - pos
	if limit > 0 && n > uint64(limit) {
		n = uint64(limit)
	}
	out := make([]state.Event, 0, n)
	for seq := pos + 1; seq <= pos+n; seq++ {
		out = append(out, copyEvent(m.log.at(seq)))
	}
	return out, m.changed, nil
}

// Last implements state.Log.
func (m *Memory) Last(ctx context.Context) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return "", state.ErrClosed
	}
	if m.log.last == 0 {
		return "", nil
	}
	return strconv.FormatUint(m.log.last, 10), nil
}
