package api_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/reports"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// reportsDemo is the demo floor with the reports endpoints over a SQLite
// database holding three calls of the day: an answered sales call, an
// abandoned support call and an answered sales call with one RONA.
type reportsDemo struct {
	*demo
	db   *reports.DB
	day  time.Time
	loc  *time.Location
	base time.Time
}

func newReportsDemo(t *testing.T) *reportsDemo {
	t.Helper()
	db, err := reports.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "reports.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sl := func(context.Context) (map[string]int, error) { return map[string]int{"sales": 20, "support": 20}, nil }
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	svc := presence.NewService(st, presence.WithLocation(cfg.Location()))
	if err := config.Bootstrap(context.Background(), cfg, svc); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(svc, st, api.WithRoutes(api.ReportsRoutes(db, svc, sl))).Handler())
	t.Cleanup(func() { srv.Close(); st.Close() })
	d := &demo{t: t, srv: srv, store: st, svc: svc}
	loc := d.svc.Location()
	now := d.svc.Now().In(loc)
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, loc)
	rd := &reportsDemo{demo: d, db: db, day: day, loc: loc, base: day.Add(9 * time.Hour)}
	rd.seed(t)
	return rd
}

// ended builds the call_ended event routing commits for a finished call.
func ended(id, queue, agent, caller string, groups []string, start time.Time, answerAfter, talk time.Duration, attempts []routing.AttemptEnded, reason string) state.Event {
	v := routing.CallView{ID: id, CustomerNumber: caller, Hotline: "+842873000001", Queue: queue, State: routing.StateRinging,
		StartedAt: start, Direction: routing.DirectionInbound}
	end := start.Add(answerAfter + talk)
	r := &routing.CallReport{At: end, EnqueuedAt: start, RingStartedAt: start}
	if agent != "" {
		v.Agent = &agent
	}
	if talk > 0 {
		a := start.Add(answerAfter)
		v.AnsweredAt, r.AnsweredAt, v.State = &a, &a, routing.StateAnswered
	}
	r.Attempts = attempts
	v.Ended = &routing.EndedInfo{At: end, Reason: reason}
	v.Report = r
	b, _ := json.Marshal(v)
	return state.Event{Type: routing.EventCallEnded, Scope: state.Scope{Queue: queue, Groups: groups}, Data: b, At: end}
}

