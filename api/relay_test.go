package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/store"
)

// TestCommandRelayWithoutOwner: a standby replica whose command finds no
// replica driving the media server answers 503 media_owner_unavailable
// with Retry-After after its deadline, saying the command may not have
// run; reads are served locally and never relayed.
func TestCommandRelayWithoutOwner(t *testing.T) {
	d := newDemoWith(t, func(st *store.Memory, svc *presence.Service) []api.Option {
		eng := routing.NewEngine(st, svc, nil)
		return []api.Option{api.WithRoutes(api.RoutingRoutes(eng,
			api.WithCommandRelay(func() bool { return false }, st, "media:x", 200*time.Millisecond)))}
	})
	res := d.do("POST", "/v1/calls/c1/hangup", "demo-sup-sales", "")
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	res.decode(t, &body)
	if res.status != http.StatusServiceUnavailable || body.Error.Code != "media_owner_unavailable" ||
		!strings.Contains(body.Error.Message, "may or may not have run") || res.header.Get("Retry-After") == "" {
		t.Fatalf("hang-up without an owner: %d %+v (Retry-After %q)", res.status, body.Error, res.header.Get("Retry-After"))
	}
	if res := d.do("GET", "/v1/calls", "demo-sup-sales", ""); res.status != http.StatusOK {
		t.Fatalf("a read on the standby: %d %s", res.status, res.body)
	}
}

// TestServeRelayedRunsThroughOwnRoutes: the owner runs a relayed request
// through its own routes with the client's token: authentication and
// errors are the owner's, and a relayed request that finds this replica
// not owning is refused rather than relayed again.
func TestServeRelayedRunsThroughOwnRoutes(t *testing.T) {
	owns := false
	var srv *api.Server
	newDemoWith(t, func(st *store.Memory, svc *presence.Service) []api.Option {
		eng := routing.NewEngine(st, svc, nil)
		return []api.Option{api.WithRoutes(api.RoutingRoutes(eng,
			api.WithCommandRelay(func() bool { return owns }, st, "media:x", time.Second)))}
	}, &srv)
	ask := func(req map[string]any) (int, string) {
		t.Helper()
		b, _ := json.Marshal(req)
		var res struct {
			Status int    `json:"status"`
			Body   []byte `json:"body"`
		}
		if err := json.Unmarshal(srv.ServeRelayed(context.Background(), b), &res); err != nil {
			t.Fatal(err)
		}
		return res.Status, string(res.Body)
	}
	hangup := map[string]any{"method": "POST", "uri": "/v1/calls/c1/hangup", "authorization": "Bearer demo-sup-sales"}
	if code, body := ask(hangup); code != 503 || !strings.Contains(body, "no longer drives the media server") {
		t.Fatalf("relayed to a non-owner: %d %s", code, body)
	}
	owns = true
	// The engine is not running: the owner's own answer comes back.
	if code, body := ask(hangup); code != 503 || !strings.Contains(body, "routing_unavailable") {
		t.Fatalf("relayed to the owner: %d %s", code, body)
	}
	bad := map[string]any{"method": "POST", "uri": "/v1/calls/c1/hangup", "authorization": "Bearer nope"}
	if code, _ := ask(bad); code != 401 {
		t.Fatalf("relayed with a bad token: %d", code)
	}
	for _, raw := range []string{"", "{", `{"method":"GET","uri":"::"}`, `{"method":"\n","uri":"/v1/calls"}`} {
		var res struct{ Status int }
		if err := json.Unmarshal(srv.ServeRelayed(context.Background(), []byte(raw)), &res); err != nil || res.Status != 400 {
			t.Fatalf("malformed relayed request %q: %+v %v", raw, res, err)
		}
	}
}

// FuzzServeRelayed: whatever arrives on the relay, the owner answers a
// well-formed response with a real HTTP status and never panics.
func FuzzServeRelayed(f *testing.F) {
	f.Add([]byte(`{"method":"POST","uri":"/v1/calls/c1/hangup","authorization":"Bearer demo-admin"}`))
	f.Add([]byte(`{"method":"GET","uri":"/v1/calls?state=x","authorization":"Bearer demo-admin","body":"e30="}`))
	f.Add([]byte(`{"method":"POST","uri":"/v1/calls","content_type":"application/json","body":"eyJ4Ijp9"}`))
	f.Add([]byte(`not json`))
	var srv *api.Server
	newDemoWith(f, func(st *store.Memory, svc *presence.Service) []api.Option {
		return []api.Option{api.WithRoutes(api.RoutingRoutes(routing.NewEngine(st, svc, nil)))}
	}, &srv)
	f.Fuzz(func(t *testing.T, payload []byte) {
		var res struct{ Status int }
		if err := json.Unmarshal(srv.ServeRelayed(context.Background(), payload), &res); err != nil {
			t.Fatalf("answer does not decode: %v", err)
		}
		if res.Status < 100 || res.Status > 599 {
			t.Fatalf("status %d", res.Status)
		}
	})
}

// newDemoWith is newDemo with options built over its store and agents;
// out, when given, receives the API server (for ServeRelayed).
func newDemoWith(t testing.TB, opts func(*store.Memory, *presence.Service) []api.Option, out ...**api.Server) *demo {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	svc := presence.NewService(st, presence.WithLocation(cfg.Location()))
	if err := config.Bootstrap(context.Background(), cfg, svc); err != nil {
		t.Fatal(err)
	}
	s := api.New(svc, st, opts(st, svc)...)
	for _, o := range out {
		*o = s
	}
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() { srv.Close(); st.Close() })
	tt, _ := t.(*testing.T)
	return &demo{t: tt, srv: srv, store: st, svc: svc}
}
