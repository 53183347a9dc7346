package stream_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

// newRedisStore opens a store on srv (its own client, like a separate process).
func newRedisStore(t testing.TB, srv *testpeer.RedisServer, opts ...store.RedisOption) *store.Redis {
	t.Helper()
	st := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}), opts...)
	t.Cleanup(func() { _ = st.Close() })
	return st
}

func TestResumeExactlyOnceRedis(t *testing.T) {
	srv := testpeer.StartRedis(t)
	for _, tc := range []struct {
		name   string
		window int
	}{{"window", 1024}, {"log", 0}, {"window-too-small", 3}} {
		t.Run(tc.name, func(t *testing.T) {
			st := newRedisStore(t, srv, store.WithPrefix("{"+tc.name+"}:"))
			testResume(t, st, st, tc.window)
		})
	}
}

func TestTrimmedPositionResetsRedis(t *testing.T) {
	srv := testpeer.StartRedis(t)
	st := newRedisStore(t, srv, store.WithRetention(5), store.WithExactTrim())
	h := startHub(t, st, stream.WithWindow(0))
	old := commit(t, st, "agent", state.Scope{Agent: "a1"}, 20)
	waitPosition(t, h, st)
	sub := subscribe(t, h, stream.Subscription{Actor: admin, After: old[1]})
	next := commit(t, st, "agent", state.Scope{Agent: "a1"}, 2)
	equal(t, collect(t, sub, 3), append([]string{"reset"}, next...))
	quiet(t, h, st, sub)
}

// TestTwoHubsShareOneRedis: a change committed through one process's store
// reaches a subscriber of another process's hub, and both see the same ids.
func TestTwoHubsShareOneRedis(t *testing.T) {
	srv := testpeer.StartRedis(t)
	a, b := newRedisStore(t, srv), newRedisStore(t, srv)
	ha, hb := startHub(t, a), startHub(t, b)
	subA := subscribe(t, ha, stream.Subscription{Actor: admin})
	subB := subscribe(t, hb, stream.Subscription{Actor: admin})
	viaA := commit(t, a, "agent", state.Scope{Agent: "a1"}, 3)
	viaB := commit(t, b, "call", state.Scope{Queue: "q"}, 3)
	want := append(viaA, viaB...)
	equal(t, collect(t, subA, 6), want)
	equal(t, collect(t, subB, 6), want)
}
