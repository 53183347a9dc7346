package reports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	// Drivers: pgx for PostgreSQL, modernc's pure-Go SQLite (no cgo).
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite"
)

// Dialect is the SQL database behind a DB.
type Dialect string

// The supported databases.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrMoved: the stored log position changed under the projector (another
// projector applied events), so this batch was not applied.
var ErrMoved = errors.New("reports: projector position moved concurrently")

// DB is the reports database: the projected rows and the projector's log
// position, on SQLite or PostgreSQL. Queries are written once with ?
// placeholders; rebind turns them into $n for PostgreSQL.
type DB struct {
	sql     *sql.DB
	dialect Dialect

	// stmts holds the projector's statements prepared once (rebound
	// query → *sql.Stmt): parsing each on every execution was about a
	// third of the service's CPU per call (docs/performance.md, Asterisk
	// side by side). Only fixed query strings go in, so it stays small.
	stmts sync.Map

	// memo is what Apply last wrote, to skip statements (memo.go).
	memo memo
}

// OpenSQLite opens (creating it and its directory) the SQLite file at path
// and runs the migrations.
func OpenSQLite(ctx context.Context, path string) (*DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("reports: data directory: %w", err)
	}
	db, err := sql.Open("sqlite", sqliteDSN(path))
	if err != nil {
		return nil, fmt.Errorf("reports: open sqlite %s: %w", path, err)
	}
	return start(ctx, db, SQLite)
}

// sqliteDSN is the data source of the SQLite file at path. WAL lets
// readers (the API) run beside the projector's writes; immediate
// transactions take the write lock up front, so two writers wait for each
// other (busy_timeout) instead of failing to upgrade.
func sqliteDSN(path string) string {
	return "file:" + path + "?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
}

// OpenPostgres connects to the PostgreSQL database at url
// (postgres://user:pass@host:port/db?sslmode=…) and runs the migrations.
func OpenPostgres(ctx context.Context, url string) (*DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("reports: open postgres: %w", err)
	}
	db.SetMaxOpenConns(8)
	return start(ctx, db, Postgres)
}

// Open picks the database: PostgreSQL when url is set, else the SQLite
// file reports.db under dataDir.
func Open(ctx context.Context, url, dataDir string) (*DB, error) {
	if url != "" {
		return OpenPostgres(ctx, url)
	}
	return OpenSQLite(ctx, filepath.Join(dataDir, "reports.db"))
}

func start(ctx context.Context, db *sql.DB, d Dialect) (*DB, error) {
	r := &DB{sql: db, dialect: d}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := db.PingContext(pctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("reports: connect %s: %w", d, err)
	}
	if err := r.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return r, nil
}

// Dialect says which database this is.
func (d *DB) Dialect() Dialect { return d.dialect }

// Close closes the prepared statements and the connection pool.
func (d *DB) Close() error {
	d.stmts.Range(func(_, v any) bool {
		_ = v.(*sql.Stmt).Close()
		return true
	})
	return d.sql.Close()
}

// prepared returns the statement for query (already rebound), preparing
// it the first time.
func (d *DB) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := d.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := d.sql.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := d.stmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// Ping reports whether the database answers (readiness).
func (d *DB) Ping(ctx context.Context) error { return d.sql.PingContext(ctx) }

// rebind turns ? placeholders into $1, $2… for PostgreSQL.
func (d *DB) rebind(q string) string {
	if d.dialect != Postgres {
		return q
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// q binds a querier to the dialect. A q made by preparing runs its exec
// and row statements prepared once per DB (for fixed query strings only:
// the projector's, never a query built from filters or table names).
type q struct {
	d      *DB
	db     querier
	cached bool
}

// preparing returns x running its statements from the DB's prepared ones.
func (x q) preparing() q {
	x.cached = true
	return x
}

// stmt is query's prepared statement bound to x's transaction, or nil
// when x does not use prepared statements. The statement belongs to the
// transaction and is closed with it.
func (x q) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	tx, ok := x.db.(*sql.Tx)
	if !x.cached || !ok {
		return nil, nil
	}
	st, err := x.d.prepared(ctx, query)
	if err != nil {
		return nil, err
	}
	return tx.StmtContext(ctx, st), nil
}

func (x q) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	query = x.d.rebind(query)
	st, err := x.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if st != nil {
		return st.ExecContext(ctx, args...)
	}
	return x.db.ExecContext(ctx, query, args...)
}

func (x q) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return x.db.QueryContext(ctx, x.d.rebind(query), args...)
}

func (x q) row(ctx context.Context, query string, args ...any) *sql.Row {
	query = x.d.rebind(query)
	if st, err := x.stmt(ctx, query); err == nil && st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	// Not cached, or the statement failed to prepare: running it directly
	// reports the same error through Scan.
	return x.db.QueryRowContext(ctx, query, args...)
}

// SchemaVersion is the newest migration this build knows.
const SchemaVersion = 2

