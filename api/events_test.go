package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

var statuses = []string{presence.StatusAvailable, presence.StatusUnavailable}

func redisStore(t testing.TB, srv *testpeer.RedisServer, opts ...store.RedisOption) *store.Redis {
	return store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}), opts...)
}

// TestEventsResumeExactlyOnce: a client that disconnects after event k and
// reconnects with Last-Event-ID: k receives k+1..n exactly once, in order,
// then live events — on memory and on a real Redis, resuming from the
// hub's window and from the log.
func TestEventsResumeExactlyOnce(t *testing.T) {
	for _, backend := range []string{"memory", "redis"} {
		for _, window := range []int{1024, 0} {
			t.Run(fmt.Sprintf("%s/window=%d", backend, window), func(t *testing.T) {
				var st state.StoreLog = store.NewMemory()
				if backend == "redis" {
					st = redisStore(t, testpeer.StartRedis(t))
				}
				f := newFloor(t, st, []stream.HubOption{stream.WithWindow(window), stream.WithBatch(3)})
				c := f.connect("demo-admin", "?types=agent", nil)
				for i := 0; i < 10; i++ {
					f.setStatus("a1", statuses[i%2])
				}
				all := c.events(10)
				for _, fr := range all {
					var v presence.AgentView
					if fr.event != "agent" || json.Unmarshal([]byte(fr.data), &v) != nil || v.ID != "a1" {
						t.Fatalf("frame %+v is not an a1 agent event", fr)
					}
				}
				c.close()

				const k = 4
				for i := 0; i < 3; i++ { // changes while disconnected
					f.setStatus("a1", statuses[i%2])
				}
				again := f.connect("demo-admin", "?types=agent", map[string]string{"Last-Event-ID": all[k-1].id})
				got := again.events(6 + 3)
				if fmt.Sprint(idsOf(got[:6])) != fmt.Sprint(idsOf(all[k:])) {
					t.Fatalf("resumed %v, want %v first", idsOf(got), idsOf(all[k:]))
				}
				f.setStatus("a1", statuses[1])
				got = append(got, again.events(1)...)
				seen := map[string]bool{all[k-1].id: true}
				for _, fr := range got {
					if seen[fr.id] {
						t.Fatalf("event %s delivered twice: %v", fr.id, idsOf(got))
					}
					seen[fr.id] = true
				}
				if got[len(got)-1].id != f.last() {
					t.Fatalf("last frame %s, log head %s", got[len(got)-1].id, f.last())
				}
			})
		}
	}
}

// TestEventsTwoServersShareRedis: two server processes (two stores, two
// hubs) on one Redis; a change made through one's REST API appears on an
// SSE stream served by the other.
func TestEventsTwoServersShareRedis(t *testing.T) {
	srv := testpeer.StartRedis(t)
	a := newFloor(t, redisStore(t, srv), nil)
	b := newFloor(t, redisStore(t, srv), nil)
	c := b.connect("demo-sup-sales", "", nil)
	req, _ := http.NewRequest("PUT", a.srv.URL+"/v1/agents/a1/status", strings.NewReader(`{"call_status":"lunch_break"}`))
	req.Header.Set("Authorization", "Bearer demo-a1")
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("PUT status on server A: %d", res.StatusCode)
	}
	fr := c.next(false)
	var v presence.AgentView
	if err := json.Unmarshal([]byte(fr.data), &v); err != nil || fr.event != "agent" || v.ID != "a1" || v.CallStatus != "lunch_break" {
		t.Fatalf("server B streamed %+v, want a1 in lunch_break", fr)
	}
	if fr.id != a.last() {
		t.Fatalf("id %s, log head %s", fr.id, a.last())
	}
}

