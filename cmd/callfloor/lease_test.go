package main

import (
	"bufio"
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/store"
)

// leaseHolder reads a lease's current grant straight from Redis.
func leaseHolder(t *testing.T, rdb *redis.Client, name string) (holder string, token int64) {
	t.Helper()
	vals, err := rdb.HMGet(context.Background(), store.DefaultRedisPrefix+"lease:"+name, "holder", "token").Result()
	if err != nil {
		t.Fatal(err)
	}
	holder, _ = vals[0].(string)
	if s, ok := vals[1].(string); ok {
		token, _ = strconv.ParseInt(s, 10, 64)
	}
	return holder, token
}

// waitHolder waits until lease name is held by someone other than not.
func waitHolder(t *testing.T, rdb *redis.Client, name, not string) (string, int64) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if h, tok := leaseHolder(t, rdb, name); h != "" && h != not {
			return h, tok
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease %s: no holder other than %q within 15 s", name, not)
		}
	}
}

// rawStream keeps every line of an event stream, comments included.
type rawStream struct {
	mu    sync.Mutex
	lines []string
	done  chan struct{}
}

func openRaw(t *testing.T, ctx context.Context, base, token string) *rawStream {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("events: %v %v", res, err)
	}
	r := &rawStream{done: make(chan struct{})}
	go func() {
		defer close(r.done)
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			r.mu.Lock()
			r.lines = append(r.lines, sc.Text())
			r.mu.Unlock()
		}
	}()
	return r
}

// TestShutdownHandsLeasesOver: two replicas on one Redis with a 60 s lease
// TTL. The first holds the floor and webhook leases; when it shuts down
// its event stream ends with a cutoff and a final comment, it exits within
// its deadline, and the second replica holds both leases, with greater
// tokens, long before the TTL could have run out: the leases were handed
// over, not left to expire.
func TestShutdownHandsLeasesOver(t *testing.T) {
	rs := testpeer.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	env := map[string]string{"CALLFLOOR_REDIS_URL": rs.URL(), "CALLFLOOR_LEASE_TTL_SECONDS": "60"}
	a := start(t, env)
	floorA, floorTok := waitHolder(t, rdb, "floor", "")
	hooksA, hooksTok := waitHolder(t, rdb, "webhooks", "")
	if floorA != hooksA {
		t.Fatalf("leases held by %q and %q, want the first replica for both", floorA, hooksA)
	}
	b := start(t, env)
	defer b.stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sse := openRaw(t, ctx, a.base, "demo-admin")
	a.stop()
	select {
	case <-sse.done:
	case <-time.After(15 * time.Second):
		t.Fatal("the event stream outlived the replica")
	}
	sse.mu.Lock()
	tail := strings.Join(sse.lines, "\n")
	sse.mu.Unlock()
	for _, want := range []string{"event: cutoff", `"reason":"server_shutdown"`, ": server shutting down; reconnect with Last-Event-ID"} {
		if !strings.Contains(tail, want) {
			t.Fatalf("stream end lacks %q:\n%s", want, tail)
		}
	}
	for _, l := range []struct {
		name  string
		token int64
	}{{"floor", floorTok}, {"webhooks", hooksTok}} {
		h, tok := waitHolder(t, rdb, l.name, floorA)
		if tok <= l.token {
			t.Fatalf("lease %s taken by %s with token %d, want > %d", l.name, h, tok, l.token)
		}
	}
}
