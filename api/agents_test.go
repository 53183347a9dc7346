package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// demo is the bundled demo floor served over httptest.
type demo struct {
	t     *testing.T
	srv   *httptest.Server
	store state.StoreLog
	svc   *presence.Service
}

func newDemo(t *testing.T, opts ...api.Option) *demo {
	t.Helper()
	return newDemoWith(t, func(*store.Memory, *presence.Service) []api.Option { return opts })
}

type response struct {
	status int
	body   []byte
	header http.Header
}

func (r response) decode(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (d *demo) do(method, path, token, body string) response {
	d.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, d.srv.URL+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, body: b, header: res.Header}
}

// snapshot is everything stored about agents and their history.
func (d *demo) snapshot() string {
	d.t.Helper()
	ctx := context.Background()
	var sb strings.Builder
	for _, k := range []state.Kind{state.KindAgent, state.KindGroup, state.KindStatus, state.KindToken} {
		recs, err := d.store.List(ctx, k)
		if err != nil {
			d.t.Fatal(err)
		}
		for _, r := range recs {
			sb.WriteString(string(r.Kind) + "/" + r.ID + "@" + string(rune('0'+r.Version%10)) + string(r.Data) + "\n")
		}
	}
	for _, id := range []string{"a1", "a5", "sup-sales"} {
		es, _ := d.store.Series(ctx, presence.HistorySeries(id), 0, 1<<62, 0)
		for _, e := range es {
			sb.Write(e.Data)
		}
	}
	return sb.String()
}

