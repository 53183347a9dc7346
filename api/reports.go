package api

import (
	"bufio"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/reports"
)

// ReportsDB is what the reports endpoints read (reports.DB implements it).
// The list reports stream their page: a CSV export writes each row as
// the database returns it.
type ReportsDB interface {
	EachCall(ctx context.Context, q reports.Query, f reports.CallFilter, p reports.Page[reports.CallRow]) error
	EachAttempt(ctx context.Context, q reports.Query, f reports.AttemptFilter, p reports.Page[reports.AttemptRow]) error
	EachMonitor(ctx context.Context, q reports.Query, supervisor string, p reports.Page[reports.MonitorRow]) error
	EachInterval(ctx context.Context, q reports.Query, agent, field string, p reports.Page[reports.IntervalRow]) error
	Agents(ctx context.Context, q reports.Query, agent string, now time.Time) ([]reports.AgentRow, error)
	Queues(ctx context.Context, q reports.Query, interval, queue string, sl map[string]int) ([]reports.QueueRow, error)
	Cursor(ctx context.Context) (reports.Cursor, error)
	Gaps(ctx context.Context) ([]reports.Gap, error)
}

// ServiceLevels returns each queue's service level threshold in seconds.
type ServiceLevels func(ctx context.Context) (map[string]int, error)

// Limits of the reports endpoints: a JSON page, a CSV export, a range.
const (
	reportPageDefault = 100
	reportPageMax     = 1000
	reportCSVMax      = 100000
	reportMaxDays     = 366
)

// ReportsRoutes serves GET /v1/reports/* (README.md, Reports) over the
// reports database; times are shown, and local dates read, in the
// account's time zone (the agent service's).
func ReportsRoutes(db ReportsDB, agents *presence.Service, sl ServiceLevels) func(v1 *echo.Group, auth echo.MiddlewareFunc) {
	h := reportHandlers{db: db, agents: agents, sl: sl}
	return func(v1 *echo.Group, auth echo.MiddlewareFunc) {
		g := v1.Group("", auth)
		g.GET("/reports/calls", h.calls)
		g.GET("/reports/attempts", h.attempts)
		g.GET("/reports/monitors", h.monitors)
		g.GET("/reports/statuses", h.statuses)
		g.GET("/reports/agents", h.agentsReport)
		g.GET("/reports/queues", h.queues)
		g.GET("/reports/status", h.status)
	}
}

type reportHandlers struct {
	db     ReportsDB
	agents *presence.Service
	sl     ServiceLevels
}

// reportScope turns the caller into the reports' visibility scope (the
// same rules as every other read: README.md, API).
func reportScope(a presence.Actor) reports.Scope {
	s := reports.Scope{All: a.IsAdmin(), Self: a.ID}
	s.Groups = append(s.Groups, a.Groups...)
	if a.Role == presence.RoleSupervisor {
		s.Groups = append(s.Groups, a.Supervises...)
	}
	return s
}

// ParseReportTime reads a from/to value: a local date (YYYY-MM-DD, the
// start of that day in loc) or an RFC 3339 time. date reports which.
func ParseReportTime(v string, loc *time.Location) (t time.Time, date bool, err error) {
	if len(v) == len(time.DateOnly) {
		d, err := time.ParseInLocation(time.DateOnly, v, loc)
		return d, true, err
	}
	t, err = time.Parse(time.RFC3339, v)
	return t, false, err
}

// reportRange reads from and to: a date "to" includes that whole day.
// Both default to today (local).
func reportRange(c echo.Context, loc *time.Location, now time.Time) (time.Time, time.Time, error) {
	local := now.In(loc)
	today := time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc)
	from, to := today, today.AddDate(0, 0, 1)
	bad := func(name string) error {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_" + name, Field: name,
			Message: name + ": must be a local date like 2026-11-21 or an RFC 3339 time like 2026-11-21T08:00:00+07:00"}
	}
	if v := c.QueryParam("from"); v != "" {
		t, _, err := ParseReportTime(v, loc)
		if err != nil {
			return from, to, bad("from")
		}
		from = t
		if c.QueryParam("to") == "" {
			t := from.In(loc)
			to = time.Date(t.Year(), t.Month(), t.Day()+1, 0, 0, 0, 0, loc)
		}
	}
	if v := c.QueryParam("to"); v != "" {
		t, date, err := ParseReportTime(v, loc)
		if err != nil {
			return from, to, bad("to")
		}
		if date {
			t = t.AddDate(0, 0, 1)
		}
		to = t
	}
	switch {
	case !to.After(from):
		return from, to, &Error{Status: http.StatusBadRequest, Code: "invalid_to", Field: "to", Message: "to: must be after from"}
	case to.Sub(from) > reportMaxDays*24*time.Hour:
		return from, to, &Error{Status: http.StatusBadRequest, Code: "invalid_to", Field: "to",
			Message: fmt.Sprintf("to: a report covers at most %d days", reportMaxDays)}
	}
	return from, to, nil
}

