package store

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/state/statetest"
)

// prefixes gives every store of a test run its own keys on a shared server.
var prefixes atomic.Int64

func newTestRedis(t *testing.T, srv *testpeer.RedisServer, opts ...RedisOption) *Redis {
	t.Helper()
	opts = append([]RedisOption{WithPrefix(fmt.Sprintf("{test%d}:", prefixes.Add(1)))}, opts...)
	return reopenTestRedis(t, srv, opts...)
}

func reopenTestRedis(t *testing.T, srv *testpeer.RedisServer, opts ...RedisOption) *Redis {
	t.Helper()
	r := NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}), opts...)
	t.Cleanup(func() { r.Close() })
	return r
}

// TestRedisContract runs the contract suite on a real redis-server. Reopen
// crashes the server (SIGKILL; append-only file with fsync always), starts
// it again and connects a new client: what the old store acknowledged must
// all be there.
func TestRedisContract(t *testing.T) {
	srv := testpeer.StartRedis(t, testpeer.WithAppendOnly())
	statetest.Run(t, statetest.Factory{
		New: func(t *testing.T) state.StoreLog { return newTestRedis(t, srv) },
		NewRetaining: func(t *testing.T, retention int) state.StoreLog {
			return newTestRedis(t, srv, WithRetention(retention), WithExactTrim())
		},
		Reopen: func(t *testing.T, old state.StoreLog) state.StoreLog {
			o := old.(*Redis).opts
			old.Close()
			srv.Restart(t)
			return reopenTestRedis(t, srv, WithPrefix(o.prefix), WithRetention(o.retention))
		},
		Second: func(t *testing.T, s state.StoreLog) state.StoreLog {
			return reopenTestRedis(t, srv, WithPrefix(s.(*Redis).opts.prefix))
		},
		FeedDeletions: FeedDeletions,
	})
}

// TestRedisClusterContract runs the suite through redis.ClusterClient on a
// one-node cluster: every key of a store must hash to one slot (the
// prefix's hash tag) for the commit script to run at all.
func TestRedisClusterContract(t *testing.T) {
	srv := testpeer.StartRedis(t, testpeer.WithCluster())
	newCluster := func(t *testing.T, opts ...RedisOption) *Redis {
		r := NewRedis(redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{srv.Addr()}}), opts...)
		t.Cleanup(func() { r.Close() })
		return r
	}
	prefix := func() RedisOption { return WithPrefix(fmt.Sprintf("{test%d}:", prefixes.Add(1))) }
	statetest.Run(t, statetest.Factory{
		New: func(t *testing.T) state.StoreLog { return newCluster(t, prefix()) },
		NewRetaining: func(t *testing.T, retention int) state.StoreLog {
			return newCluster(t, prefix(), WithRetention(retention), WithExactTrim())
		},
		Reopen: func(t *testing.T, old state.StoreLog) state.StoreLog {
			o := old.(*Redis).opts
			old.Close()
			return newCluster(t, WithPrefix(o.prefix), WithRetention(o.retention))
		},
		Second: func(t *testing.T, s state.StoreLog) state.StoreLog {
			return newCluster(t, WithPrefix(s.(*Redis).opts.prefix))
		},
		FeedDeletions: FeedDeletions,
	})
}

// TestRedisCommitAfterScriptFlush: EVALSHA falls back to EVAL when the
// server lost its script cache (restart, failover, SCRIPT FLUSH).
func TestRedisCommitAfterScriptFlush(t *testing.T) {
	srv := testpeer.StartRedis(t)
	r := newTestRedis(t, srv)
	ctx := context.Background()
	tx := state.Tx{Events: []state.NewEvent{{Type: "agent", Data: []byte("{}")}}}
	if _, err := r.Commit(ctx, tx); err != nil {
		t.Fatal(err)
	}
	if err := r.client.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	evs, err := r.Commit(ctx, tx)
	if err != nil || evs[0].ID != "2-0" {
		t.Fatalf("Commit after SCRIPT FLUSH = %v, %v; want event 2-0", evs, err)
	}
}

