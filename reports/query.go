package reports

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrBadCursor: a paging cursor this database did not issue.
var ErrBadCursor = errors.New("reports: malformed cursor")

// Scope is who is asking, as the API's visibility rules need it (README.md,
// API): admins see everything; others rows scoped to a group they see, or
// rows about themselves.
type Scope struct {
	All    bool
	Groups []string // groups the caller sees (supervised and member of)
	Self   string   // the caller's agent id
}

// Query is what every report takes: a time range [From, To), the time
// zone rows are shown in, and a page.
type Query struct {
	Scope  Scope
	From   time.Time
	To     time.Time
	Loc    *time.Location
	Limit  int
	Cursor string
}

func (qq *Query) loc() *time.Location {
	if qq.Loc == nil {
		return time.UTC
	}
	return qq.Loc
}

// likeEscape makes a group id safe inside LIKE '%,g,%'.
func likeEscape(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return r.Replace(s)
}

// scopeSQL is the visibility condition over a table's scope_groups and
// agent column.
func scopeSQL(s Scope, agentCol string) (string, []any) {
	if s.All {
		return "1 = 1", nil
	}
	parts := []string{agentCol + " = ?"}
	args := []any{s.Self}
	for _, g := range s.Groups {
		parts = append(parts, `scope_groups LIKE ? ESCAPE '\'`)
		args = append(args, "%,"+likeEscape(g)+",%")
	}
	return "(" + strings.Join(parts, " OR ") + ")", args
}

// encodeCursor / decodeCursor page by (started_ms, id).
func encodeCursor(ms int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(ms, 10) + ":" + id))
}

// DecodeCursor parses a paging cursor.
func DecodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, "", fmt.Errorf("%w: not base64url", ErrBadCursor)
	}
	msStr, id, ok := strings.Cut(string(b), ":")
	ms, err := strconv.ParseInt(msStr, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", fmt.Errorf("%w: not a position", ErrBadCursor)
	}
	return ms, id, nil
}

// Page receives one page of a list report as the database returns it:
// Start once, with the cursor of the next page ("" on the last one),
// before the first row; then Row for each row, in order. The row passed
// to Row is reused for the next one: copy it to keep it. An error from
// either ends the read and is returned.
type Page[T any] struct {
	Start func(next string) error
	Row   func(*T) error
}

// listing is one list report's query: the table, the selected columns,
// the time column pages are ordered by (then id), and how to scan a row.
type listing[T any] struct {
	table, cols, col string
	scan             func(rows *sql.Rows, r *T, loc *time.Location) error
}

