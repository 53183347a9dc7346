package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/store"
)

// routingAPI is the API with the routing engine mounted, over the media
// double and a fake clock. Tokens: "token-<agent id>".
type routingAPI struct {
	t     *testing.T
	ctx   context.Context
	srv   *httptest.Server
	eng   *routing.Engine
	svc   *presence.Service
	media *routingtest.Media
	clock *routingtest.Clock
	spec  routers.Router
}

func newRoutingAPI(t *testing.T) *routingAPI {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := store.NewMemory()
	clock := routingtest.NewClock(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
	var eng *routing.Engine
	svc := presence.NewService(st, presence.WithClock(clock.Now),
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return eng.LogoutGuard(ctx, id) }))
	media := &routingtest.Media{}
	eng = routing.NewEngine(st, svc, media, routing.WithClock(clock), routing.WithDefaultQueue("main"))
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	<-eng.Started()
	srv := httptest.NewServer(api.New(svc, st, api.WithRoutes(api.RoutingRoutes(eng))).Handler())
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-done
		st.Close()
	})
	doc, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	r := &routingAPI{t: t, ctx: ctx, srv: srv, eng: eng, svc: svc, media: media, clock: clock, spec: spec}
	r.user("boss", presence.RoleAdmin)
	r.group("sales")
	r.group("support")
	r.user("sup1", presence.RoleSupervisor)
	r.user("sup2", presence.RoleSupervisor)
	r.supervise("sales", "sup1")
	r.supervise("support", "sup2")
	r.user("a1", presence.RoleAgent, "sales")
	r.user("a2", presence.RoleAgent, "sales")
	for _, id := range []string{"a1", "a2"} {
		st := presence.StatusAvailable
		if _, err := svc.SetStatus(ctx, presence.System, id, &st, nil); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *routingAPI) user(id string, role presence.Role, groups ...string) {
	r.t.Helper()
	if groups == nil {
		groups = []string{}
	}
	name, email := id, id+"@example.com"
	if _, err := r.svc.CreateAgent(r.ctx, presence.System, presence.AgentInput{ID: &id, Name: &name, Email: &email, Role: &role, Groups: &groups}); err != nil {
		r.t.Fatal(err)
	}
	if err := r.svc.SetToken(r.ctx, "token-"+id, id); err != nil {
		r.t.Fatal(err)
	}
}

func (r *routingAPI) group(id string) {
	r.t.Helper()
	if _, err := r.svc.PutGroup(r.ctx, presence.System, id, true, presence.GroupPatch{Name: &id, Supervisors: &[]string{}}); err != nil {
		r.t.Fatal(err)
	}
}

func (r *routingAPI) supervise(group, sup string) {
	r.t.Helper()
	if _, err := r.svc.PutGroup(r.ctx, presence.System, group, false, presence.GroupPatch{Supervisors: &[]string{sup}}); err != nil {
		r.t.Fatal(err)
	}
}

type rres struct {
	status int
	body   string
}

func (x rres) into(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(x.body), v); err != nil {
		t.Fatalf("decode %s: %v", x.body, err)
	}
}

func (r *routingAPI) do(method, path, who, body string) rres {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, r.srv.URL+path, rd)
	req.Header.Set("Authorization", "Bearer token-"+who)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	r.conforms(method, path, body, res, b)
	return rres{status: res.StatusCode, body: string(b)}
}

// conforms checks the response (and an accepted request) against the
// OpenAPI document, so the routing endpoints cannot drift from it.
func (r *routingAPI) conforms(method, path, body string, res *http.Response, resBody []byte) {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, r.srv.URL+path, rd)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	route, params, err := r.spec.FindRoute(req)
	if err != nil {
		r.t.Errorf("%s %s: not in the OpenAPI document: %v", method, path, err)
		return
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
	if res.StatusCode < 400 {
		if err := openapi3filter.ValidateRequest(r.ctx, in); err != nil {
			r.t.Errorf("%s %s: accepted request fails the document: %v", method, path, err)
		}
	}
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.StatusCode,
		Header: http.Header{"Content-Type": []string{res.Header.Get("Content-Type")}}, Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	out.SetBodyBytes(bytes.Clone(resBody))
	if err := openapi3filter.ValidateResponse(r.ctx, out); err != nil {
		r.t.Errorf("%s %s → %d: response fails the document: %v\n%s", method, path, res.StatusCode, err, resBody)
	}
}

