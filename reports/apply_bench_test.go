package reports

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
)

// callEvents is what routing logs for one answered inbound call: arrival,
// ringing, answer (with the agent's status change), end.
func callEvents(i int, start time.Time) []state.Event {
	id, agent := "c"+strconv.Itoa(i), "a"+strconv.Itoa(i%50)
	scope := state.Scope{Queue: "sales", Groups: []string{"sales"}}
	view := func(st routing.CallState, at time.Time, r *routing.CallReport) []byte {
		v := routing.CallView{ID: id, CustomerNumber: "+84900000001", Hotline: "+842800", Queue: "sales", State: st,
			StartedAt: start, Direction: routing.DirectionInbound, Agent: &agent, Report: r}
		r.At = at
		b, _ := json.Marshal(v)
		return b
	}
	ring, ans, end := start.Add(time.Second), start.Add(5*time.Second), start.Add(65*time.Second)
	agentEv := func(at time.Time, from, to string) []byte {
		b, _ := json.Marshal(presence.AgentView{ID: agent, Name: agent, Groups: []string{"sales"}, Distribution: presence.DistApp,
			Changes: []presence.HistoryRow{{At: at, Field: presence.FieldSystemStatus, From: from, To: to, By: "system"}}})
		return b
	}
	ended := &routing.CallReport{EnqueuedAt: start, RingStartedAt: ring, AnsweredAt: &ans}
	endView := routing.CallView{ID: id, CustomerNumber: "+84900000001", Hotline: "+842800", Queue: "sales", State: routing.StateAnswered,
		StartedAt: start, Direction: routing.DirectionInbound, Agent: &agent, AnsweredAt: &ans,
		Ended: &routing.EndedInfo{At: end, Reason: "caller hung up"}, Report: ended}
	ended.At = end
	eb, _ := json.Marshal(endView)
	return []state.Event{
		{Type: routing.EventCall, Scope: scope, Data: view(routing.StateCalling, start, &routing.CallReport{EnqueuedAt: start})},
		{Type: presence.EventAgent, Data: agentEv(ring, "available", "ringing")},
		{Type: routing.EventCall, Scope: scope, Data: view(routing.StateRinging, ring, &routing.CallReport{EnqueuedAt: start, RingStartedAt: ring})},
		{Type: presence.EventAgent, Data: agentEv(ans, "ringing", "talking")},
		{Type: routing.EventCall, Scope: scope, Data: view(routing.StateAnswered, ans, &routing.CallReport{EnqueuedAt: start, RingStartedAt: ring, AnsweredAt: &ans,
			Attempts: []routing.AttemptEnded{{Agent: agent, Kind: routing.OfferRouted, StartedAt: ring, EndedAt: ans, Outcome: routing.OutcomeAnswered}}})},
		{Type: presence.EventAgent, Data: agentEv(end, "talking", "available")},
		{Type: routing.EventCallEnded, Scope: scope, Data: eb},
	}
}

// BenchmarkApplySQLite: projecting the log into SQLite, one op being one
// answered call's seven events; batch-500 is a projector catching up
// (its default batch), batch-7 a live floor where each read finds about
// one call's events (docs/performance.md, Reports).
func BenchmarkApplySQLite(b *testing.B) {
	for _, size := range []int{500, 7} {
		b.Run("batch-"+strconv.Itoa(size), func(b *testing.B) { benchApplySQLite(b, size) })
	}
}

func benchApplySQLite(b *testing.B, size int) {
	d, stmts := openCountingSQLite(b, filepath.Join(b.TempDir(), "reports.db"))
	defer d.Close()
	// A live floor's calls, started now: the projector trusts its memo of
	// calls only for rows retention cannot have removed (memoMaxAge).
	start := time.Now().UTC().Truncate(time.Second)
	var batch []state.Event
	pos, seq := "", 0
	flush := func() {
		if err := d.Apply(context.Background(), pos, "", batch, time.Now()); err != nil {
			b.Fatal(err)
		}
		pos = batch[len(batch)-1].ID
		batch = batch[:0]
	}
	i := 0
	for b.Loop() {
		for _, e := range callEvents(i, start.Add(time.Duration(i)*time.Second)) {
			seq++
			e.ID = strconv.Itoa(seq)
			batch = append(batch, e)
		}
		if len(batch) >= size {
			flush()
		}
		i++
	}
	if len(batch) > 0 {
		flush()
	}
	b.ReportMetric(float64(stmts.Load())/float64(max(i, 1)), "stmts/op")
}

// openCountingSQLite opens a SQLite reports database whose connections
// count the statements they run (prepared or not; not BEGIN and COMMIT),
// after the migrations.
func openCountingSQLite(tb testing.TB, path string) (*DB, *atomic.Int64) {
	tb.Helper()
	plain, err := sql.Open("sqlite", "")
	if err != nil {
		tb.Fatal(err)
	}
	drv := plain.Driver()
	_ = plain.Close()
	c := &countingConnector{drv: drv, dsn: sqliteDSN(path)}
	d, err := start(context.Background(), sql.OpenDB(c), SQLite)
	if err != nil {
		tb.Fatal(err)
	}
	c.n.Store(0)
	return d, &c.n
}

type countingConnector struct {
	drv driver.Driver
	dsn string
	n   atomic.Int64
}

func (c *countingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, n: &c.n}, nil
}

func (c *countingConnector) Driver() driver.Driver { return c.drv }

// countingConn forwards what database/sql asks of a connection to the
// driver's (every interface modernc's connection implements).
type countingConn struct {
	driver.Conn
	n *atomic.Int64
}

func (c *countingConn) BeginTx(ctx context.Context, o driver.TxOptions) (driver.Tx, error) {
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, o)
}

func (c *countingConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, q)
	if err != nil {
		return nil, err
	}
	return &countingStmt{Stmt: st, n: c.n}, nil
}

func (c *countingConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	c.n.Add(1)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, q, args)
}

func (c *countingConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	c.n.Add(1)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, q, args)
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *countingConn) IsValid() bool { return c.Conn.(driver.Validator).IsValid() }

func (c *countingConn) Ping(ctx context.Context) error { return c.Conn.(driver.Pinger).Ping(ctx) }

type countingStmt struct {
	driver.Stmt
	n *atomic.Int64
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.n.Add(1)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.n.Add(1)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}