// TestErrorsKeepStateIntact runs every API.md error case for the agent
// endpoints and checks the status, the error shape, the field named, and
// that nothing stored changed.
func TestErrorsKeepStateIntact(t *testing.T) {
	d := newDemo(t)
	cases := []struct {
		name, method, path, token, body string
		status                          int
		code, field                     string
	}{
		{"no token", "GET", "/v1/agents", "", "", 401, "unauthenticated", ""},
		{"bad token", "GET", "/v1/agents", "nope-nope-nope", "", 401, "unauthenticated", ""},
		{"malformed JSON", "PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":`, 400, "invalid_json", ""},
		{"empty body", "PUT", "/v1/agents/a1/status", "demo-a1", "", 400, "invalid_json", ""},
		{"trailing data", "PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"} {}`, 400, "invalid_json", ""},
		{"unknown field", "PUT", "/v1/agents/a1/status", "demo-a1", `{"call_stats":"available"}`, 400, "unknown_field", "call_stats"},
		{"wrong type", "PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":7}`, 400, "invalid_call_status", "call_status"},
		{"unknown status id", "PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"napping"}`, 422, "unprocessable_call_status", "call_status"},
		{"rona by hand", "PUT", "/v1/agents/a1/status", "demo-sup-sales", `{"call_status":"rona"}`, 422, "unprocessable_call_status", "call_status"},
		{"unknown chat status", "PUT", "/v1/agents/a1/status", "demo-a1", `{"chat_status":"away"}`, 422, "unprocessable_chat_status", "chat_status"},
		{"nothing to change", "PUT", "/v1/agents/a1/status", "demo-a1", `{}`, 400, "invalid_call_status", "call_status"},
		{"other group's supervisor", "PUT", "/v1/agents/a5/status", "demo-sup-sales", `{"call_status":"available"}`, 403, "forbidden", ""},
		{"agent on a colleague", "PUT", "/v1/agents/a2/status", "demo-a1", `{"call_status":"available"}`, 403, "forbidden", ""},
		{"agent sees other group", "GET", "/v1/agents/a5", "demo-a1", "", 403, "forbidden", ""},
		{"unknown agent", "GET", "/v1/agents/zz", "demo-admin", "", 404, "not_found", ""},
		{"unknown route", "GET", "/v1/nope", "demo-admin", "", 404, "not_found", ""},
		{"non-E.164 phone", "PATCH", "/v1/agents/a1", "demo-admin", `{"phone":"0901000011"}`, 422, "unprocessable_phone", "phone"},
		{"bad email", "PATCH", "/v1/agents/a1", "demo-admin", `{"email":"a1-at-example"}`, 400, "invalid_email", "email"},
		{"bad role", "PATCH", "/v1/agents/a1", "demo-admin", `{"role":"king"}`, 400, "invalid_role", "role"},
		{"bad distribution", "PATCH", "/v1/agents/a1", "demo-admin", `{"distribution":"pigeon"}`, 400, "invalid_distribution", "distribution"},
		{"unknown group", "PATCH", "/v1/agents/a1", "demo-admin", `{"groups":["nope"]}`, 422, "unprocessable_groups", "groups"},
		{"supervisor edits profile", "PATCH", "/v1/agents/a1", "demo-sup-sales", `{"name":"X"}`, 403, "forbidden", ""},
		{"create without id", "POST", "/v1/agents", "demo-admin", `{"name":"N","email":"n@example.com"}`, 400, "invalid_id", "id"},
		{"create bad id", "POST", "/v1/agents", "demo-admin", `{"id":"Bad Id","name":"N","email":"n@example.com"}`, 400, "invalid_id", "id"},
		{"create duplicate", "POST", "/v1/agents", "demo-admin", `{"id":"a1","name":"N","email":"n@example.com"}`, 409, "conflict", ""},
		{"create non-E.164", "POST", "/v1/agents", "demo-admin", `{"id":"a9","name":"N","email":"n@example.com","phone":"+84"}`, 422, "unprocessable_phone", "phone"},
		{"agent creates", "POST", "/v1/agents", "demo-a1", `{"id":"a9","name":"N","email":"n@example.com"}`, 403, "forbidden", ""},
		{"bad history time", "GET", "/v1/agents/a1/history?from=yesterday", "demo-admin", "", 400, "invalid_from", "from"},
		{"bad online filter", "GET", "/v1/agents?online=maybe", "demo-admin", "", 400, "invalid_online", "online"},
		{"bad system filter", "GET", "/v1/agents?system_status=asleep", "demo-admin", "", 400, "invalid_system_status", "system_status"},
		{"custom status clash", "POST", "/v1/statuses", "demo-admin", `{"id":"available","name":"A"}`, 409, "conflict", ""},
		{"custom status by agent", "POST", "/v1/statuses", "demo-a1", `{"id":"gym","name":"Gym"}`, 403, "forbidden", ""},
		{"delete builtin status", "DELETE", "/v1/statuses/available", "demo-admin", "", 409, "conflict", ""},
		{"delete group in use", "DELETE", "/v1/groups/sales", "demo-admin", "", 409, "conflict", ""},
		{"group agent supervisor", "PATCH", "/v1/groups/sales", "demo-admin", `{"supervisors":["a1"]}`, 422, "unprocessable_supervisors", "supervisors"},
		{"logout other group", "POST", "/v1/agents/a5/logout", "demo-sup-sales", "", 403, "forbidden", ""},
		{"wrapup not in wrapup", "POST", "/v1/agents/a1/wrapup/end", "demo-a1", "", 409, "conflict", ""},
		{"wrong content type", "PUT", "/v1/agents/a1/status", "demo-a1", "", 415, "unsupported_media_type", ""},
	}
	before := d.snapshot()
	for _, c := range cases {
		var r response
		if c.name == "wrong content type" {
			req, _ := http.NewRequest(c.method, d.srv.URL+c.path, strings.NewReader(`call_status=available`))
			req.Header.Set("Authorization", "Bearer "+c.token)
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			r = response{status: res.StatusCode, body: b}
		} else {
			r = d.do(c.method, c.path, c.token, c.body)
		}
		if r.status != c.status {
			t.Errorf("%s: status %d, want %d (%s)", c.name, r.status, c.status, r.body)
			continue
		}
		var e struct {
			Error struct{ Code, Message, Field string } `json:"error"`
		}
		if err := json.Unmarshal(r.body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s: body %s is not API.md's error shape", c.name, r.body)
			continue
		}
		if e.Error.Code != c.code {
			t.Errorf("%s: code %q, want %q (%s)", c.name, e.Error.Code, c.code, e.Error.Message)
		}
		if c.field != "" && (e.Error.Field != c.field || !strings.Contains(e.Error.Message, c.field)) {
			t.Errorf("%s: field %q / message %q, want field %q named", c.name, e.Error.Field, e.Error.Message, c.field)
		}
	}
	if after := d.snapshot(); after != before {
		t.Errorf("refused requests changed stored state:\nbefore %s\nafter  %s", before, after)
	}
}