// streamPage reads one page of a list: the rows of where in the query's
// range after its cursor, ordered by (col, id), at most Limit of them
// (README.md, Reports: paging). A first query over the index finds the
// page's last row and whether another follows, so the next cursor is
// known before the first row is read (an export names it in a header
// before streaming its rows); the rows are then read up to that last row
// and handed over one at a time, never held as a whole page.
func streamPage[T any](ctx context.Context, d *DB, qq Query, l listing[T], where []string, args []any, p Page[T]) error {
	// The range is kept to plain comparisons of the time column (the
	// index's range); ties on it are broken by id in a separate term.
	lower := qq.From.UnixMilli()
	if qq.Cursor != "" {
		ms, id, err := DecodeCursor(qq.Cursor)
		if err != nil {
			return err
		}
		lower = max(lower, ms)
		where = append(where, "("+l.col+" > ? OR id > ?)")
		args = append(args, ms, id)
	}
	where = append(where, l.col+" >= ?")
	args = append(args, lower)
	x := q{d: d, db: d.sql}
	cond := " FROM " + l.table + " WHERE " + strings.Join(where, " AND ")
	order := " ORDER BY " + l.col + ", id"
	last, err := x.query(ctx, "SELECT "+l.col+", id"+cond+" AND "+l.col+" < ?"+order+" LIMIT 2 OFFSET ?",
		append(slices.Clip(args), qq.To.UnixMilli(), max(qq.Limit, 1)-1)...)
	if err != nil {
		return err
	}
	var lastMS int64
	var lastID, next string
	n := 0
	for ; last.Next() && n < 2; n++ {
		var ms int64
		var id string
		if err := last.Scan(&ms, &id); err != nil {
			last.Close()
			return err
		}
		if n == 0 {
			lastMS, lastID = ms, id
		}
	}
	if err := errors.Join(last.Err(), last.Close()); err != nil {
		return err
	}
	if n == 2 {
		// Another page follows: this one ends at its last row. Rows
		// projected meanwhile before that row join this page rather
		// than fall between two pages.
		next = encodeCursor(lastMS, lastID)
		cond += " AND " + l.col + " <= ? AND (" + l.col + " < ? OR id <= ?)"
		args = append(args, lastMS, lastMS, lastID)
	} else {
		cond += " AND " + l.col + " < ?"
		args = append(args, qq.To.UnixMilli())
	}
	rows, err := x.query(ctx, "SELECT "+l.cols+cond+order, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := p.Start(next); err != nil {
		return err
	}
	loc := qq.loc()
	var zero, r T
	for rows.Next() {
		r = zero
		if err := l.scan(rows, &r, loc); err != nil {
			return err
		}
		if err := p.Row(&r); err != nil {
			return err
		}
	}
	return rows.Err()
}

// collect reads a whole page into a slice (the JSON pages, at most
// 1,000 rows).
func collect[T any](read func(Page[T]) error) ([]T, string, error) {
	out := []T{}
	var next string
	err := read(Page[T]{
		Start: func(n string) error { next = n; return nil },
		Row:   func(r *T) error { out = append(out, *r); return nil },
	})
	if err != nil {
		return nil, "", err
	}
	return out, next, nil
}

func localPtr(v sql.NullInt64, loc *time.Location) *time.Time {
	if !v.Valid {
		return nil
	}
	t := time.UnixMilli(v.Int64).In(loc)
	return &t
}

func intPtr(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	n := v.Int64
	return &n
}

// CallFilter narrows the call history; empty fields do not filter.
type CallFilter struct {
	Queue, Agent, Direction, Outcome, Customer string
}

// CallRow is one call of the history (GET /v1/reports/calls).
type CallRow struct {
	ID             string     `json:"id"`
	Direction      string     `json:"direction"`
	CustomerNumber string     `json:"customer_number"`
	Hotline        string     `json:"hotline"`
	Queue          string     `json:"queue"`
	Campaign       string     `json:"campaign"`
	StartedAt      time.Time  `json:"started_at"`
	FirstRingAt    *time.Time `json:"first_ring_at"`
	AnsweredAt     *time.Time `json:"answered_at"`
	EndedAt        *time.Time `json:"ended_at"`
	WaitSeconds    *int64     `json:"wait_seconds"`
	TalkSeconds    *int64     `json:"talk_seconds"`
	Outcome        string     `json:"outcome"`
	EndCause       string     `json:"end_cause"`
	HungUpBy       string     `json:"hung_up_by"`
	Agent          string     `json:"agent"`
	Transfers      int        `json:"transfers"`
	Monitors       int        `json:"monitors"`
}

// Calls is the call history, oldest first, one page.
func (d *DB) Calls(ctx context.Context, qq Query, f CallFilter) ([]CallRow, string, error) {
	return collect(func(p Page[CallRow]) error { return d.EachCall(ctx, qq, f, p) })
}

var callListing = listing[CallRow]{table: "calls", col: "started_ms",
	cols: `id, direction, customer_number, hotline, queue, campaign, started_ms, first_ring_ms,
		answered_ms, ended_ms, wait_seconds, talk_seconds, outcome, end_cause, hung_up_by, agent, transfers, monitors`,
	scan: func(rows *sql.Rows, r *CallRow, loc *time.Location) error {
		var started int64
		var ring, ans, end, wait, talk sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Direction, &r.CustomerNumber, &r.Hotline, &r.Queue, &r.Campaign, &started, &ring, &ans, &end,
			&wait, &talk, &r.Outcome, &r.EndCause, &r.HungUpBy, &r.Agent, &r.Transfers, &r.Monitors); err != nil {
			return err
		}
		r.StartedAt = time.UnixMilli(started).In(loc)
		r.FirstRingAt, r.AnsweredAt, r.EndedAt = localPtr(ring, loc), localPtr(ans, loc), localPtr(end, loc)
		r.WaitSeconds, r.TalkSeconds = intPtr(wait), intPtr(talk)
		return nil
	}}

