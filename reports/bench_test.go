package reports

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/cpustat"
	"github.com/callfloor/callfloor/internal/testpeer"
)

// seedDay writes a 100,000-call day straight into the tables (what a day
// of projection leaves): 20 queues, 500 agents in 20 groups, 1.5 ring
// attempts per call, 12 status intervals per agent, 1% monitored calls.
func seedDay(b testing.TB, d *DB, day time.Time, calls int) {
	b.Helper()
	ctx := context.Background()
	err := d.inTx(ctx, func(x q) error {
		for i := range calls {
			id := "c" + strconv.Itoa(i)
			start := day.Add(time.Duration(int64(i) * int64(24*time.Hour) / int64(calls)))
			queue, agent := "q"+strconv.Itoa(i%20), "a"+strconv.Itoa(i%500)
			groups := ",g" + strconv.Itoa(i%20) + ","
			ring := start.Add(2 * time.Second)
			var ans, end, wait, talk any
			outcome := CallAnswered
			e := start.Add(time.Duration(30+i%300) * time.Second)
			end = e.UnixMilli()
			if i%10 == 0 {
				outcome = CallAbandoned
				wait = int64(e.Sub(start) / time.Second)
			} else {
				a := ring.Add(time.Duration(i%40) * time.Second)
				ans, wait, talk = a.UnixMilli(), int64(a.Sub(start)/time.Second), int64(e.Sub(a)/time.Second)
			}
			if _, err := x.exec(ctx, `INSERT INTO calls (id, direction, customer_number, hotline, queue, campaign, scope_groups, state,
				started_ms, enqueued_ms, first_ring_ms, answered_ms, ended_ms, wait_seconds, talk_seconds, outcome, end_cause, hung_up_by,
				agent, transfers, monitors) VALUES (?, 'inbound', ?, '+842800', ?, '', ?, 'answered', ?, ?, ?, ?, ?, ?, ?, ?, 'caller hung up', 'customer', ?, 0, 0)`,
				id, fmt.Sprintf("+8490%07d", i%30000), queue, groups, start.UnixMilli(), start.UnixMilli(), ring.UnixMilli(), ans, end, wait, talk, outcome, agent); err != nil {
				return err
			}
			n := 1 + i%2
			for k := range n {
				o := "answered"
				if k == 0 && n == 2 {
					o = "no_answer"
				}
				if _, err := x.exec(ctx, `INSERT INTO ring_attempts (id, call_id, agent, kind, device, queue, scope_groups, started_ms, ended_ms, outcome, seconds)
					VALUES (?, ?, ?, 'routed', 'app', ?, ?, ?, ?, ?, 5)`, id+"/"+strconv.Itoa(k), id, "a"+strconv.Itoa((i+k)%500), queue, groups,
					ring.UnixMilli()+int64(k), ring.UnixMilli()+5000, o); err != nil {
					return err
				}
			}
			if i%100 == 0 {
				if _, err := x.exec(ctx, `INSERT INTO monitors (id, call_id, supervisor, agent, queue, scope_groups, mode, paused, mode_changes, started_ms, answered_ms, ended_ms, seconds, end_reason)
					VALUES (?, ?, 's1', ?, ?, ?, 'listen', 0, 'listen', ?, ?, ?, 10, 'the call ended')`, "m"+id, id, agent, queue, groups, start.UnixMilli(), start.UnixMilli(), e.UnixMilli()); err != nil {
					return err
				}
			}
		}
		statuses := []string{"available", "ringing", "talking", "after_call_work"}
		for a := range 500 {
			for k := range 12 {
				from := day.Add(time.Duration(k) * 2 * time.Hour)
				if _, err := x.exec(ctx, `INSERT INTO agent_intervals (id, agent, scope_groups, field, status, from_ms, to_ms, seconds, changed_by)
					VALUES (?, ?, ?, 'system_status', ?, ?, ?, 7200, 'system')`, fmt.Sprintf("i%d/%d", a, k), "a"+strconv.Itoa(a),
					",g"+strconv.Itoa(a%20)+",", statuses[k%4], from.UnixMilli(), from.Add(2*time.Hour).UnixMilli()); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

func benchEndpoints(b *testing.B, d *DB) {
	day := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	seedDay(b, d, day, 100000)
	if d.dialect == Postgres {
		if _, err := d.sql.Exec("ANALYZE"); err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	all := Query{Scope: Scope{All: true}, From: day, To: day.Add(24 * time.Hour), Loc: time.UTC, Limit: 100}
	sup := all
	sup.Scope = Scope{Groups: []string{"g3", "g4"}, Self: "s1"}
	export := all
	export.Limit = 100000
	sl := map[string]int{}
	for i := range 20 {
		sl["q"+strconv.Itoa(i)] = 20
	}
	for _, bc := range []struct {
		name string
		run  func() (int, error)
	}{
		{"calls/page100", func() (int, error) { r, _, err := d.Calls(ctx, all, CallFilter{}); return len(r), err }},
		{"calls/page100_supervisor", func() (int, error) { r, _, err := d.Calls(ctx, sup, CallFilter{}); return len(r), err }},
		{"calls/export_day", func() (int, error) { r, _, err := d.Calls(ctx, export, CallFilter{}); return len(r), err }},
		{"attempts/page100", func() (int, error) { r, _, err := d.Attempts(ctx, all, AttemptFilter{}); return len(r), err }},
		{"attempts/export_day", func() (int, error) { r, _, err := d.Attempts(ctx, export, AttemptFilter{}); return len(r), err }},
		{"monitors/page100", func() (int, error) { r, _, err := d.Monitors(ctx, all, ""); return len(r), err }},
		{"agents/day", func() (int, error) { r, err := d.Agents(ctx, all, "", day.Add(24*time.Hour)); return len(r), err }},
		{"queues/hour", func() (int, error) { r, err := d.Queues(ctx, all, Hour, "", sl); return len(r), err }},
		{"queues/day", func() (int, error) { r, err := d.Queues(ctx, all, Day, "", sl); return len(r), err }},
		{"recount/day", func() (int, error) { _, err := d.Recount(ctx, day, day.Add(24*time.Hour), "", ""); return 1, err }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			n, ops := 0, 0
			cpu0 := cpustat.Self()
			for b.Loop() {
				var err error
				if n, err = bc.run(); err != nil {
					b.Fatal(err)
				}
				ops++
			}
			b.ReportMetric(float64(n), "rows")
			// This process's CPU time per op: a figure that holds on a
			// shared machine where wall time mostly measures waiting
			// (for SQLite it is all the work; for PostgreSQL the client's).
			b.ReportMetric(float64((cpustat.Self()-cpu0)/time.Duration(max(ops, 1)))/1e6, "cpu-ms/op")
		})
	}
}

// BenchmarkReportsDaySQLite: every report over a 100,000-call day
// (docs/performance.md, Reports).
func BenchmarkReportsDaySQLite(b *testing.B) {
	d, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "reports.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	benchEndpoints(b, d)
}

// BenchmarkReportsDayPostgres: the same on a real PostgreSQL.
func BenchmarkReportsDayPostgres(b *testing.B) {
	pg := testpeer.StartPostgres(b)
	d, err := OpenPostgres(context.Background(), pg.URL("postgres"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	benchEndpoints(b, d)
}