// wantsCSV: ?format=csv, or Accept: text/csv (format=json wins over it).
func wantsCSV(c echo.Context) (bool, error) {
	switch c.QueryParam("format") {
	case "csv":
		return true, nil
	case "json":
		return false, nil
	case "":
		return strings.Contains(c.Request().Header.Get("Accept"), "text/csv"), nil
	}
	return false, &Error{Status: http.StatusBadRequest, Code: "invalid_format", Field: "format", Message: "format: must be json or csv"}
}

// reportQuery reads everything the list reports share.
func (h reportHandlers) reportQuery(c echo.Context) (reports.Query, bool, error) {
	loc, now := h.agents.Location(), h.agents.Now()
	csvOut, err := wantsCSV(c)
	if err != nil {
		return reports.Query{}, false, err
	}
	from, to, err := reportRange(c, loc, now)
	if err != nil {
		return reports.Query{}, false, err
	}
	limit, maxLimit := reportPageDefault, reportPageMax
	if csvOut {
		limit, maxLimit = reportCSVMax, reportCSVMax
	}
	if v := c.QueryParam("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return reports.Query{}, false, &Error{Status: http.StatusBadRequest, Code: "invalid_limit", Field: "limit",
				Message: fmt.Sprintf("limit: must be a whole number from 1 to %d", maxLimit)}
		}
		limit = n
	}
	cur := c.QueryParam("cursor")
	if cur != "" {
		if _, _, err := reports.DecodeCursor(cur); err != nil {
			return reports.Query{}, false, badCursor()
		}
	}
	return reports.Query{Scope: reportScope(ActorOf(c)), From: from, To: to, Loc: loc, Limit: limit, Cursor: cur}, csvOut, nil
}

func badCursor() *Error {
	return &Error{Status: http.StatusBadRequest, Code: "invalid_cursor", Field: "cursor", Message: "cursor: pass next_cursor from the previous page unchanged"}
}

// oneOf checks an enumerated filter.
func oneOf(c echo.Context, name string, allowed ...string) (string, error) {
	v := c.QueryParam(name)
	if v == "" {
		return "", nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", &Error{Status: http.StatusBadRequest, Code: "invalid_" + name, Field: name,
		Message: name + ": must be one of " + strings.Join(allowed, ", ")}
}

// reportErr maps database failures: a cursor the database rejects is the
// caller's; anything else means the reports database is unavailable.
func reportErr(err error) error {
	if errors.Is(err, reports.ErrBadCursor) {
		return badCursor()
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "reports_unavailable", Message: "the reports database failed: " + err.Error()}
}

// reportPage is the JSON of a list report.
type reportPage[T any] struct {
	From       time.Time `json:"from"`
	To         time.Time `json:"to"`
	Items      []T       `json:"items"`
	NextCursor *string   `json:"next_cursor"`
}

// writeList answers a list report: a JSON page, or CSV rows written as
// read hands them over (a day's export is never held whole in memory).
func writeList[T any](c echo.Context, q reports.Query, csvOut bool, name string, read func(ctx context.Context, p reports.Page[T]) error) error {
	ctx := c.Request().Context()
	if !csvOut {
		p := reportPage[T]{From: q.From.In(q.Loc), To: q.To.In(q.Loc), Items: []T{}}
		err := read(ctx, reports.Page[T]{
			Start: func(next string) error {
				if next != "" {
					p.NextCursor = &next
				}
				return nil
			},
			Row: func(r *T) error { p.Items = append(p.Items, *r); return nil },
		})
		if err != nil {
			return reportErr(err)
		}
		return c.JSON(http.StatusOK, p)
	}
	enc := newCSVEncoder[T]()
	var w *csv.Writer
	err := read(ctx, reports.Page[T]{
		Start: func(next string) error {
			if next != "" {
				c.Response().Header().Set("X-Next-Cursor", next)
			}
			w = startCSV(c, name, q, enc.header)
			return w.Error()
		},
		Row: func(r *T) error { return w.Write(enc.row(r)) },
	})
	if err == nil && w != nil {
		w.Flush()
		err = w.Error()
	}
	switch {
	case err == nil:
		return nil
	case w == nil:
		return reportErr(err) // nothing sent yet: an error answer
	case ctx.Err() != nil:
		return ctx.Err() // the client went away
	default:
		// Rows went out under a 200: end the response unfinished (no
		// closing chunk) so that a cut export is not taken for a whole one.
		panic(http.ErrAbortHandler)
	}
}