func (rd *reportsDemo) seed(t *testing.T) {
	b := rd.base
	att := func(agent string, from, to time.Duration, outcome string) routing.AttemptEnded {
		return routing.AttemptEnded{Agent: agent, Kind: routing.OfferRouted, StartedAt: b.Add(from), EndedAt: b.Add(to), Outcome: outcome}
	}
	evs := []state.Event{
		ended("c1", "sales", "a1", "+84900000001", []string{"sales"}, b, 4*time.Second, 60*time.Second,
			[]routing.AttemptEnded{att("a1", 0, 4*time.Second, "answered")}, "caller hung up"),
		ended("c2", "support", "a5", "+84900000002", []string{"support"}, b.Add(time.Hour), 7*time.Second, 0,
			[]routing.AttemptEnded{{Agent: "a5", Kind: routing.OfferRouted, StartedAt: b.Add(time.Hour), EndedAt: b.Add(time.Hour + 7*time.Second), Outcome: "cancelled"}}, "caller hung up"),
		ended("c3", "sales", "a2", "+84900000003", []string{"sales"}, b.Add(2*time.Hour), 25*time.Second, 30*time.Second,
			[]routing.AttemptEnded{
				{Agent: "a1", Kind: routing.OfferRouted, StartedAt: b.Add(2 * time.Hour), EndedAt: b.Add(2*time.Hour + 18*time.Second), Outcome: "no_answer"},
				{Agent: "a2", Kind: routing.OfferRouted, StartedAt: b.Add(2*time.Hour + 18*time.Second), EndedAt: b.Add(2*time.Hour + 25*time.Second), Outcome: "answered"},
			}, "agent hung up"),
	}
	// a1 made themself available at 08:30 (an agent event with its
	// history row).
	av, _ := json.Marshal(presence.AgentView{ID: "a1", Name: "An Nguyen", Groups: []string{"sales"}, Distribution: presence.DistApp,
		Changes: []presence.HistoryRow{{At: b.Add(-30 * time.Minute), Field: presence.FieldCallStatus, From: "unavailable", To: "available", By: "a1"}}})
	evs = append(evs, state.Event{Type: presence.EventAgent, Scope: state.Scope{Agent: "a1", Groups: []string{"sales"}}, Data: av})
	for i := range evs {
		evs[i].ID = string(rune('1' + i))
	}
	if err := rd.db.Apply(context.Background(), "", "", evs, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func (rd *reportsDemo) get(path, token string, hdr ...string) response {
	rd.t.Helper()
	req, _ := http.NewRequest("GET", rd.srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		rd.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	return response{status: res.StatusCode, body: buf.Bytes(), header: res.Header}
}

type callPage struct {
	Items      []reports.CallRow `json:"items"`
	NextCursor *string           `json:"next_cursor"`
}

func TestReportsCallsJSONScopedAndPaged(t *testing.T) {
	rd := newReportsDemo(t)
	var p callPage
	res := rd.get("/v1/reports/calls", "demo-admin")
	if res.status != 200 {
		t.Fatalf("status %d: %s", res.status, res.body)
	}
	res.decode(t, &p)
	if len(p.Items) != 3 || p.NextCursor != nil || p.Items[0].ID != "c1" || *p.Items[0].TalkSeconds != 60 || *p.Items[0].WaitSeconds != 4 ||
		p.Items[1].Outcome != "abandoned" || p.Items[2].HungUpBy != "agent" {
		t.Fatalf("admin calls: %s", res.body)
	}
	// Times are in the account's time zone.
	if !strings.HasSuffix(p.Items[0].StartedAt.Format(time.RFC3339), rd.base.Format("Z07:00")) {
		t.Fatalf("started_at %v not in the account zone", p.Items[0].StartedAt)
	}
	// A sales supervisor sees the sales calls; a support agent the support call.
	rd.get("/v1/reports/calls", "demo-sup-sales").decode(t, &p)
	if len(p.Items) != 2 || p.Items[0].ID != "c1" || p.Items[1].ID != "c3" {
		t.Fatalf("sup-sales sees %+v", p.Items)
	}
	rd.get("/v1/reports/calls", "demo-a5").decode(t, &p)
	if len(p.Items) != 1 || p.Items[0].ID != "c2" {
		t.Fatalf("a5 sees %+v", p.Items)
	}
	// Filters.
	rd.get("/v1/reports/calls?outcome=answered&queue=sales&customer_number=%2B84900000003", "demo-admin").decode(t, &p)
	if len(p.Items) != 1 || p.Items[0].ID != "c3" {
		t.Fatalf("filtered: %+v", p.Items)
	}
	// Paging: two pages of 2 and 1.
	rd.get("/v1/reports/calls?limit=2", "demo-admin").decode(t, &p)
	if len(p.Items) != 2 || p.NextCursor == nil {
		t.Fatalf("page 1: %+v", p)
	}
	rd.get("/v1/reports/calls?limit=2&cursor="+url.QueryEscape(*p.NextCursor), "demo-admin").decode(t, &p)
	if len(p.Items) != 1 || p.Items[0].ID != "c3" || p.NextCursor != nil {
		t.Fatalf("page 2: %+v", p)
	}
	// A range that excludes the day: nothing.
	y := rd.day.AddDate(0, 0, -1).Format(time.DateOnly)
	rd.get("/v1/reports/calls?from="+y+"&to="+y, "demo-admin").decode(t, &p)
	if len(p.Items) != 0 {
		t.Fatalf("yesterday: %+v", p.Items)
	}
	// RFC 3339 range around the second call only.
	from := url.QueryEscape(rd.base.Add(time.Hour - time.Minute).Format(time.RFC3339))
	to := url.QueryEscape(rd.base.Add(time.Hour + time.Minute).Format(time.RFC3339))
	rd.get("/v1/reports/calls?from="+from+"&to="+to, "demo-admin").decode(t, &p)
	if len(p.Items) != 1 || p.Items[0].ID != "c2" {
		t.Fatalf("RFC 3339 range: %+v", p.Items)
	}
}

func TestReportsCSV(t *testing.T) {
	rd := newReportsDemo(t)
	for _, r := range []response{rd.get("/v1/reports/calls?format=csv", "demo-admin"), rd.get("/v1/reports/calls", "demo-admin", "Accept", "text/csv")} {
		if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/csv") {
			t.Fatalf("csv: %d %s", r.status, r.header.Get("Content-Type"))
		}
		recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 4 || strings.Join(recs[0][:4], ",") != "id,direction,customer_number,hotline" {
			t.Fatalf("csv: %q", recs)
		}
		col := map[string]int{}
		for i, h := range recs[0] {
			col[h] = i
		}
		if recs[1][col["talk_seconds"]] != "60" || recs[2][col["talk_seconds"]] != "" || recs[2][col["outcome"]] != "abandoned" ||
			recs[3][col["wait_seconds"]] != "25" || recs[1][col["started_at"]] != rd.base.Format(time.RFC3339) {
			t.Fatalf("csv rows: %q", recs)
		}
	}
	r := rd.get("/v1/reports/agents?format=csv", "demo-admin")
	recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if err != nil || r.status != 200 {
		t.Fatalf("agents csv %d %v", r.status, err)
	}
	if recs[0][0] != "agent" || len(recs) != 4 { // a1, a2, a5
		t.Fatalf("agents csv: %q", recs)
	}
	r = rd.get("/v1/reports/attempts?format=csv&outcome=no_answer", "demo-admin")
	recs, _ = csv.NewReader(bytes.NewReader(r.body)).ReadAll()
	if len(recs) != 2 || recs[1][2] != "a1" {
		t.Fatalf("attempts csv: %q", recs)
	}
}

// failingRows is the reports database failing in the middle of a read:
// after the first row of a page.
type failingRows struct{ *reports.DB }

var errMidRead = errors.New("disk I/O error")

func (f failingRows) EachCall(ctx context.Context, q reports.Query, fl reports.CallFilter, p reports.Page[reports.CallRow]) error {
	n := 0
	return f.DB.EachCall(ctx, q, fl, reports.Page[reports.CallRow]{Start: p.Start, Row: func(r *reports.CallRow) error {
		if n++; n > 1 {
			return errMidRead
		}
		return p.Row(r)
	}})
}

// TestReportsCSVExportPagesAndFailures: a CSV export names the next
// page's cursor in X-Next-Cursor before its rows and the pages add up to
// the day; a database that fails before the first row answers 503 in the
// error shape; one that fails after rows went out cuts the response
// short, so the client sees an error rather than a complete-looking file.
func TestReportsCSVExportPagesAndFailures(t *testing.T) {
	rd := newReportsDemo(t)
	var ids []string
	path := "/v1/reports/calls?format=csv&limit=2"
	for pages := 0; ; pages++ {
		r := rd.get(path, "demo-admin")
		recs, err := csv.NewReader(bytes.NewReader(r.body)).ReadAll()
		if r.status != 200 || err != nil || len(recs) < 2 || recs[0][0] != "id" {
			t.Fatalf("page %d: %d %v %q", pages, r.status, err, recs)
		}
		for _, rec := range recs[1:] {
			ids = append(ids, rec[0])
		}
		next := r.header.Get("X-Next-Cursor")
		if next == "" {
			break
		}
		if pages > 3 || len(recs) != 3 {
			t.Fatalf("page %d of 2 rows: %q, next %q", pages, recs, next)
		}
		path = "/v1/reports/calls?format=csv&limit=2&cursor=" + url.QueryEscape(next)
	}
	if strings.Join(ids, " ") != "c1 c2 c3" {
		t.Fatalf("the pages hold %v; want c1 c2 c3", ids)
	}

	sl := func(context.Context) (map[string]int, error) { return map[string]int{}, nil }
	failing := httptest.NewServer(api.New(rd.svc, rd.store, api.WithRoutes(api.ReportsRoutes(failingRows{rd.db}, rd.svc, sl))).Handler())
	defer failing.Close()
	req, _ := http.NewRequest("GET", failing.URL+"/v1/reports/calls?format=csv", nil)
	req.Header.Set("Authorization", "Bearer demo-admin")
	// The rows are buffered, so the cut may come before the status line
	// reaches the client or after some rows: an error either way.
	res, err := http.DefaultClient.Do(req)
	if err == nil {
		body, rerr := io.ReadAll(res.Body)
		res.Body.Close()
		if rerr == nil {
			t.Fatalf("a read failing after the first row: %d %q, read whole; want the response cut short", res.StatusCode, body)
		}
	}

	closed, err := reports.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "closed.db"))
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	down := httptest.NewServer(api.New(rd.svc, rd.store, api.WithRoutes(api.ReportsRoutes(closed, rd.svc, sl))).Handler())
	defer down.Close()
	for _, f := range []string{"csv", "json"} {
		req, _ = http.NewRequest("GET", down.URL+"/v1/reports/calls?format="+f, nil)
		req.Header.Set("Authorization", "Bearer demo-admin")
		res, err = http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e struct{ Error api.Error }
		_ = json.NewDecoder(res.Body).Decode(&e)
		res.Body.Close()
		if res.StatusCode != 503 || e.Error.Code != "reports_unavailable" {
			t.Errorf("%s from a closed database: %d %+v; want 503 reports_unavailable", f, res.StatusCode, e.Error)
		}
	}
}

