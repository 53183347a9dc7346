package api_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/presence"
)

// TestHistoryPaging: a long history comes in pages (default and at most
// 1,000 rows) linked by X-Next-Cursor / Link; following them yields every
// row exactly once, in order, even where rows share a millisecond.
func TestHistoryPaging(t *testing.T) {
	lim := api.DefaultLimits()
	lim.RequestsPerSecond = 0
	d := newDemo(t, api.WithLimits(lim))
	ctx := context.Background()
	statuses := []string{"available", "lunch_break", "short_break", "unavailable"}
	for i := range 1300 {
		st := statuses[i%len(statuses)]
		if _, err := d.svc.SetStatus(ctx, presence.System, "a1", &st, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Everything, straight from the store (the service's pages are the
	// thing under test).
	entries, err := d.store.Series(ctx, presence.HistorySeries("a1"), 0, 1<<62, 0)
	if err != nil {
		t.Fatal(err)
	}
	var all []presence.HistoryRow
	ms := map[int64]bool{}
	for _, e := range entries {
		var r presence.HistoryRow
		if err := json.Unmarshal(e.Data, &r); err != nil {
			t.Fatal(err)
		}
		r.At = r.At.In(d.svc.Location())
		all = append(all, r)
		ms[e.Score] = true
	}
	t.Logf("%d history rows over %d distinct milliseconds", len(all), len(ms))
	if len(all) < 1300 {
		t.Fatalf("history has %d rows, want at least 1300", len(all))
	}
	first := d.do("GET", "/v1/agents/a1/history", "demo-admin", "")
	var rows []presence.HistoryRow
	first.decode(t, &rows)
	if len(rows) != presence.MaxPage || first.header.Get("X-Next-Cursor") == "" || !strings.Contains(first.header.Get("Link"), `rel="next"`) {
		t.Fatalf("default page: %d rows, cursor %q, link %q (history has %d)", len(rows), first.header.Get("X-Next-Cursor"), first.header.Get("Link"), len(all))
	}
	var got []presence.HistoryRow
	path, pages := "/v1/agents/a1/history?limit=97", 0
	for path != "" {
		r := d.do("GET", path, "demo-admin", "")
		if r.status != http.StatusOK {
			t.Fatalf("%s: %d %s", path, r.status, r.body)
		}
		var page []presence.HistoryRow
		r.decode(t, &page)
		got = append(got, page...)
		pages++
		path = ""
		if next := r.header.Get("X-Next-Cursor"); next != "" {
			path = "/v1/agents/a1/history?limit=97&cursor=" + url.QueryEscape(next)
		}
		if pages > 100 {
			t.Fatal("paging does not end")
		}
	}
	if len(got) != len(all) || !reflect.DeepEqual(jsonOf(t, got), jsonOf(t, all)) {
		t.Fatalf("paged %d rows in %d pages, history has %d (or they differ)", len(got), pages, len(all))
	}
	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x", "?cursor=nope", "?cursor=-1.0"} {
		if r := d.do("GET", "/v1/agents/a1/history"+bad, "demo-admin", ""); r.status != http.StatusBadRequest {
			t.Errorf("history%s: %d %s, want 400", bad, r.status, r.body)
		}
	}
}

// TestAgentListPaging: ?limit= pages the agent list by id with the same
// headers; following them yields the whole list once.
func TestAgentListPaging(t *testing.T) {
	d := newDemo(t)
	var all []presence.AgentView
	d.do("GET", "/v1/agents", "demo-admin", "").decode(t, &all)
	var got []string
	path := "/v1/agents?limit=3"
	for path != "" {
		r := d.do("GET", path, "demo-admin", "")
		var page []presence.AgentView
		r.decode(t, &page)
		if len(page) > 3 {
			t.Fatalf("page of %d", len(page))
		}
		for _, a := range page {
			got = append(got, a.ID)
		}
		path = ""
		if next := r.header.Get("X-Next-Cursor"); next != "" {
			path = "/v1/agents?limit=3&cursor=" + url.QueryEscape(next)
		}
	}
	var want []string
	for _, a := range all {
		want = append(want, a.ID)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged %v, want %v", got, want)
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