func (h reportHandlers) calls(c echo.Context) error {
	q, csvOut, err := h.reportQuery(c)
	if err != nil {
		return err
	}
	f := reports.CallFilter{Queue: c.QueryParam("queue"), Agent: c.QueryParam("agent"), Customer: c.QueryParam("customer_number")}
	if f.Direction, err = oneOf(c, "direction", "inbound", "outbound"); err != nil {
		return err
	}
	if f.Outcome, err = oneOf(c, "outcome", reports.CallAnswered, reports.CallAbandoned, reports.CallUnanswered, reports.CallLive); err != nil {
		return err
	}
	return writeList(c, q, csvOut, "calls", func(ctx context.Context, p reports.Page[reports.CallRow]) error {
		return h.db.EachCall(ctx, q, f, p)
	})
}

func (h reportHandlers) attempts(c echo.Context) error {
	q, csvOut, err := h.reportQuery(c)
	if err != nil {
		return err
	}
	f := reports.AttemptFilter{Queue: c.QueryParam("queue"), Agent: c.QueryParam("agent"), Call: c.QueryParam("call")}
	if f.Outcome, err = oneOf(c, "outcome", "answered", "no_answer", "busy", "unreachable", "cancelled"); err != nil {
		return err
	}
	return writeList(c, q, csvOut, "attempts", func(ctx context.Context, p reports.Page[reports.AttemptRow]) error {
		return h.db.EachAttempt(ctx, q, f, p)
	})
}

func (h reportHandlers) monitors(c echo.Context) error {
	q, csvOut, err := h.reportQuery(c)
	if err != nil {
		return err
	}
	supervisor := c.QueryParam("supervisor")
	return writeList(c, q, csvOut, "monitors", func(ctx context.Context, p reports.Page[reports.MonitorRow]) error {
		return h.db.EachMonitor(ctx, q, supervisor, p)
	})
}

func (h reportHandlers) statuses(c echo.Context) error {
	q, csvOut, err := h.reportQuery(c)
	if err != nil {
		return err
	}
	field, err := oneOf(c, "field", "call_status", "chat_status", "system_status", "online")
	if err != nil {
		return err
	}
	agent := c.QueryParam("agent")
	return writeList(c, q, csvOut, "statuses", func(ctx context.Context, p reports.Page[reports.IntervalRow]) error {
		return h.db.EachInterval(ctx, q, agent, field, p)
	})
}

func (h reportHandlers) agentsReport(c echo.Context) error {
	q, csvOut, err := h.reportQuery(c)
	if err != nil {
		return err
	}
	rows, err := h.db.Agents(c.Request().Context(), q, c.QueryParam("agent"), h.agents.Now())
	if err != nil {
		return reportErr(err)
	}
	if !csvOut {
		return writeAll(c, q, false, "agents", rows)
	}
	// CSV: the fixed columns, then one column per status seen
	// ("call_status:lunch_break", …) with its seconds.
	var cols []string
	seen := map[string]bool{}
	for _, r := range rows {
		for _, s := range r.Statuses {
			k := s.Field + ":" + s.Status
			if !seen[k] {
				seen[k] = true
				cols = append(cols, k)
			}
		}
	}
	slices.Sort(cols)
	enc := newCSVEncoder[reports.AgentRow]()
	w := startCSV(c, "agents", q, append(slices.Clip(enc.header), cols...))
	for i := range rows {
		secs := map[string]int64{}
		for _, s := range rows[i].Statuses {
			secs[s.Field+":"+s.Status] = s.Seconds
		}
		rec := enc.row(&rows[i])
		for _, k := range cols {
			rec = append(rec, strconv.FormatInt(secs[k], 10))
		}
		_ = w.Write(rec)
	}
	w.Flush()
	return w.Error()
}

