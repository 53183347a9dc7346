package reports_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/reports"
	"github.com/callfloor/callfloor/reports/reportstest"
)

func TestMain(m *testing.M) {
	// database/sql keeps a connection opener goroutine per pool until
	// Close; every test closes its pools.
	goleak.VerifyTestMain(m)
}

func TestSQLite(t *testing.T) {
	reportstest.Run(t, func(t *testing.T) func() *reports.DB {
		path := filepath.Join(t.TempDir(), "data", "reports.db")
		return func() *reports.DB {
			db, err := reports.OpenSQLite(context.Background(), path)
			if err != nil {
				t.Fatal(err)
			}
			return db
		}
	})
}

func TestPostgres(t *testing.T) {
	pg := testpeer.StartPostgres(t)
	admin, err := sql.Open("pgx", pg.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	var n atomic.Int64
	reportstest.Run(t, func(t *testing.T) func() *reports.DB {
		name := fmt.Sprintf("reports_%d", n.Add(1))
		if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
			t.Fatal(err)
		}
		return func() *reports.DB {
			db, err := reports.OpenPostgres(context.Background(), pg.URL(name))
			if err != nil {
				t.Fatal(err)
			}
			return db
		}
	})
}