func TestReportsStatuses(t *testing.T) {
	rd := newReportsDemo(t)
	var p struct{ Items []reports.IntervalRow }
	rd.get("/v1/reports/statuses?agent=a1&field=call_status", "demo-sup-sales").decode(t, &p)
	if len(p.Items) != 1 || p.Items[0].Status != "available" || p.Items[0].ChangedBy != "a1" || p.Items[0].To != nil ||
		!p.Items[0].From.Equal(rd.base.Add(-30*time.Minute)) {
		t.Fatalf("a1 statuses: %+v", p.Items)
	}
	rd.get("/v1/reports/statuses", "demo-sup-support").decode(t, &p)
	if len(p.Items) != 0 {
		t.Fatalf("support supervisor sees sales agents' statuses: %+v", p.Items)
	}
	if r := rd.get("/v1/reports/statuses?field=mood", "demo-admin"); r.status != 400 {
		t.Fatalf("bad field: %d", r.status)
	}
}

func TestReportsAgentsAndQueues(t *testing.T) {
	rd := newReportsDemo(t)
	var ag struct{ Items []reports.AgentRow }
	rd.get("/v1/reports/agents", "demo-admin").decode(t, &ag)
	got := map[string]reports.AgentRow{}
	for _, a := range ag.Items {
		got[a.Agent] = a
	}
	if got["a1"].Offered != 2 || got["a1"].Answered != 1 || got["a1"].NoAnswer != 1 || got["a2"].Answered != 1 || got["a5"].Offered != 1 {
		t.Fatalf("agents: %+v", ag.Items)
	}
	var qs struct{ Items []reports.QueueRow }
	rd.get("/v1/reports/queues?interval=day", "demo-admin").decode(t, &qs)
	if len(qs.Items) != 2 {
		t.Fatalf("queues: %+v", qs.Items)
	}
	for _, q := range qs.Items {
		switch q.Queue {
		case "sales":
			if q.Offered != 2 || q.Answered != 2 || q.AnsweredWithinSL != 1 || *q.ServiceLevelPercent != 50 || q.MaxWaitSeconds != 25 || q.AvgTalkSeconds != 45 || !q.IntervalStart.Equal(rd.day) {
				t.Fatalf("sales: %+v", q)
			}
		case "support":
			if q.Offered != 1 || q.Abandoned != 1 || *q.ServiceLevelPercent != 0 {
				t.Fatalf("support: %+v", q)
			}
		}
	}
	rd.get("/v1/reports/queues?interval=hour&queue=sales", "demo-admin").decode(t, &qs)
	if len(qs.Items) != 2 || !qs.Items[0].IntervalStart.Equal(rd.base) || !qs.Items[1].IntervalStart.Equal(rd.base.Add(2*time.Hour)) {
		t.Fatalf("hourly: %+v", qs.Items)
	}
}