func (h reportHandlers) queues(c echo.Context) error {
	q, csvOut, err := h.reportQuery(c)
	if err != nil {
		return err
	}
	interval, err := oneOf(c, "interval", reports.Hour, reports.Day)
	if err != nil {
		return err
	}
	if interval == "" {
		interval = reports.Day
	}
	sl, err := h.sl(c.Request().Context())
	if err != nil {
		return err
	}
	rows, err := h.db.Queues(c.Request().Context(), q, interval, c.QueryParam("queue"), sl)
	if err != nil {
		return reportErr(err)
	}
	return writeAll(c, q, csvOut, "queues", rows)
}

// reportStatus is GET /v1/reports/status: where the projection is, and
// every gap (events the log no longer held when the projector needed them).
type reportStatus struct {
	reports.Cursor
	GapList []reports.Gap `json:"gap_list"`
}

func (h reportHandlers) status(c echo.Context) error {
	if !ActorOf(c).IsAdmin() {
		return Errorf(http.StatusForbidden, "forbidden", "the reports status is for admins")
	}
	ctx := c.Request().Context()
	cur, err := h.db.Cursor(ctx)
	if err != nil {
		return reportErr(err)
	}
	gaps, err := h.db.Gaps(ctx)
	if err != nil {
		return reportErr(err)
	}
	cur.Updated = cur.Updated.In(h.agents.Location())
	return c.JSON(http.StatusOK, reportStatus{Cursor: cur, GapList: gaps})
}

// writeAll answers a report already read whole (agents, queues).
func writeAll[T any](c echo.Context, q reports.Query, csvOut bool, name string, rows []T) error {
	return writeList(c, q, csvOut, name, func(_ context.Context, p reports.Page[T]) error {
		if err := p.Start(""); err != nil {
			return err
		}
		for i := range rows {
			if err := p.Row(&rows[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// startCSV sends the headers of a CSV answer and its header line, and
// returns the writer of its rows (buffered: the caller flushes).
func startCSV(c echo.Context, name string, q reports.Query, header []string) *csv.Writer {
	res := c.Response()
	res.Header().Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	res.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="%s-%s.csv"`, name, q.From.In(q.Loc).Format(time.DateOnly)))
	res.WriteHeader(http.StatusOK)
	w := csv.NewWriter(bufio.NewWriterSize(res, 64<<10))
	_ = w.Write(header)
	return w
}

// csvEncoder renders a row type's scalar fields as CSV columns named by
// their JSON names, in order (lists get their own columns: agents); times
// RFC 3339, absent values empty. The columns are found once per type, not
// per row.
type csvEncoder[T any] struct {
	header []string
	fields []int
	rec    []string
}

var timeType = reflect.TypeFor[time.Time]()

func newCSVEncoder[T any]() *csvEncoder[T] {
	e := &csvEncoder[T]{}
	t := reflect.TypeFor[T]()
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if k := f.Type.Kind(); name == "" || name == "-" || k == reflect.Slice || k == reflect.Map {
			continue
		}
		e.header, e.fields = append(e.header, name), append(e.fields, i)
	}
	e.rec = make([]string, len(e.fields))
	return e
}

// row renders r; the slice is reused by the next call.
func (e *csvEncoder[T]) row(r *T) []string {
	v := reflect.ValueOf(r).Elem()
	for j, i := range e.fields {
		e.rec[j] = csvValue(v.Field(i))
	}
	return e.rec[:len(e.fields):len(e.fields)]
}

func csvValue(v reflect.Value) string {
	if v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return ""
		}
		v = v.Elem()
	}
	if v.Type() == timeType {
		return v.Addr().Interface().(*time.Time).Format(time.RFC3339)
	}
	switch v.Kind() {
	case reflect.String:
		return v.String()
	case reflect.Int, reflect.Int64, reflect.Int32:
		return strconv.FormatInt(v.Int(), 10)
	case reflect.Float64, reflect.Float32:
		return strconv.FormatFloat(v.Float(), 'f', -1, 64)
	case reflect.Bool:
		return strconv.FormatBool(v.Bool())
	}
	return fmt.Sprint(v.Interface())
}