// migrations are applied in order, each once, at start; a database records
// the versions it has in schema_migrations. Never edit a shipped one: add
// the next. Times are Unix milliseconds (UTC), seconds whole seconds.
var migrations = []string{
	// 1: the projection's tables.
	`CREATE TABLE report_cursor (
		id INTEGER PRIMARY KEY,
		position TEXT NOT NULL,
		log_epoch TEXT NOT NULL,
		applied BIGINT NOT NULL,
		gaps BIGINT NOT NULL,
		updated_ms BIGINT NOT NULL
	);
	INSERT INTO report_cursor (id, position, log_epoch, applied, gaps, updated_ms) VALUES (1, '', '', 0, 0, 0);
	CREATE TABLE report_gaps (
		id TEXT PRIMARY KEY,
		at_ms BIGINT NOT NULL,
		after_position TEXT NOT NULL,
		reason TEXT NOT NULL
	);
	CREATE TABLE report_agents (
		id TEXT PRIMARY KEY,
		name TEXT NOT NULL,
		scope_groups TEXT NOT NULL,
		distribution TEXT NOT NULL,
		role TEXT NOT NULL
	);
	CREATE TABLE calls (
		id TEXT PRIMARY KEY,
		direction TEXT NOT NULL,
		customer_number TEXT NOT NULL,
		hotline TEXT NOT NULL,
		queue TEXT NOT NULL,
		campaign TEXT NOT NULL,
		scope_groups TEXT NOT NULL,
		state TEXT NOT NULL,
		started_ms BIGINT NOT NULL,
		enqueued_ms BIGINT,
		first_ring_ms BIGINT,
		answered_ms BIGINT,
		ended_ms BIGINT,
		wait_seconds BIGINT,
		talk_seconds BIGINT,
		outcome TEXT NOT NULL,
		end_cause TEXT NOT NULL,
		hung_up_by TEXT NOT NULL,
		agent TEXT NOT NULL,
		transfers INTEGER NOT NULL,
		monitors INTEGER NOT NULL
	);
	CREATE INDEX calls_started ON calls (started_ms, id);
	CREATE TABLE ring_attempts (
		id TEXT PRIMARY KEY,
		call_id TEXT NOT NULL,
		agent TEXT NOT NULL,
		kind TEXT NOT NULL,
		device TEXT NOT NULL,
		queue TEXT NOT NULL,
		scope_groups TEXT NOT NULL,
		started_ms BIGINT NOT NULL,
		ended_ms BIGINT NOT NULL,
		outcome TEXT NOT NULL,
		seconds BIGINT NOT NULL
	);
	CREATE INDEX ring_attempts_started ON ring_attempts (started_ms, id);
	CREATE TABLE agent_intervals (
		id TEXT PRIMARY KEY,
		agent TEXT NOT NULL,
		scope_groups TEXT NOT NULL,
		field TEXT NOT NULL,
		status TEXT NOT NULL,
		from_ms BIGINT NOT NULL,
		to_ms BIGINT,
		seconds BIGINT,
		changed_by TEXT NOT NULL
	);
	CREATE INDEX agent_intervals_open ON agent_intervals (agent, field, to_ms);
	CREATE INDEX agent_intervals_from ON agent_intervals (from_ms);
	CREATE TABLE monitors (
		id TEXT PRIMARY KEY,
		call_id TEXT NOT NULL,
		supervisor TEXT NOT NULL,
		agent TEXT NOT NULL,
		queue TEXT NOT NULL,
		scope_groups TEXT NOT NULL,
		mode TEXT NOT NULL,
		paused INTEGER NOT NULL,
		mode_changes TEXT NOT NULL,
		started_ms BIGINT NOT NULL,
		answered_ms BIGINT,
		ended_ms BIGINT,
		seconds BIGINT,
		end_reason TEXT NOT NULL
	);
	CREATE INDEX monitors_started ON monitors (started_ms, id);`,
	// 2: a caller's answered calls, for the missed-call recount (Recount).
	`CREATE INDEX calls_customer_answered ON calls (customer_number, answered_ms)`,
}

func (d *DB) migrate(ctx context.Context) error {
	x := q{d: d, db: d.sql}
	if _, err := x.exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_ms BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("reports: migrations table: %w", err)
	}
	for i, m := range migrations {
		version := i + 1
		if err := d.inTx(ctx, func(x q) error {
			var n int
			if err := x.row(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			for _, stmt := range strings.Split(m, ";") {
				if strings.TrimSpace(stmt) == "" {
					continue
				}
				if _, err := x.exec(ctx, stmt); err != nil {
					return fmt.Errorf("%s: %w", strings.TrimSpace(stmt)[:min(40, len(strings.TrimSpace(stmt)))], err)
				}
			}
			_, err := x.exec(ctx, `INSERT INTO schema_migrations (version, applied_ms) VALUES (?, ?)`, version, time.Now().UnixMilli())
			return err
		}); err != nil {
			return fmt.Errorf("reports: migration %d: %w", version, err)
		}
	}
	return nil
}

// SchemaVersion is the newest migration applied.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := q{d: d, db: d.sql}.row(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	return int(v.Int64), err
}

// inTx runs fn in one transaction, committed if fn returns nil.
func (d *DB) inTx(ctx context.Context, fn func(x q) error) error {
	tx, err := d.sql.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if err := fn(q{d: d, db: tx}); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