func TestReportsBadInputAndStatus(t *testing.T) {
	rd := newReportsDemo(t)
	for path, code := range map[string]string{
		"/v1/reports/calls?from=yesterday":                "invalid_from",
		"/v1/reports/calls?to=2026-13-01":                 "invalid_to",
		"/v1/reports/calls?from=2026-11-02&to=2026-11-01": "invalid_to",
		"/v1/reports/calls?from=2020-01-01&to=2026-01-01": "invalid_to",
		"/v1/reports/calls?limit=0":                       "invalid_limit",
		"/v1/reports/calls?limit=5000":                    "invalid_limit",
		"/v1/reports/calls?cursor=@@@":                    "invalid_cursor",
		"/v1/reports/calls?cursor=bm9wZQ":                 "invalid_cursor",
		"/v1/reports/calls?direction=sideways":            "invalid_direction",
		"/v1/reports/calls?outcome=maybe":                 "invalid_outcome",
		"/v1/reports/attempts?outcome=maybe":              "invalid_outcome",
		"/v1/reports/queues?interval=week":                "invalid_interval",
		"/v1/reports/calls?format=xml":                    "invalid_format",
	} {
		r := rd.get(path, "demo-admin")
		var e struct{ Error api.Error }
		_ = json.Unmarshal(r.body, &e)
		if r.status != 400 || e.Error.Code != code {
			t.Errorf("%s: %d %s; want 400 %s", path, r.status, r.body, code)
		}
	}
	if r := rd.get("/v1/reports/calls", "nope"); r.status != 401 {
		t.Fatalf("bad token: %d", r.status)
	}
	if r := rd.get("/v1/reports/status", "demo-sup-sales"); r.status != 403 {
		t.Fatalf("status for a supervisor: %d", r.status)
	}
	var st struct {
		Position      string        `json:"position"`
		EventsApplied int64         `json:"events_applied"`
		Gaps          int64         `json:"gaps"`
		GapList       []reports.Gap `json:"gap_list"`
	}
	rd.get("/v1/reports/status", "demo-admin").decode(t, &st)
	if st.Position != "4" || st.EventsApplied != 4 || st.Gaps != 0 || st.GapList == nil {
		t.Fatalf("status: %+v", st)
	}
}