// TestEventsSupervisorScope: a supervisor's stream never carries another
// group's agent or call, live or on resume; an agent's carries its group.
func TestEventsSupervisorScope(t *testing.T) {
	f := newFloor(t, store.NewMemory(), []stream.HubOption{stream.WithWindow(0)})
	start := f.last()
	sup := f.connect("demo-sup-sales", "", nil)
	agent := f.connect("demo-a5", "", nil)
	f.setStatus("a5", "lunch_break") // support
	f.setStatus("a1", "lunch_break") // sales
	commitCall := func(group, agent string) {
		data, _ := json.Marshal(map[string]string{"id": "c-" + group, "agent": agent})
		if _, err := f.store.Commit(context.Background(), state.Tx{Events: []state.NewEvent{
			{Type: "call", Scope: state.Scope{Agent: agent, Queue: group, Groups: []string{group}}, Data: data}}}); err != nil {
			t.Fatal(err)
		}
	}
	commitCall("support", "a6")
	commitCall("sales", "a2")
	f.setStatus("a7", "short_break") // support
	f.setStatus("a3", "short_break") // sales: the marker that ends the check
	check := func(c *sseClient, group, endAgent string, want int) {
		t.Helper()
		for n := 0; ; n++ {
			fr := c.next(false)
			var obj struct {
				ID     string   `json:"id"`
				Agent  string   `json:"agent"`
				Groups []string `json:"groups"`
			}
			if err := json.Unmarshal([]byte(fr.data), &obj); err != nil {
				t.Fatal(err)
			}
			if fr.event == "agent" && (len(obj.Groups) != 1 || obj.Groups[0] != group) ||
				fr.event == "call" && obj.ID != "c-"+group {
				t.Fatalf("%s stream carried another group's %s: %s", group, fr.event, fr.data)
			}
			if fr.event == "agent" && obj.ID == endAgent {
				if n+1 != want {
					t.Fatalf("%s stream carried %d events, want %d", group, n+1, want)
				}
				return
			}
		}
	}
	check(sup, "sales", "a3", 3)
	check(agent, "support", "a7", 3)
	resumed := f.connect("demo-sup-sales", "", map[string]string{"Last-Event-ID": start})
	check(resumed, "sales", "a3", 3)
}

func TestEventsTrimmedReset(t *testing.T) {
	f := newFloor(t, store.NewMemory(store.WithRetention(5)), []stream.HubOption{stream.WithWindow(0)})
	old := f.last()
	for i := 0; i < 10; i++ {
		f.setStatus("a1", statuses[i%2])
	}
	c := f.connect("demo-admin", "?last_event_id="+old, nil)
	reset := c.next(false)
	if reset.event != "reset" || !reset.hasID || reset.id != f.last() {
		t.Fatalf("first frame %+v, want event: reset with id %s", reset, f.last())
	}
	f.setStatus("a1", "lunch_break")
	if fr := c.next(false); fr.event != "agent" || fr.id != f.last() {
		t.Fatalf("after reset got %+v", fr)
	}
}

func TestEventsHeadersKeepaliveAndErrors(t *testing.T) {
	f := newFloor(t, store.NewMemory(), nil, api.WithKeepalive(20*time.Millisecond))
	c := f.connect("", "?access_token=demo-a1", nil)
	for k, want := range map[string]string{"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"} {
		if got := c.res.Header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	for {
		if fr := c.next(true); fr.comment == "keepalive" {
			break
		}
	}
	for _, tc := range []struct {
		token, query string
		status       int
	}{
		{"", "", 401},
		{"demo-admin", "?types=agent,bogus", 400},
	} {
		bad := f.connect(tc.token, tc.query, nil)
		if bad.res.StatusCode != tc.status {
			t.Errorf("%q %q: status %d, want %d", tc.token, tc.query, bad.res.StatusCode, tc.status)
		}
	}
}

// TestEventsStreamIsPresence: an agent with an open stream is online,
// kept so by the stream's periodic heartbeats.
func TestEventsStreamIsPresence(t *testing.T) {
	const ttl = time.Second
	f := newFloorWith(t, store.NewMemory(), nil, func(svc *presence.Service) []api.EventOption {
		return []api.EventOption{api.WithStreamPresence(svc, 50*time.Millisecond)}
	}, presence.WithHeartbeatTTL(ttl))
	ctx := context.Background()
	watch := f.connect("demo-admin", "?types=agent", nil)
	if a, _ := f.svc.Agent(ctx, "a1"); a.Online {
		t.Fatal("a1 online before connecting")
	}
	// A stream never logs anyone in: a1 stays logged out and offline.
	stream := f.connect("demo-a1", "", nil)
	a1 := presence.Actor{ID: "a1", Role: presence.RoleAgent}
	if _, err := f.svc.KeepAlive(ctx, a1, "a1"); err != nil { // what the stream's beat does
		t.Fatal(err)
	}
	if a, _ := f.svc.Agent(ctx, "a1"); a.Online || a.LoggedIn {
		t.Fatalf("a stream logged a1 in: %+v", a)
	}
	// The app logs in (one heartbeat); from then on the stream is presence.
	if _, err := f.svc.Heartbeat(ctx, a1, "a1"); err != nil {
		t.Fatal(err)
	}
	for {
		var v presence.AgentView
		_ = json.Unmarshal([]byte(watch.next(false).data), &v)
		if v.ID == "a1" && v.Online {
			break
		}
	}
	// While the stream stays open, periodic heartbeats keep a1 online
	// across several TTLs of sweeps.
	for end := time.Now().Add(3 * ttl); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if err := f.svc.Expire(ctx); err != nil {
			t.Fatal(err)
		}
		if a, _ := f.svc.Agent(ctx, "a1"); !a.Online {
			t.Fatal("a1 went offline with an open stream")
		}
	}
	// Closing the stream stops the heartbeats; a1 lapses after the TTL.
	stream.close()
	time.Sleep(ttl + 200*time.Millisecond)
	if err := f.svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := f.svc.Agent(ctx, "a1"); a.Online {
		t.Fatal("a1 still online a TTL after closing its stream")
	}
}

