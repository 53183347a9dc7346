package reports_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/internal/cpustat"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/reports"
	"github.com/callfloor/callfloor/store"
)

// benchHTTPReports times every report endpoint, through the HTTP API
// (handler, scoping, encoding and the client reading the whole body),
// over a 100,000-call day (docs/performance.md, Reports): one page as
// the API returns it by default, and the whole day exported as CSV.
func benchHTTPReports(b *testing.B, db *reports.DB) {
	ctx := context.Background()
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	reports.SeedDay(b, db, day, 100000)
	if err := db.Analyze(); err != nil {
		b.Fatal(err)
	}
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		b.Fatal(err)
	}
	st := store.NewMemory()
	defer st.Close()
	svc := presence.NewService(st, presence.WithLocation(cfg.Location()))
	if err := config.Bootstrap(ctx, cfg, svc); err != nil {
		b.Fatal(err)
	}
	sl := func(context.Context) (map[string]int, error) {
		m := map[string]int{}
		for i := range 20 {
			m["q"+string(rune('0'+i/10))+string(rune('0'+i%10))] = 20
		}
		return m, nil
	}
	srv := httptest.NewServer(api.New(svc, st, api.WithRoutes(api.ReportsRoutes(db, svc, sl))).Handler())
	defer srv.Close()
	rng := "from=" + url.QueryEscape(day.Format(time.RFC3339)) + "&to=" + url.QueryEscape(day.Add(24*time.Hour).Format(time.RFC3339))
	for _, bc := range []struct{ name, path string }{
		{"calls/page", "/v1/reports/calls?" + rng},
		{"calls/export_day_csv", "/v1/reports/calls?format=csv&" + rng},
		{"attempts/page", "/v1/reports/attempts?" + rng},
		{"attempts/export_day_csv", "/v1/reports/attempts?format=csv&" + rng},
		{"monitors/page", "/v1/reports/monitors?" + rng},
		{"monitors/export_day_csv", "/v1/reports/monitors?format=csv&" + rng},
		{"statuses/page", "/v1/reports/statuses?" + rng},
		{"statuses/export_day_csv", "/v1/reports/statuses?format=csv&" + rng},
		{"agents/day", "/v1/reports/agents?" + rng},
		{"agents/day_csv", "/v1/reports/agents?format=csv&" + rng},
		{"queues/hour", "/v1/reports/queues?interval=hour&" + rng},
		{"queues/day_csv", "/v1/reports/queues?interval=day&format=csv&" + rng},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var size, lines int64
			ops, cpu0 := 0, cpustat.Self()
			for b.Loop() {
				size, lines = get(b, srv.URL+bc.path)
				ops++
			}
			// The process's CPU per request: server and client, and for
			// SQLite the database too (PostgreSQL's server is not in it).
			b.ReportMetric(float64((cpustat.Self()-cpu0)/time.Duration(max(ops, 1)))/1e6, "cpu-ms/op")
			b.ReportMetric(float64(size), "bytes")
			b.ReportMetric(float64(lines), "lines")
		})
	}
}

// get reads the whole answer and counts its lines (a CSV's rows + 1).
func get(b *testing.B, u string) (size, lines int64) {
	req, _ := http.NewRequest("GET", u, nil)
	req.Header.Set("Authorization", "Bearer demo-admin")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		body, _ := io.ReadAll(res.Body)
		b.Fatalf("GET %s: %d %s", u, res.StatusCode, body)
	}
	r := bufio.NewReaderSize(res.Body, 64<<10)
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		size += int64(n)
		lines += int64(bytes.Count(buf[:n], []byte{'\n'}))
		if err == io.EOF {
			return size, lines
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReportsEndpointsSQLite: every report endpoint over a
// 100,000-call day on the embedded SQLite database.
func BenchmarkReportsEndpointsSQLite(b *testing.B) {
	db, err := reports.OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "reports.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	benchHTTPReports(b, db)
}

// BenchmarkReportsEndpointsPostgres: the same on a real PostgreSQL.
func BenchmarkReportsEndpointsPostgres(b *testing.B) {
	pg := testpeer.StartPostgres(b)
	db, err := reports.OpenPostgres(context.Background(), pg.URL("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	benchHTTPReports(b, db)
}
