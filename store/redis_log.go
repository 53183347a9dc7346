package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/state"
)

// parseRedisPosition parses a stream ID this log issues, "n-0", into n.
func parseRedisPosition(pos string) (uint64, error) {
	num, ok := strings.CutSuffix(pos, "-0")
	if !ok || num == "" || len(num) > 20 {
		return 0, fmt.Errorf("position %q: %w", pos, state.ErrBadPosition)
	}
	for i := 0; i < len(num); i++ {
		if num[i] < '0' || num[i] > '9' {
			return 0, fmt.Errorf("position %q: %w", pos, state.ErrBadPosition)
		}
	}
	n, err := strconv.ParseUint(num, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("position %q: %w", pos, state.ErrBadPosition)
	}
	return n, nil
}

func redisPosition(n uint64) string { return strconv.FormatUint(n, 10) + "-0" }

// ReadAfter implements state.Log. Because event n has ID "n-0", a reader
// at n missed trimmed events exactly when the first event after it is not
// n+1. A position newer than the newest event (the stream was deleted or
// the data lost) is reported as state.ErrTrimmed too: reload either way.
//
// Waiting costs no connection: waiters share one tail watcher (see
// redis_tail.go) that blocks in XREAD for all of them.
func (r *Redis) ReadAfter(ctx context.Context, after string, limit int, wait time.Duration) ([]state.Event, error) {
	fromOldest := after == ""
	var pos uint64
	if !fromOldest {
		p, err := parseRedisPosition(after)
		if err != nil {
			return nil, err
		}
		pos = p
	}
	deadline := time.Now().Add(wait)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		if r.isClosed() {
			return nil, state.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		evs, last, err := r.readNow(ctx, fromOldest, pos, limit)
		if err != nil || len(evs) > 0 || wait <= 0 {
			return evs, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return []state.Event{}, nil
		}
		changed, seen, primed, err := r.subscribe()
		if err != nil {
			return nil, err
		}
		if primed && seen > last {
			r.unsubscribe() // the watcher already saw newer events: read again
			continue
		}
		if timer == nil {
			timer = time.NewTimer(left)
		} else {
			timer.Reset(left)
		}
		select {
		case <-changed:
			r.unsubscribe()
		case <-timer.C:
			r.unsubscribe()
			return []state.Event{}, nil
		case <-ctx.Done():
			r.unsubscribe()
			return nil, ctx.Err()
		}
	}
}

// readNow reads up to limit events after pos in one round trip (XRANGE
// plus the newest ID for the past-the-end check) and returns them with the
// newest ordinal it saw.
func (r *Redis) readNow(ctx context.Context, fromOldest bool, pos uint64, limit int) ([]state.Event, uint64, error) {
	start := "-"
	if !fromOldest {
		start = "(" + redisPosition(pos)
	}
	pipe := r.client.Pipeline()
	var rng *redis.XMessageSliceCmd
	if limit > 0 {
		rng = pipe.XRangeN(ctx, r.logKey(), start, "+", int64(limit))
	} else {
		rng = pipe.XRange(ctx, r.logKey(), start, "+")
	}
	newest := pipe.XRevRangeN(ctx, r.logKey(), "+", "-", 1)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, 0, r.wrap("read log", err)
	}
	last, err := newestOrdinal(newest.Val())
	if err != nil {
		return nil, 0, err
	}
	if !fromOldest && pos > last {
		return nil, 0, fmt.Errorf("position %d is past the newest event %d: %w", pos, last, state.ErrTrimmed)
	}
	msgs := rng.Val()
	out := make([]state.Event, 0, len(msgs))
	for i, m := range msgs {
		e, n, err := decodeEvent(m)
		if err != nil {
			return nil, 0, err
		}
		if i == 0 && !fromOldest && n != pos+1 {
			return nil, 0, fmt.Errorf("position %d is before the oldest retained event %d: %w", pos, n, state.ErrTrimmed)
		}
		out = append(out, e)
	}
	return out, last, nil
}

// newestOrdinal is the ordinal of the XREVRANGE COUNT 1 reply (0: empty).
func newestOrdinal(msgs []redis.XMessage) (uint64, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	n, err := parseRedisPosition(msgs[0].ID)
	if err != nil {
		return 0, fmt.Errorf("redis store: log holds foreign id %q", msgs[0].ID)
	}
	return n, nil
}

func decodeEvent(m redis.XMessage) (state.Event, uint64, error) {
	n, err := parseRedisPosition(m.ID)
	if err != nil {
		return state.Event{}, 0, fmt.Errorf("redis store: log holds foreign id %q", m.ID)
	}
	str := func(k string) string { s, _ := m.Values[k].(string); return s }
	e := state.Event{ID: m.ID, Type: str("type"), Data: []byte(str("data"))}
	if err := json.Unmarshal([]byte(str("scope")), &e.Scope); err != nil {
		return state.Event{}, 0, fmt.Errorf("redis store: event %s scope: %w", m.ID, err)
	}
	micros, err := strconv.ParseInt(str("at"), 10, 64)
	if err != nil {
		return state.Event{}, 0, fmt.Errorf("redis store: event %s: bad at %q", m.ID, str("at"))
	}
	e.At = time.UnixMicro(micros)
	return e, n, nil
}

// Last implements state.Log.
func (r *Redis) Last(ctx context.Context) (string, error) {
	if r.isClosed() {
		return "", state.ErrClosed
	}
	msgs, err := r.client.XRevRangeN(ctx, r.logKey(), "+", "-", 1).Result()
	if err != nil {
		return "", r.wrap("last", err)
	}
	if len(msgs) == 0 {
		return "", nil
	}
	return msgs[0].ID, nil
}