func TestAgentLifecycleOverHTTP(t *testing.T) {
	d := newDemo(t)
	// Heartbeat logs a1 in: online, default idle status.
	r := d.do("POST", "/v1/agents/a1/heartbeat", "demo-a1", "")
	var a presence.AgentView
	r.decode(t, &a)
	if r.status != 200 || !a.Online || a.CallStatus != "unavailable" {
		t.Fatalf("heartbeat: %d %s", r.status, r.body)
	}
	r = d.do("PUT", "/v1/agents/a1/status", "demo-sup-sales", `{"call_status":"training","chat_status":"available"}`)
	r.decode(t, &a)
	if r.status != 200 || a.CallStatus != "training" || a.ChatStatus != "available" {
		t.Fatalf("status: %d %s", r.status, r.body)
	}
	// Filters.
	var list []presence.AgentView
	d.do("GET", "/v1/agents?call_status=training&online=true", "demo-admin", "").decode(t, &list)
	if len(list) != 1 || list[0].ID != "a1" {
		t.Errorf("filtered list: %+v", list)
	}
	d.do("GET", "/v1/agents", "demo-sup-sales", "").decode(t, &list)
	for _, x := range list {
		if !contains(x.Groups, "sales") {
			t.Errorf("sales supervisor sees %s of %v", x.ID, x.Groups)
		}
	}
	if len(list) != 5 {
		t.Errorf("sales supervisor sees %d agents, want 5 (sup + a1-a4)", len(list))
	}
	// History rows carry who changed what.
	var rows []presence.HistoryRow
	d.do("GET", "/v1/agents/a1/history", "demo-a1", "").decode(t, &rows)
	var got []string
	for _, x := range rows {
		got = append(got, string(x.Field)+":"+x.From+"→"+x.To+"@"+x.By)
	}
	want := "online:false→true@a1 call_status:unavailable→training@sup-sales chat_status:unavailable→available@sup-sales"
	if strings.Join(got, " ") != want {
		t.Errorf("history = %v\nwant      %s", got, want)
	}
	// Admin CRUD round trip.
	r = d.do("POST", "/v1/agents", "demo-admin", `{"id":"a9","name":"New Agent","email":"a9@example.com","phone":"+84901000019","groups":["support"],"distribution":"phone"}`)
	if r.status != 201 {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	r = d.do("PATCH", "/v1/agents/a9", "demo-admin", `{"name":"Renamed"}`)
	r.decode(t, &a)
	if r.status != 200 || a.Name != "Renamed" || a.Phone != "+84901000019" {
		t.Fatalf("patch: %d %s", r.status, r.body)
	}
	if r = d.do("DELETE", "/v1/agents/a9", "demo-admin", ""); r.status != 204 {
		t.Fatalf("delete: %d %s", r.status, r.body)
	}
	if r = d.do("GET", "/v1/agents/a9", "demo-admin", ""); r.status != 404 {
		t.Fatalf("after delete: %d", r.status)
	}
	// Logout.
	r = d.do("POST", "/v1/agents/a1/logout", "demo-a1", "")
	r.decode(t, &a)
	if r.status != 200 || a.Online || a.CallStatus != "unavailable" {
		t.Fatalf("logout: %d %s", r.status, r.body)
	}
	// Statuses and groups.
	if r = d.do("POST", "/v1/statuses", "demo-admin", `{"id":"coaching","name":"Coaching"}`); r.status != 201 {
		t.Fatalf("create status: %d %s", r.status, r.body)
	}
	var sts []presence.CallStatusDef
	d.do("GET", "/v1/statuses", "demo-a1", "").decode(t, &sts)
	if len(sts) != 7 || sts[0].ID != "available" || !sts[0].Builtin || sts[6].ID != "training" {
		t.Errorf("statuses: %+v", sts)
	}
	if r = d.do("DELETE", "/v1/statuses/coaching", "demo-admin", ""); r.status != 204 {
		t.Fatalf("delete status: %d %s", r.status, r.body)
	}
	if r = d.do("POST", "/v1/groups", "demo-admin", `{"id":"vip","name":"VIP","supervisors":["sup-sales"]}`); r.status != 201 {
		t.Fatalf("create group: %d %s", r.status, r.body)
	}
	var groups []presence.Group
	d.do("GET", "/v1/groups", "demo-sup-sales", "").decode(t, &groups)
	if len(groups) != 2 {
		t.Errorf("sup-sales groups: %+v", groups)
	}
	if r = d.do("DELETE", "/v1/groups/vip", "demo-admin", ""); r.status != 204 {
		t.Fatalf("delete group: %d %s", r.status, r.body)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	d := newDemo(t)
	if r := d.do("GET", "/v1/healthz", "", ""); r.status != 200 {
		t.Errorf("healthz %d", r.status)
	}
	if r := d.do("GET", "/v1/readyz", "", ""); r.status != 200 {
		t.Errorf("readyz %d %s", r.status, r.body)
	}
	notReady := newDemo(t, api.WithReadiness(func(context.Context) error { return io.ErrClosedPipe }))
	if r := notReady.do("GET", "/v1/readyz", "", ""); r.status != 503 {
		t.Errorf("readyz with a failing check: %d", r.status)
	}
	d.store.Close()
	if r := d.do("GET", "/v1/readyz", "", ""); r.status != 503 {
		t.Errorf("readyz with a closed store: %d %s", r.status, r.body)
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}