// want checks the status and, for errors, that the message says msg.
func (r *routingAPI) want(x rres, status int, msg string) {
	r.t.Helper()
	if x.status != status || !strings.Contains(x.body, msg) {
		r.t.Fatalf("got %d %s, want %d containing %q", x.status, x.body, status, msg)
	}
}

func (r *routingAPI) flush() {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	if err := r.eng.Flush(ctx); err != nil {
		r.t.Fatal(err)
	}
}

func (r *routingAPI) report(f media.Fact) {
	r.eng.Report(f)
	r.flush()
}

func TestQueuesAPI(t *testing.T) {
	r := newRoutingAPI(t)
	r.want(r.do("POST", "/v1/queues", "a1", `{"id":"main"}`), 403, "only admins manage queues")
	r.want(r.do("POST", "/v1/queues", "boss", `{"id":"main","strategy":"fastest"}`), 400, `"invalid_strategy"`)
	r.want(r.do("POST", "/v1/queues", "boss", `{"id":"main","members":["ghost"]}`), 422, `\"ghost\" is neither an agent nor a group`)
	r.want(r.do("POST", "/v1/queues", "boss", `{"id":"main","colour":"red"}`), 400, "unknown field colour")
	x := r.do("POST", "/v1/queues", "boss", `{"id":"main","name":"Main line","members":["sales"],"hotlines":["+842800"],"wrapup_seconds":30}`)
	r.want(x, 201, `"ring_timeout_seconds":18`)
	var q map[string]any
	x.into(t, &q)
	for _, k := range []string{"id", "name", "strategy", "ring_timeout_seconds", "wrapup_seconds", "service_level_seconds", "members",
		"hotlines", "waiting", "longest_wait_seconds", "agents_available", "agents_busy", "answered_today", "abandoned_today", "service_level_percent"} {
		if _, ok := q[k]; !ok {
			t.Errorf("queue lacks %q: %s", k, x.body)
		}
	}
	if q["agents_available"] != 2.0 {
		t.Fatalf("agents_available = %v", q["agents_available"])
	}
	r.want(r.do("POST", "/v1/queues", "boss", `{"id":"main"}`), 409, "already exists")
	r.want(r.do("POST", "/v1/queues", "boss", `{"id":"other","hotlines":["+842800"]}`), 409, "hotline +842800 already routes to queue main")
	r.want(r.do("PATCH", "/v1/queues/main", "boss", `{"strategy":"ring_all","ring_timeout_seconds":25}`), 200, `"strategy":"ring_all"`)
	r.want(r.do("GET", "/v1/queues/main", "sup1", ""), 200, `"ring_timeout_seconds":25`)
	// Wallboard thresholds: additive, 0 = off, red never below amber.
	r.want(r.do("GET", "/v1/queues/main", "boss", ""), 200, `"waiting_amber":0,"waiting_red":0,"longest_wait_amber_seconds":0,"longest_wait_red_seconds":0`)
	r.want(r.do("PATCH", "/v1/queues/main", "boss", `{"waiting_amber":3,"waiting_red":6,"longest_wait_amber_seconds":30,"longest_wait_red_seconds":60}`), 200,
		`"waiting_amber":3,"waiting_red":6,"longest_wait_amber_seconds":30,"longest_wait_red_seconds":60`)
	r.want(r.do("PATCH", "/v1/queues/main", "boss", `{"waiting_red":2}`), 400, "waiting_red: must be at least waiting_amber")
	r.want(r.do("PATCH", "/v1/queues/main", "boss", `{"longest_wait_red_seconds":10}`), 400, "longest_wait_red_seconds: must be at least longest_wait_amber_seconds")
	r.want(r.do("PATCH", "/v1/queues/main", "boss", `{"waiting_amber":-1}`), 400, "waiting_amber: must be between 0 and 10000 calls")
	r.want(r.do("PATCH", "/v1/queues/main", "boss", `{"longest_wait_amber_seconds":4000}`), 400, "must be between 0 and 3600 seconds")
	r.want(r.do("PATCH", "/v1/queues/main", "boss", `{"waiting_red":0}`), 200, `"waiting_amber":3,"waiting_red":0`)
	r.want(r.do("PATCH", "/v1/queues/main", "sup1", `{"waiting_amber":1}`), 403, "only admins manage queues")
	r.want(r.do("GET", "/v1/queues/main", "sup2", ""), 403, "outside your groups")
	r.want(r.do("GET", "/v1/queues", "sup2", ""), 200, "[]")
	r.want(r.do("GET", "/v1/queues/nope", "boss", ""), 404, "not_found")
	r.want(r.do("DELETE", "/v1/queues/main", "boss", ""), 204, "")
	r.want(r.do("GET", "/v1/queues/main", "boss", ""), 404, "not_found")
}

