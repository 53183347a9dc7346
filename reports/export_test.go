package reports

import (
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
