package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
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
	waitHolder(t, rdb, "media:sip:default", "")
	if floorA != hooksA {
		t.Fatalf("leases held by %q and %q, want the first replica for both", floorA, hooksA)
	}
	b := start(t, env)
	defer b.stop()
	// Exactly one replica does each piece of floor-wide work (its metrics
	// say so): the first, for the media server, the floor and webhooks.
	for _, l := range []string{"media:sip:default", "floor", "webhooks"} {
		held := fmt.Sprintf(`callfloor_lease_held{lease="%s"} 1`, l)
		if !strings.Contains(metricsOf(t, a.base), held) || strings.Contains(metricsOf(t, b.base), held) {
			t.Fatalf("lease %s: want it held by the first replica only", l)
		}
	}

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

// TestSupervisorActionRelayedToOwner: two replicas on one Redis with the
// built-in SIP path; the first drives it (holds its media lease), the
// second is a standby that does not even listen for SIP. A call is
// answered through the owner; supervisor actions sent to the standby act
// on the call and answer with the owner's result: listen is refused by the
// owner's media path (501 in the SIP path's signalling mode, as on the
// owner itself), hang-up ends the call for both phones.
func TestSupervisorActionRelayedToOwner(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	rs := testpeer.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	sipA := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	env := map[string]string{"CALLFLOOR_REDIS_URL": rs.URL(), "CALLFLOOR_LEASE_TTL_SECONDS": "2", "CALLFLOOR_SIP_MEDIA": "signalling"}
	a := start(t, withDefault(env, "CALLFLOOR_SIP_ADDR", sipA))
	defer a.stop()
	owner, _ := waitHolder(t, rdb, "media:sip:default", "")
	b := start(t, env)
	defer b.stop()
	if h, _ := leaseHolder(t, rdb, "media:sip:default"); h != owner {
		t.Fatalf("media lease moved to %q when the standby started", h)
	}
	id, caller, agent := answeredSIPCall(t, a, sipA)

	post := func(path string) (int, string, http.Header) {
		t.Helper()
		req, _ := http.NewRequest("POST", b.base+path, nil)
		req.Header.Set("Authorization", "Bearer demo-sup-sales")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(body), res.Header
	}
	code, body, hdr := post("/v1/calls/" + id + "/listen")
	if code != 501 || !strings.Contains(body, `"not_supported"`) || hdr.Get("X-Callfloor-Relayed") != "1" {
		t.Fatalf("listen through the standby: %d %s (relayed %q), want the owner's 501", code, body, hdr.Get("X-Callfloor-Relayed"))
	}
	code, body, hdr = post("/v1/calls/" + id + "/hangup")
	if code != 200 || !strings.Contains(body, `"id":"`+id+`"`) || hdr.Get("X-Callfloor-Relayed") != "1" {
		t.Fatalf("hang-up through the standby: %d %s", code, body)
	}
	caller.wait(t, 15*time.Second) // got its BYE from the owner
	agent.wait(t, 15*time.Second)
	var c map[string]any
	if code := b.call("GET", "/v1/calls/"+id, "demo-sup-sales", "", &c); code != 404 {
		t.Fatalf("call after the relayed hang-up: %d %v", code, c)
	}
	// A bad token is refused by the standby itself, never relayed.
	req, _ := http.NewRequest("POST", b.base+"/v1/calls/"+id+"/hangup", nil)
	req.Header.Set("Authorization", "Bearer nope")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 401 || res.Header.Get("X-Callfloor-Relayed") != "" {
		t.Fatalf("bad token: %d relayed=%q", res.StatusCode, res.Header.Get("X-Callfloor-Relayed"))
	}
}

// metricsOf reads a replica's /metrics as the admin.
func metricsOf(t *testing.T, base string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer demo-admin")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("/metrics: %d %s", res.StatusCode, b)
	}
	return string(b)
}