// Every reports response validates against the OpenAPI document.
func TestReportsMatchOpenAPI(t *testing.T) {
	rd := newReportsDemo(t)
	doc, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/v1/reports/calls", "/v1/reports/calls?limit=1", "/v1/reports/attempts", "/v1/reports/monitors", "/v1/reports/statuses",
		"/v1/reports/agents", "/v1/reports/queues?interval=hour", "/v1/reports/status", "/v1/reports/calls?format=csv",
		"/v1/reports/calls?limit=-1", "/v1/reports/status?x=1"} {
		for _, tok := range []string{"demo-admin", "demo-a1"} {
			req := httptest.NewRequest("GET", rd.srv.URL+p, nil)
			route, params, err := router.FindRoute(req)
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
				Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}}
			res := rd.get(p, tok)
			out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: res.status,
				Header: http.Header{"Content-Type": []string{res.header.Get("Content-Type")}}, Options: &openapi3filter.Options{IncludeResponseStatus: true}}
			out.SetBodyBytes(res.body)
			if err := openapi3filter.ValidateResponse(context.Background(), out); err != nil {
				t.Errorf("%s (%s) → %d: %v\n%s", p, tok, res.status, err, res.body)
			}
		}
	}
}

// FuzzParseReportTime: from/to never panic; a date is local midnight.
func FuzzParseReportTime(f *testing.F) {
	for _, s := range []string{"2026-11-21", "2026-11-21T08:00:00+07:00", "2026-02-30", "", "9999-99-99", "2026-11-21T08:00:00Z"} {
		f.Add(s)
	}
	loc, _ := time.LoadLocation("Asia/Ho_Chi_Minh")
	f.Fuzz(func(t *testing.T, s string) {
		tm, date, err := api.ParseReportTime(s, loc)
		if err != nil {
			return
		}
		if date && (tm.In(loc).Hour() != 0 || tm.In(loc).Minute() != 0 || tm.In(loc).Format(time.DateOnly) != s) {
			t.Fatalf("%q → %v", s, tm)
		}
	})
}
