package reports

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/callfloor/callfloor/internal/pause"
)

// Retention is how many days each table keeps rows (0 = forever). A row's
// age is its start (calls, ring attempts, monitors) or, for agent status
// intervals, its end (an interval still open is never removed).
type Retention struct {
	CallsDays     int
	AttemptsDays  int
	IntervalsDays int
	MonitorsDays  int
}

// Prune deletes the rows older than the retention allows and returns how
// many it removed per table.
func (d *DB) Prune(ctx context.Context, r Retention, now time.Time) (map[string]int64, error) {
	out := map[string]int64{}
	x := q{d: d, db: d.sql}
	for _, t := range []struct {
		table, col string
		days       int
	}{
		{"calls", "started_ms", r.CallsDays},
		{"ring_attempts", "started_ms", r.AttemptsDays},
		{"agent_intervals", "to_ms", r.IntervalsDays},
		{"monitors", "started_ms", r.MonitorsDays},
	} {
		if t.days <= 0 {
			continue
		}
		cutoff := now.AddDate(0, 0, -t.days).UnixMilli()
		res, err := x.exec(ctx, `DELETE FROM `+t.table+` WHERE `+t.col+` < ?`, cutoff)
		if err != nil {
			return out, fmt.Errorf("reports: prune %s: %w", t.table, err)
		}
		n, _ := res.RowsAffected()
		out[t.table] = n
	}
	return out, nil
}

// RunRetention prunes at once and then every interval until ctx ends.
func (d *DB) RunRetention(ctx context.Context, r Retention, every time.Duration, now func() time.Time, log *slog.Logger) error {
	for {
		n, err := d.Prune(ctx, r, now())
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			log.Warn("reports retention", "err", err)
		default:
			for table, rows := range n {
				if rows > 0 {
					log.Info("reports retention removed old rows", "table", table, "rows", rows)
				}
			}
		}
		if !pause.For(ctx, every) {
			return nil
		}
	}
}
