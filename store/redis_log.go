package store

import (
	"context"
	"encoding/json"
	"errors"
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
	for {
		if r.isClosed() {
			return nil, state.ErrClosed
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		evs, err := r.readNow(ctx, fromOldest, pos, limit)
		if err != nil || len(evs) > 0 || wait <= 0 {
			return evs, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return []state.Event{}, nil
		}
		// Nothing after pos (or, fromOldest, nothing at all: block from 0).
		if err := r.block(ctx, redisPosition(pos), left); err != nil {
			return nil, err
		}
	}
}

// readNow reads up to limit events after pos in one round trip (XRANGE
// plus the newest ID for the past-the-end check).
func (r *Redis) readNow(ctx context.Context, fromOldest bool, pos uint64, limit int) ([]state.Event, error) {
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
		return nil, r.wrap("read log", err)
	}
	var last uint64
	if msgs := newest.Val(); len(msgs) > 0 {
		n, err := parseRedisPosition(msgs[0].ID)
		if err != nil {
			return nil, fmt.Errorf("redis store: log holds foreign id %q", msgs[0].ID)
		}
		last = n
	}
	if !fromOldest && pos > last {
		return nil, fmt.Errorf("position %d is past the newest event %d: %w", pos, last, state.ErrTrimmed)
	}
	msgs := rng.Val()
	out := make([]state.Event, 0, len(msgs))
	for i, m := range msgs {
		e, n, err := decodeEvent(m)
		if err != nil {
			return nil, err
		}
		if i == 0 && !fromOldest && n != pos+1 {
			return nil, fmt.Errorf("position %d is before the oldest retained event %d: %w", pos, n, state.ErrTrimmed)
		}
		out = append(out, e)
	}
	return out, nil
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

// block waits with XREAD BLOCK until the stream has an entry after from,
// d passes, ctx ends or the store closes. It returns nil on news or
// timeout (the caller reads again), ctx.Err() or state.ErrClosed.
func (r *Redis) block(ctx context.Context, from string, d time.Duration) error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return state.ErrClosed
	}
	r.waiters.Add(1)
	r.mu.Unlock()
	defer r.waiters.Done()

	if d < time.Millisecond {
		d = time.Millisecond // BLOCK 0 would mean forever
	}
	var err error
	if node := r.streamNode(ctx); node != nil {
		err = r.blockUnblockable(ctx, node, from, d)
	} else {
		err = r.blockSlice(ctx, from, d)
	}
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case r.isClosed():
		return state.ErrClosed
	case err != nil && !errors.Is(err, redis.Nil):
		return r.wrap("wait for events", err)
	}
	return nil
}

// streamNode returns the client of the server holding the stream, when the
// client type lets us pin a connection there; nil otherwise.
func (r *Redis) streamNode(ctx context.Context) *redis.Client {
	switch c := r.client.(type) {
	case *redis.Client:
		return c
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, r.logKey())
		if err != nil {
			return nil
		}
		return node
	}
	return nil
}

// blockUnblockable runs XREAD BLOCK on a pinned connection. go-redis does
// not abort a blocked read when ctx is cancelled, so a watcher sends
// CLIENT UNBLOCK for that connection when ctx ends or the store closes.
func (r *Redis) blockUnblockable(ctx context.Context, node *redis.Client, from string, d time.Duration) error {
	conn := node.Conn()
	defer conn.Close()
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		return err
	}
	finished := make(chan struct{})
	watcherDone := make(chan struct{})
	go func() {
		defer close(watcherDone)
		select {
		case <-finished:
			return
		case <-ctx.Done():
		case <-r.done:
		}
		unblock(node, id, finished)
	}()
	_, err = conn.XRead(ctx, &redis.XReadArgs{Streams: []string{r.logKey(), from}, Count: 1, Block: d}).Result()
	close(finished)
	<-watcherDone
	return err
}

// unblock sends CLIENT UNBLOCK until the connection was actually blocked
// (the XREAD may not have reached the server yet) or the read finished.
func unblock(node *redis.Client, id int64, finished <-chan struct{}) {
	for delay := time.Millisecond; ; delay = min(2*delay, 50*time.Millisecond) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		n, err := node.ClientUnblock(ctx, id).Result()
		cancel()
		if err != nil || n == 1 {
			return
		}
		select {
		case <-finished:
			return
		case <-time.After(delay):
		}
	}
}

// blockSlice is the fallback for client types we cannot pin a connection
// on: XREAD BLOCK in slices of at most a second, so cancel and Close are
// noticed within that.
func (r *Redis) blockSlice(ctx context.Context, from string, d time.Duration) error {
	d = min(d, time.Second)
	_, err := r.client.XRead(ctx, &redis.XReadArgs{Streams: []string{r.logKey(), from}, Count: 1, Block: d}).Result()
	return err
}