// TestEventsSlowClientCutOff: a client that stops reading is cut off
// while another client receives every event.
func TestEventsSlowClientCutOff(t *testing.T) {
	f := newFloor(t, store.NewMemory(store.WithRetention(100000)),
		[]stream.HubOption{stream.WithSubscriberBuffer(64)}, api.WithWriteTimeout(2*time.Second))
	conn, err := net.Dial("tcp", f.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.(*net.TCPConn).SetReadBuffer(4096)
	fmt.Fprintf(conn, "GET /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-admin\r\n\r\n")
	for f.hub.Subscribers() < 1 {
		time.Sleep(time.Millisecond)
	}
	fast := f.connect("demo-admin", "", nil)
	big := strings.Repeat("x", 4096)
	// Paced in batches the fast client keeps up with; the slow one falls
	// behind once the socket buffers are full.
	const batches, per = 100, 32
	for b := 0; b < batches; b++ {
		for i := 0; i < per; i++ {
			data, _ := json.Marshal(map[string]any{"id": fmt.Sprint(b*per + i), "pad": big})
			if _, err := f.store.Commit(context.Background(), state.Tx{Events: []state.NewEvent{{Type: "call", Data: data}}}); err != nil {
				t.Fatal(err)
			}
		}
		if got := fast.events(per); got[per-1].id != f.last() {
			t.Fatalf("fast client at %s, log at %s", got[per-1].id, f.last())
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for f.hub.Subscribers() != 1 {
		if time.Now().After(deadline) {
			t.Fatalf("slow client still attached (%d subscribers)", f.hub.Subscribers())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestEventsResumeOnAnotherServer: behind a load balancer the reconnect
// lands on the other replica; it resends exactly what was missed.
func TestEventsResumeOnAnotherServer(t *testing.T) {
	srv := testpeer.StartRedis(t)
	a := newFloor(t, redisStore(t, srv), nil)
	b := newFloor(t, redisStore(t, srv), []stream.HubOption{stream.WithWindow(0)})
	c := a.connect("demo-admin", "?types=agent", nil)
	for i := 0; i < 6; i++ {
		a.setStatus("a1", statuses[i%2])
	}
	first := c.events(6)
	c.close()
	b.setStatus("a2", "lunch_break")
	again := b.connect("demo-admin", "?types=agent", map[string]string{"Last-Event-ID": first[2].id})
	got := again.events(4)
	want := append(idsOf(first[3:]), b.last())
	if fmt.Sprint(idsOf(got)) != fmt.Sprint(want) {
		t.Fatalf("resumed on B: %v, want %v", idsOf(got), want)
	}
	a.setStatus("a1", "short_break")
	if fr := again.next(false); fr.id != a.last() {
		t.Fatalf("then %+v, want %s", fr, a.last())
	}
}