// TestRedisApproximateTrim: with the default MAXLEN ~ the stream keeps at
// least the retention, trims in whole nodes, and a reader behind the
// retained window still gets ErrTrimmed.
func TestRedisApproximateTrim(t *testing.T) {
	srv := testpeer.StartRedis(t)
	r := newTestRedis(t, srv, WithRetention(50))
	ctx := context.Background()
	for i := 0; i < 40; i++ {
		tx := state.Tx{}
		for j := 0; j < 10; j++ {
			tx.Events = append(tx.Events, state.NewEvent{Type: "agent", Data: []byte("{}")})
		}
		if _, err := r.Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	n, err := r.client.XLen(ctx, r.logKey()).Result()
	if err != nil || n < 50 || n >= 400 {
		t.Fatalf("XLEN = %d, %v; want between the retention (50) and all (400)", n, err)
	}
	oldest := uint64(400 - n + 1)
	evs, err := r.ReadAfter(ctx, redisPosition(oldest-1), 1, 0)
	if err != nil || len(evs) != 1 || evs[0].ID != redisPosition(oldest) {
		t.Fatalf("ReadAfter(oldest-1) = %v, %v", evs, err)
	}
	if _, err := r.ReadAfter(ctx, redisPosition(oldest-2), 1, 0); !errors.Is(err, state.ErrTrimmed) {
		t.Fatalf("ReadAfter(oldest-2) error = %v, want ErrTrimmed", err)
	}
}

// TestRedisReplicasShareTheLog: two stores on one Redis, as two callfloor
// replicas are; a reader waiting on one sees a commit made through the
// other, with the same position.
func TestRedisReplicasShareTheLog(t *testing.T) {
	srv := testpeer.StartRedis(t)
	a := newTestRedis(t, srv)
	b := reopenTestRedis(t, srv, WithPrefix(a.opts.prefix))
	ctx := context.Background()
	type result struct {
		evs []state.Event
		err error
	}
	got := make(chan result, 1)
	go func() {
		evs, err := b.ReadAfter(ctx, "", 10, 20*time.Second)
		got <- result{evs, err}
	}()
	time.Sleep(100 * time.Millisecond)
	sent, err := a.Commit(ctx, state.Tx{Events: []state.NewEvent{{Type: "agent", Data: []byte(`{"id":"a1"}`)}}})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	if r.err != nil || len(r.evs) != 1 || r.evs[0].ID != sent[0].ID || string(r.evs[0].Data) != `{"id":"a1"}` {
		t.Fatalf("other replica read %+v, %v; want %+v", r.evs, r.err, sent)
	}
	if _, err := b.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindAgent, ID: "a1", IfVersion: state.MustNotExist}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindAgent, ID: "a1", IfVersion: state.MustNotExist}}}); !errors.Is(err, state.ErrConflict) {
		t.Fatalf("create through the other replica: %v, want ErrConflict", err)
	}
}

// TestRedisManyWaitersShareOneConnection: a hundred readers waiting at
// once (SSE clients) must not each hold a pooled connection; with a pool
// of 4 they all still wake on one commit.
func TestRedisManyWaitersShareOneConnection(t *testing.T) {
	srv := testpeer.StartRedis(t)
	r := NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 4, PoolTimeout: time.Second}))
	t.Cleanup(func() { r.Close() })
	ctx := context.Background()
	const waiters = 100
	type result struct {
		evs []state.Event
		err error
	}
	results := make(chan result, waiters)
	for i := 0; i < waiters; i++ {
		go func() {
			evs, err := r.ReadAfter(ctx, "", 10, 20*time.Second)
			results <- result{evs, err}
		}()
	}
	time.Sleep(300 * time.Millisecond) // let them all wait
	if _, err := r.Commit(ctx, state.Tx{Events: []state.NewEvent{{Type: "agent", Data: []byte("{}")}}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < waiters; i++ {
		res := <-results
		if res.err != nil || len(res.evs) != 1 || res.evs[0].ID != "1-0" {
			t.Fatalf("waiter %d: %+v, %v", i, res.evs, res.err)
		}
	}
}