// EachCall streams one page of the call history to p.
func (d *DB) EachCall(ctx context.Context, qq Query, f CallFilter, p Page[CallRow]) error {
	where, args := []string{}, []any{}
	sc, sa := scopeSQL(qq.Scope, "agent")
	where, args = append(where, sc), append(args, sa...)
	for _, c := range []struct{ col, v string }{{"queue", f.Queue}, {"agent", f.Agent}, {"direction", f.Direction},
		{"outcome", f.Outcome}, {"customer_number", f.Customer}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if err := streamPage(ctx, d, qq, callListing, where, args, p); err != nil {
		return fmt.Errorf("reports: calls: %w", err)
	}
	return nil
}

// AttemptFilter narrows the ring attempts.
type AttemptFilter struct {
	Queue, Agent, Outcome, Call string
}

// AttemptRow is one agent rung for a call (GET /v1/reports/attempts).
type AttemptRow struct {
	ID        string    `json:"id"`
	CallID    string    `json:"call_id"`
	Agent     string    `json:"agent"`
	Kind      string    `json:"kind"`
	Device    string    `json:"device"`
	Queue     string    `json:"queue"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Outcome   string    `json:"outcome"`
	Seconds   int64     `json:"seconds"`
}

// Attempts lists ring attempts, oldest first, one page.
func (d *DB) Attempts(ctx context.Context, qq Query, f AttemptFilter) ([]AttemptRow, string, error) {
	return collect(func(p Page[AttemptRow]) error { return d.EachAttempt(ctx, qq, f, p) })
}

var attemptListing = listing[AttemptRow]{table: "ring_attempts", col: "started_ms",
	cols: "id, call_id, agent, kind, device, queue, started_ms, ended_ms, outcome, seconds",
	scan: func(rows *sql.Rows, r *AttemptRow, loc *time.Location) error {
		var s, e int64
		if err := rows.Scan(&r.ID, &r.CallID, &r.Agent, &r.Kind, &r.Device, &r.Queue, &s, &e, &r.Outcome, &r.Seconds); err != nil {
			return err
		}
		r.StartedAt, r.EndedAt = time.UnixMilli(s).In(loc), time.UnixMilli(e).In(loc)
		return nil
	}}

// EachAttempt streams one page of ring attempts to p.
func (d *DB) EachAttempt(ctx context.Context, qq Query, f AttemptFilter, p Page[AttemptRow]) error {
	sc, args := scopeSQL(qq.Scope, "agent")
	where := []string{sc}
	for _, c := range []struct{ col, v string }{{"queue", f.Queue}, {"agent", f.Agent}, {"outcome", f.Outcome}, {"call_id", f.Call}} {
		if c.v != "" {
			where, args = append(where, c.col+" = ?"), append(args, c.v)
		}
	}
	if err := streamPage(ctx, d, qq, attemptListing, where, args, p); err != nil {
		return fmt.Errorf("reports: attempts: %w", err)
	}
	return nil
}

// MonitorRow is one supervisor monitor (GET /v1/reports/monitors).
type MonitorRow struct {
	ID          string     `json:"id"`
	CallID      string     `json:"call_id"`
	Supervisor  string     `json:"supervisor"`
	Agent       string     `json:"agent"`
	Queue       string     `json:"queue"`
	ModeChanges string     `json:"mode_changes"`
	StartedAt   time.Time  `json:"started_at"`
	AnsweredAt  *time.Time `json:"answered_at"`
	EndedAt     *time.Time `json:"ended_at"`
	Seconds     *int64     `json:"seconds"`
	EndReason   string     `json:"end_reason"`
}

// Monitors lists monitors, oldest first, one page; supervisor filters.
func (d *DB) Monitors(ctx context.Context, qq Query, supervisor string) ([]MonitorRow, string, error) {
	return collect(func(p Page[MonitorRow]) error { return d.EachMonitor(ctx, qq, supervisor, p) })
}

var monitorListing = listing[MonitorRow]{table: "monitors", col: "started_ms",
	cols: "id, call_id, supervisor, agent, queue, mode_changes, started_ms, answered_ms, ended_ms, seconds, end_reason",
	scan: func(rows *sql.Rows, r *MonitorRow, loc *time.Location) error {
		var s int64
		var ans, end, secs sql.NullInt64
		if err := rows.Scan(&r.ID, &r.CallID, &r.Supervisor, &r.Agent, &r.Queue, &r.ModeChanges, &s, &ans, &end, &secs, &r.EndReason); err != nil {
			return err
		}
		r.StartedAt = time.UnixMilli(s).In(loc)
		r.AnsweredAt, r.EndedAt, r.Seconds = localPtr(ans, loc), localPtr(end, loc), intPtr(secs)
		return nil
	}}

// EachMonitor streams one page of monitors to p; supervisor filters.
func (d *DB) EachMonitor(ctx context.Context, qq Query, supervisor string, p Page[MonitorRow]) error {
	sc, args := scopeSQL(qq.Scope, "supervisor")
	where := []string{sc}
	if supervisor != "" {
		where, args = append(where, "supervisor = ?"), append(args, supervisor)
	}
	if err := streamPage(ctx, d, qq, monitorListing, where, args, p); err != nil {
		return fmt.Errorf("reports: monitors: %w", err)
	}
	return nil
}

// IntervalRow is one stretch of one agent status (GET
// /v1/reports/statuses): the agent status history.
type IntervalRow struct {
	ID        string     `json:"id"`
	Agent     string     `json:"agent"`
	Field     string     `json:"field"`
	Status    string     `json:"status"`
	From      time.Time  `json:"from"`
	To        *time.Time `json:"to"`
	Seconds   *int64     `json:"seconds"`
	ChangedBy string     `json:"changed_by"`
}

// Intervals lists agent status intervals that began in the range, oldest
// first, one page; agent and field filter.
func (d *DB) Intervals(ctx context.Context, qq Query, agent, field string) ([]IntervalRow, string, error) {
	return collect(func(p Page[IntervalRow]) error { return d.EachInterval(ctx, qq, agent, field, p) })
}

var intervalListing = listing[IntervalRow]{table: "agent_intervals", col: "from_ms",
	cols: "id, agent, field, status, from_ms, to_ms, seconds, changed_by",
	scan: func(rows *sql.Rows, r *IntervalRow, loc *time.Location) error {
		var from int64
		var to, secs sql.NullInt64
		if err := rows.Scan(&r.ID, &r.Agent, &r.Field, &r.Status, &from, &to, &secs, &r.ChangedBy); err != nil {
			return err
		}
		r.From, r.To, r.Seconds = time.UnixMilli(from).In(loc), localPtr(to, loc), intPtr(secs)
		return nil
	}}

// EachInterval streams one page of agent status intervals to p; agent and
// field filter.
func (d *DB) EachInterval(ctx context.Context, qq Query, agent, field string, p Page[IntervalRow]) error {
	sc, args := scopeSQL(qq.Scope, "agent")
	where := []string{sc}
	if agent != "" {
		where, args = append(where, "agent = ?"), append(args, agent)
	}
	if field != "" {
		where, args = append(where, "field = ?"), append(args, field)
	}
	if err := streamPage(ctx, d, qq, intervalListing, where, args, p); err != nil {
		return fmt.Errorf("reports: intervals: %w", err)
	}
	return nil
}

// StatusSeconds is the time an agent spent in one status of one field.
type StatusSeconds struct {
	Field   string `json:"field"`
	Status  string `json:"status"`
	Seconds int64  `json:"seconds"`
}

// AgentRow is one agent's figures over the range (GET /v1/reports/agents).
type AgentRow struct {
	Agent                string          `json:"agent"`
	Name                 string          `json:"name"`
	Statuses             []StatusSeconds `json:"statuses"`
	Offered              int64           `json:"offered"`
	Answered             int64           `json:"answered"`
	NoAnswer             int64           `json:"no_answer"`
	Busy                 int64           `json:"busy"`
	Unreachable          int64           `json:"unreachable"`
	TalkSeconds          int64           `json:"talk_seconds"`
	AfterCallWorkSeconds int64           `json:"after_call_work_seconds"`
	AvgHandleSeconds     int64           `json:"avg_handle_seconds"`
	OutboundCalls        int64           `json:"outbound_calls"`
}

// Agents reports, per agent the caller sees, the seconds in every manual
// and system status (intervals clipped to the range; an open interval
// counts up to now), calls offered / answered / no answer (RONA) / busy /
// unreachable, talk and after-call work (system status seconds), average
// handle time ((talk + after-call work) / answered) and outbound calls.
func (d *DB) Agents(ctx context.Context, qq Query, agent string, now time.Time) ([]AgentRow, error) {
	rows := map[string]*AgentRow{}
	get := func(id string) *AgentRow {
		r := rows[id]
		if r == nil {
			r = &AgentRow{Agent: id, Statuses: []StatusSeconds{}}
			rows[id] = r
		}
		return r
	}
	x := q{d: d, db: d.sql}
	from, to, nowMS := qq.From.UnixMilli(), qq.To.UnixMilli(), now.UnixMilli()
	sc, sargs := scopeSQL(qq.Scope, "agent")
	filter, fargs := "", []any{}
	if agent != "" {
		filter, fargs = " AND agent = ?", []any{agent}
	}
	// Status seconds.
	args := append([]any{nowMS, to, nowMS, to, from, from, to, nowMS, from, nowMS}, sargs...)
	res, err := x.query(ctx, `SELECT agent, field, status, SUM(
			(CASE WHEN COALESCE(to_ms, ?) < ? THEN COALESCE(to_ms, ?) ELSE ? END) -
			(CASE WHEN from_ms > ? THEN from_ms ELSE ? END))
		FROM agent_intervals WHERE from_ms < ? AND COALESCE(to_ms, ?) > ? AND from_ms <= ? AND `+sc+filter+`
		GROUP BY agent, field, status`, append(args, fargs...)...)
	if err != nil {
		return nil, fmt.Errorf("reports: agent statuses: %w", err)
	}
	for res.Next() {
		var id, field, status string
		var ms int64
		if err := res.Scan(&id, &field, &status, &ms); err != nil {
			res.Close()
			return nil, err
		}
		r := get(id)
		secs := max(ms, 0) / 1000
		r.Statuses = append(r.Statuses, StatusSeconds{Field: field, Status: status, Seconds: secs})
		if field == "system_status" && status == "talking" {
			r.TalkSeconds += secs
		}
		if field == "system_status" && status == "after_call_work" {
			r.AfterCallWorkSeconds += secs
		}
	}
	res.Close()
	if err := res.Err(); err != nil {
		return nil, err
	}
	// Ring attempts of routed calls (distribution and transfers).
	res, err = x.query(ctx, `SELECT agent, outcome, COUNT(*) FROM ring_attempts
		WHERE started_ms >= ? AND started_ms < ? AND kind = 'routed' AND `+sc+filter+` GROUP BY agent, outcome`,
		append(append([]any{from, to}, sargs...), fargs...)...)
	if err != nil {
		return nil, fmt.Errorf("reports: agent attempts: %w", err)
	}
	for res.Next() {
		var id, outcome string
		var n int64
		if err := res.Scan(&id, &outcome, &n); err != nil {
			res.Close()
			return nil, err
		}
		r := get(id)
		r.Offered += n
		switch outcome {
		case "answered":
			r.Answered += n
		case "no_answer":
			r.NoAnswer += n
		case "busy":
			r.Busy += n
		case "unreachable":
			r.Unreachable += n
		}
	}
	res.Close()
	if err := res.Err(); err != nil {
		return nil, err
	}
	res, err = x.query(ctx, `SELECT agent, COUNT(*) FROM calls WHERE direction = 'outbound' AND started_ms >= ? AND started_ms < ? AND `+sc+filter+` GROUP BY agent`,
		append(append([]any{from, to}, sargs...), fargs...)...)
	if err != nil {
		return nil, fmt.Errorf("reports: agent outbound: %w", err)
	}
	for res.Next() {
		var id string
		var n int64
		if err := res.Scan(&id, &n); err != nil {
			res.Close()
			return nil, err
		}
		get(id).OutboundCalls = n
	}
	res.Close()
	if err := res.Err(); err != nil {
		return nil, err
	}
	names, err := x.query(ctx, `SELECT id, name FROM report_agents`)
	if err != nil {
		return nil, err
	}
	nameOf := map[string]string{}
	for names.Next() {
		var id, n string
		if err := names.Scan(&id, &n); err != nil {
			names.Close()
			return nil, err
		}
		nameOf[id] = n
	}
	names.Close()
	out := make([]AgentRow, 0, len(rows))
	for id, r := range rows {
		r.Name = nameOf[id]
		if r.Answered > 0 {
			r.AvgHandleSeconds = (r.TalkSeconds + r.AfterCallWorkSeconds) / r.Answered
		}
		sort.Slice(r.Statuses, func(i, j int) bool {
			a, b := r.Statuses[i], r.Statuses[j]
			return a.Field < b.Field || a.Field == b.Field && a.Status < b.Status
		})
		out = append(out, *r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Agent < out[j].Agent })
	return out, nil
}

// QueueRow is one queue's ACD performance over one interval (GET
// /v1/reports/queues).
type QueueRow struct {
	Queue               string    `json:"queue"`
	IntervalStart       time.Time `json:"interval_start"`
	Offered             int64     `json:"offered"`
	Answered            int64     `json:"answered"`
	Abandoned           int64     `json:"abandoned"`
	AnsweredWithinSL    int64     `json:"answered_within_sl"`
	ServiceLevelPercent *float64  `json:"service_level_percent"`
	AvgWaitSeconds      int64     `json:"avg_wait_seconds"`
	MaxWaitSeconds      int64     `json:"max_wait_seconds"`
	AvgTalkSeconds      int64     `json:"avg_talk_seconds"`
}

// Intervals of the queue report.
const (
	Hour = "hour"
	Day  = "day"
)

// Queues reports ACD performance per queue and local hour or day, from the
// inbound calls that entered a queue in the range. sl gives each queue's
// service level threshold in seconds (answered within it counts; the
// percentage is over answered + abandoned, as the live queue view).
func (d *DB) Queues(ctx context.Context, qq Query, interval, queue string, sl map[string]int) ([]QueueRow, error) {
	sc, args := scopeSQL(qq.Scope, "agent")
	where := "direction = 'inbound' AND started_ms >= ? AND started_ms < ? AND " + sc
	args = append([]any{qq.From.UnixMilli(), qq.To.UnixMilli()}, args...)
	if queue != "" {
		where, args = where+" AND queue = ?", append(args, queue)
	}
	rows, err := q{d: d, db: d.sql}.query(ctx, `SELECT queue, COALESCE(enqueued_ms, started_ms), answered_ms, ended_ms, talk_seconds FROM calls WHERE `+where, args...)
	if err != nil {
		return nil, fmt.Errorf("reports: queues: %w", err)
	}
	defer rows.Close()
	type acc struct {
		QueueRow
		waitMS, waitN, talk, talkN int64
	}
	loc := qq.loc()
	buckets := map[string]*acc{}
	// Bucket starts: the local hour or day of the queue entry; cached per
	// UTC hour, since time zone offsets change only on whole quarter-hours
	// far apart.
	startOf := map[int64]time.Time{}
	for rows.Next() {
		var qid string
		var enq int64
		var ans, end, talk sql.NullInt64
		if err := rows.Scan(&qid, &enq, &ans, &end, &talk); err != nil {
			return nil, err
		}
		key := enq / 60000 // per minute: exact for every zone offset
		start, ok := startOf[key]
		if !ok {
			t := time.UnixMilli(enq).In(loc)
			if interval == Day {
				start = time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, loc)
			} else {
				start = t.Truncate(time.Minute).Add(-time.Duration(t.Minute()) * time.Minute)
			}
			startOf[key] = start
		}
		bk := qid + "\x00" + strconv.FormatInt(start.Unix(), 10)
		b := buckets[bk]
		if b == nil {
			b = &acc{QueueRow: QueueRow{Queue: qid, IntervalStart: start}}
			buckets[bk] = b
		}
		b.Offered++
		var wait int64
		switch {
		case ans.Valid:
			b.Answered++
			wait = ans.Int64 - enq
			if s := sl[qid]; s > 0 && wait <= int64(s)*1000 {
				b.AnsweredWithinSL++
			}
			if talk.Valid {
				b.talk += talk.Int64
				b.talkN++
			}
		case end.Valid:
			b.Abandoned++
			wait = end.Int64 - enq
		default:
			continue // still waiting
		}
		b.waitMS += wait
		b.waitN++
		b.MaxWaitSeconds = max(b.MaxWaitSeconds, wait/1000)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	out := make([]QueueRow, 0, len(buckets))
	for _, b := range buckets {
		if n := b.Answered + b.Abandoned; n > 0 {
			p := math.Round(float64(b.AnsweredWithinSL)*1000/float64(n)) / 10
			b.ServiceLevelPercent = &p
		}
		if b.waitN > 0 {
			b.AvgWaitSeconds = int64(math.Round(float64(b.waitMS) / float64(b.waitN) / 1000))
		}
		if b.talkN > 0 {
			b.AvgTalkSeconds = int64(math.Round(float64(b.talk) / float64(b.talkN)))
		}
		out = append(out, b.QueueRow)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].IntervalStart.Equal(out[j].IntervalStart) {
			return out[i].IntervalStart.Before(out[j].IntervalStart)
		}
		return out[i].Queue < out[j].Queue
	})
	return out, nil
}
