package store

import (
	"context"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/state"
)

// The tail watcher lets any number of waiting ReadAfter calls share one
// blocked XREAD (one connection), instead of pinning a pooled connection
// each, which would exhaust the pool with a thousand SSE clients. It runs
// while someone waits and broadcasts, like the memory store, by closing
// and replacing a channel whenever the newest ordinal changes.

// tail is the watcher's shared state, guarded by Redis.mu.
type tail struct {
	changed chan struct{} // closed and replaced when seen changes
	seen    uint64        // newest ordinal the watcher observed
	primed  bool          // seen holds an observation
	waiters int
	running bool
}

const (
	// watchBlock bounds one XREAD BLOCK of the watcher; it exits at the
	// end of one when nobody waits any more.
	watchBlock = 5 * time.Second
	// watchMaxBackoff caps the pause between attempts while Redis fails.
	watchMaxBackoff = 2 * time.Second
)

// subscribe registers a waiter, starting the watcher if needed, and returns
// the channel to wait on with the watcher's latest observation.
func (r *Redis) subscribe() (changed <-chan struct{}, seen uint64, primed bool, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, 0, false, state.ErrClosed
	}
	r.tail.waiters++
	if !r.tail.running {
		r.tail.running = true
		r.bg.Add(1)
		go r.watch()
	}
	return r.tail.changed, r.tail.seen, r.tail.primed, nil
}

func (r *Redis) unsubscribe() {
	r.mu.Lock()
	r.tail.waiters--
	r.mu.Unlock()
}

// observe records the newest ordinal and wakes the waiters if it changed
// (or on the first observation, which a waiter may be waiting for).
func (r *Redis) observe(last uint64, force bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed || (r.tail.primed && r.tail.seen == last && !force) {
		return
	}
	r.tail.primed, r.tail.seen = true, last
	close(r.tail.changed)
	r.tail.changed = make(chan struct{})
}

// idle ends the watcher when nobody waits; it reports whether it did.
func (r *Redis) idle() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tail.waiters > 0 && !r.closed {
		return false
	}
	r.tail.running = false
	return true
}

func (r *Redis) watch() {
	defer r.bg.Done()
	ctx := r.bgCtx
	backoff := time.Duration(0)
	for {
		last, err := r.newest(ctx)
		if err == nil {
			r.observe(last, false)
			if r.idle() {
				return
			}
			err = r.block(ctx, redisPosition(last), watchBlock)
		}
		if ctx.Err() != nil {
			r.mu.Lock()
			r.tail.running = false
			r.mu.Unlock()
			return
		}
		if err == nil {
			backoff = 0
			continue
		}
		// Let the waiters read for themselves: they return the error.
		r.observe(last, true)
		backoff = min(max(2*backoff, 50*time.Millisecond), watchMaxBackoff)
		r.logger.Warn("redis store: watching the event log failed", "err", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
		case <-time.After(backoff):
		}
		if r.idle() {
			return
		}
	}
}

// newest returns the ordinal of the newest event (0: empty log).
func (r *Redis) newest(ctx context.Context) (uint64, error) {
	msgs, err := r.client.XRevRangeN(ctx, r.logKey(), "+", "-", 1).Result()
	if err != nil {
		return 0, err
	}
	return newestOrdinal(msgs)
}

// block waits with XREAD BLOCK until the stream has an entry after from,
// d passes or ctx ends. News and timeout both return nil.
func (r *Redis) block(ctx context.Context, from string, d time.Duration) error {
	if d < time.Millisecond {
		d = time.Millisecond // BLOCK 0 would mean forever
	}
	var err error
	if node := r.streamNode(ctx); node != nil {
		err = r.blockUnblockable(ctx, node, from, d)
	} else {
		err = r.blockSlice(ctx, from, d)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return err
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
// not abort a blocked read when ctx is cancelled, so a helper sends CLIENT
// UNBLOCK for that connection when ctx ends.
func (r *Redis) blockUnblockable(ctx context.Context, node *redis.Client, from string, d time.Duration) error {
	conn := node.Conn()
	defer conn.Close()
	id, err := conn.ClientID(ctx).Result()
	if err != nil {
		return err
	}
	finished := make(chan struct{})
	helperDone := make(chan struct{})
	go func() {
		defer close(helperDone)
		select {
		case <-finished:
		case <-ctx.Done():
			unblock(node, id, finished)
		}
	}()
	_, err = conn.XRead(ctx, &redis.XReadArgs{Streams: []string{r.logKey(), from}, Count: 1, Block: d}).Result()
	close(finished)
	<-helperDone
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
// on: XREAD BLOCK in slices of at most a second, so Close is noticed
// within that.
func (r *Redis) blockSlice(ctx context.Context, from string, d time.Duration) error {
	d = min(d, time.Second)
	_, err := r.client.XRead(ctx, &redis.XReadArgs{Streams: []string{r.logKey(), from}, Count: 1, Block: d}).Result()
	return err
}
