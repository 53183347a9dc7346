package reports

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// SeedDay writes a synthetic day of calls straight into d's tables (see
// seedDay) for the benchmarks of the reports_test package.
func SeedDay(tb testing.TB, d *DB, day time.Time, calls int) { seedDay(tb, d, day, calls) }

// Analyze refreshes PostgreSQL's planner statistics after SeedDay.
func (d *DB) Analyze() error {
	if d.dialect != Postgres {
		return nil
	}
	_, err := d.sql.Exec("ANALYZE")
	return err
}

// DumpTables renders every row of every projected table, ordered by id
// (not the cursor or the gaps), for reportstest to compare two databases
// column for column, beyond what the reports read. reportstest finds it
// through an interface: it exists only in this package's test binary.
func (d *DB) DumpTables(ctx context.Context) (string, error) {
	var b strings.Builder
	for _, table := range []string{"report_agents", "calls", "ring_attempts", "agent_intervals", "monitors"} {
		if err := dumpTable(ctx, d, table, &b); err != nil {
			return "", fmt.Errorf("dump %s: %w", table, err)
		}
	}
	return b.String(), nil
}

func dumpTable(ctx context.Context, d *DB, table string, b *strings.Builder) error {
	rows, err := d.sql.QueryContext(ctx, `SELECT * FROM `+table+` ORDER BY id`)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		b.WriteString(table)
		for i, v := range vals {
			if bs, ok := v.([]byte); ok {
				v = string(bs)
			}
			fmt.Fprintf(b, " %s=%v", cols[i], v)
		}
		b.WriteByte('\n')
	}
	return rows.Err()
}