func TestCallsAndSupervisorAPI(t *testing.T) {
	r := newRoutingAPI(t)
	r.want(r.do("POST", "/v1/queues", "boss", `{"id":"main","members":["sales"],"strategy":"round_robin"}`), 201, "")
	r.report(media.CallArrived{FactBase: media.FactBase{At: r.clock.Now()}, Leg: "cust-1", Caller: "+84901000001", Hotline: "+842800"})

	var calls []map[string]any
	x := r.do("GET", "/v1/calls?state=ringing&queue=main&direction=inbound", "sup1", "")
	r.want(x, 200, "")
	x.into(t, &calls)
	if len(calls) != 1 {
		t.Fatalf("calls = %s", x.body)
	}
	for _, k := range []string{"id", "customer_number", "hotline", "queue", "state", "state_since", "state_seconds", "agent", "answered_at", "started_at", "direction", "campaign", "monitor"} {
		if _, ok := calls[0][k]; !ok {
			t.Errorf("call lacks %q: %s", k, x.body)
		}
	}
	id := calls[0]["id"].(string)
	r.want(r.do("GET", "/v1/calls?direction=sideways", "boss", ""), 400, "direction: must be inbound or outbound")
	r.want(r.do("GET", "/v1/calls", "sup2", ""), 200, "[]")

	r.want(r.do("POST", "/v1/calls/"+id+"/listen", "sup1", ""), 409, "not answered")
	d, _ := r.media.DialOf("a1")
	r.report(media.LegAnswered{FactBase: media.FactBase{At: r.clock.Now()}, Leg: d.Result})
	r.want(r.do("GET", "/v1/calls/"+id, "boss", ""), 200, `"state":"answered"`)

	r.want(r.do("POST", "/v1/calls/"+id+"/listen", "sup2", ""), 403, "outside the groups you supervise")
	r.want(r.do("POST", "/v1/calls/"+id+"/listen", "sup1", `{"mode":"x"}`), 400, "unknown field mode")
	x = r.do("POST", "/v1/calls/"+id+"/listen", "sup1", `{"device":"PJSIP/desk1"}`)
	r.want(x, 201, `"supervisor":"sup1"`)
	var m map[string]any
	x.into(t, &m)
	mid := m["id"].(string)
	if m["mode"] != "listen" || m["paused"] != false {
		t.Fatalf("monitor = %s", x.body)
	}
	r.want(r.do("POST", "/v1/calls/"+id+"/whisper", "boss", ""), 409, "already monitored by sup1; one supervisor monitors a call at a time")
	r.want(r.do("POST", "/v1/calls/"+id+"/barge", "boss", ""), 409, "monitored by sup1; nobody else can barge into it")
	r.want(r.do("GET", "/v1/calls/"+id, "sup1", ""), 200, `"monitor":{"id":"`+mid)
	r.want(r.do("POST", "/v1/monitors/"+mid+"/pause", "sup1", ""), 200, `"paused":true`)
	r.want(r.do("POST", "/v1/monitors/"+mid+"/barge", "sup1", ""), 409, "is paused; resume it before barging")
	r.want(r.do("POST", "/v1/monitors/"+mid+"/resume", "sup1", ""), 200, `"paused":false`)
	r.want(r.do("POST", "/v1/monitors/"+mid+"/barge", "sup1", ""), 200, `"mode":"barge"`)
	r.want(r.do("POST", "/v1/agents/sup1/logout", "sup1", ""), 409, "sup1 has a running monitor")
	r.want(r.do("DELETE", "/v1/monitors/"+mid, "sup1", ""), 204, "")
	r.want(r.do("DELETE", "/v1/monitors/"+mid, "sup1", ""), 404, "is not running")
	r.want(r.do("POST", "/v1/agents/sup1/logout", "sup1", ""), 200, "")

	r.media.Fail = func(c routingtest.Command) error {
		if c.Op == "monitor" {
			return media.ErrNotSupported
		}
		return nil
	}
	r.want(r.do("POST", "/v1/calls/"+id+"/listen", "sup1", ""), 501, "not supported by this media path")
	r.media.Fail = nil

	r.want(r.do("POST", "/v1/calls/"+id+"/transfer", "sup1", `{}`), 400, "agent: is required")
	// A support agent is outside sup1's groups: 403, and nothing rings.
	r.user("b1", presence.RoleAgent, "support")
	avail := presence.StatusAvailable
	if _, err := r.svc.SetStatus(r.ctx, presence.System, "b1", &avail, nil); err != nil {
		t.Fatal(err)
	}
	r.want(r.do("POST", "/v1/calls/"+id+"/transfer", "sup1", `{"agent":"b1"}`), 403, "b1 is outside the groups you supervise")
	r.want(r.do("POST", "/v1/calls/"+id+"/listen", "sup1", `{"device":"PJSIP/b1"}`), 403, "belongs to b1")
	r.want(r.do("GET", "/v1/calls/"+id, "boss", ""), 200, `"agent":"a1"`)
	r.want(r.do("GET", "/v1/agents/b1", "boss", ""), 200, `"system_status":"available"`)
	if _, ok := r.media.DialOf("b1"); ok {
		t.Fatal("a refused transfer rang b1")
	}
	r.want(r.do("POST", "/v1/calls/"+id+"/transfer", "sup1", `{"agent":"a2"}`), 200, `"agent":"a2"`)
	r.want(r.do("POST", "/v1/calls/"+id+"/takeover", "sup1", ""), 409, "not answered")
	d2, _ := r.media.DialOf("a2")
	r.report(media.LegAnswered{FactBase: media.FactBase{At: r.clock.Now()}, Leg: d2.Result})
	r.want(r.do("POST", "/v1/calls/"+id+"/takeover", "sup1", ""), 200, `"agent":"sup1"`)
	r.want(r.do("POST", "/v1/calls/"+id+"/hangup", "a1", ""), 403, "forbidden")
	r.want(r.do("POST", "/v1/calls/"+id+"/hangup", "sup1", ""), 200, `"reason":"hung up by sup1"`)
	r.want(r.do("GET", "/v1/calls/"+id, "boss", ""), 404, "is not live")

	x = r.do("GET", "/v1/stats/today", "boss", "")
	r.want(x, 200, `"accepted":1`)
	var s map[string]any
	x.into(t, &s)
	for _, k := range []string{"accepted", "missed", "avg_wait_seconds", "in_ivr", "waiting", "talking", "agents", "day_start"} {
		if _, ok := s[k]; !ok {
			t.Errorf("stats lack %q: %s", k, x.body)
		}
	}
	r.want(r.do("GET", "/v1/stats/today", "sup1", ""), 403, "ask for ?queue= or ?group=")
	r.want(r.do("GET", "/v1/stats/today?group=sales", "sup1", ""), 200, `"group":"sales"`)
	r.want(r.do("GET", "/v1/stats/today?queue=nope", "boss", ""), 404, "not_found")
}

func TestOriginateAPI(t *testing.T) {
	r := newRoutingAPI(t)
	r.want(r.do("POST", "/v1/calls", "a1", `{"agent":"a1"}`), 400, "number: is required")
	r.want(r.do("POST", "/v1/calls", "a1", `{"agent":"a1","number":"12345"}`), 422, "unprocessable_number")
	r.want(r.do("POST", "/v1/calls", "a1", `{"agent":"a2","number":"+84901000009"}`), 403, "outside your groups")
	r.want(r.do("POST", "/v1/calls", "a1", `{"agent":"a1","number":"+84901000009","campaign":"renewals"}`), 201, `"campaign":"renewals"`)
	r.want(r.do("GET", "/v1/calls?direction=outbound", "a1", ""), 200, `"direction":"outbound"`)
	r.want(r.do("POST", "/v1/calls", "a1", `{"agent":"a1","number":"+84901000008"}`), 409, "cannot place a call now")
	r.media.Fail = func(c routingtest.Command) error {
		if c.Op == "dial" {
			return media.ErrMediaUnavailable
		}
		return nil
	}
	r.want(r.do("POST", "/v1/calls", "a2", `{"agent":"a2","number":"+84901000009"}`), 503, "media server unavailable")
}
