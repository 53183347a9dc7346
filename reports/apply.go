package reports

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/callfloor/callfloor/internal/jsonv1"
	"strconv"
	"strings"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
)

// Cursor is the projector's place in the event log, kept in the reports
// database itself so rows and position always agree.
type Cursor struct {
	Position string    `json:"position"`
	LogEpoch string    `json:"log_epoch"`
	Applied  int64     `json:"events_applied"`
	Gaps     int64     `json:"gaps"`
	Updated  time.Time `json:"updated_at"`
}

// Gap is one stretch of the log the projector could not read (it was
// trimmed past the projector's position): rows for those events are
// missing.
type Gap struct {
	At            time.Time `json:"at"`
	AfterPosition string    `json:"after_position"`
	Reason        string    `json:"reason"`
}

// Cursor reads the stored position.
func (d *DB) Cursor(ctx context.Context) (Cursor, error) {
	var c Cursor
	var ms int64
	err := q{d: d, db: d.sql}.row(ctx, `SELECT position, log_epoch, applied, gaps, updated_ms FROM report_cursor WHERE id = 1`).
		Scan(&c.Position, &c.LogEpoch, &c.Applied, &c.Gaps, &ms)
	if err != nil {
		return Cursor{}, fmt.Errorf("reports: read cursor: %w", err)
	}
	if ms > 0 {
		c.Updated = time.UnixMilli(ms).UTC()
	}
	return c, nil
}

// Gaps lists every recorded gap, oldest first.
func (d *DB) Gaps(ctx context.Context) ([]Gap, error) {
	rows, err := q{d: d, db: d.sql}.query(ctx, `SELECT at_ms, after_position, reason FROM report_gaps ORDER BY at_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("reports: read gaps: %w", err)
	}
	defer rows.Close()
	out := []Gap{}
	for rows.Next() {
		var g Gap
		var ms int64
		if err := rows.Scan(&ms, &g.AfterPosition, &g.Reason); err != nil {
			return nil, err
		}
		g.At = time.UnixMilli(ms).UTC()
		out = append(out, g)
	}
	return out, rows.Err()
}

// moveCursor is the compare-and-set every write of the projector goes
// through: it fails with ErrMoved unless the stored position is still from.
func moveCursor(ctx context.Context, x q, from, to, epoch string, applied, gaps int64, now time.Time) error {
	res, err := x.exec(ctx, `UPDATE report_cursor SET position = ?, log_epoch = ?, applied = applied + ?, gaps = gaps + ?, updated_ms = ?
		WHERE id = 1 AND position = ?`, to, epoch, applied, gaps, now.UnixMilli(), from)
	if err != nil {
		return fmt.Errorf("move cursor: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return ErrMoved
	}
	return nil
}

// RecordGap notes that the log no longer holds the events after from and
// moves the cursor to to ("" = the oldest retained event), in one
// transaction.
func (d *DB) RecordGap(ctx context.Context, from, to, epoch, reason string, now time.Time) error {
	return d.inTx(ctx, func(x q) error {
		if err := moveCursor(ctx, x, from, to, epoch, 0, 1, now); err != nil {
			return err
		}
		_, err := x.exec(ctx, `INSERT INTO report_gaps (id, at_ms, after_position, reason) VALUES (?, ?, ?, ?)`,
			strconv.FormatInt(now.UnixNano(), 36)+"-"+from, now.UnixMilli(), from, reason)
		return err
	})
}

// ResetEpoch starts a new log (the store's log does not survive restarts,
// or the store was replaced): the cursor goes back to its start, rows stay.
func (d *DB) ResetEpoch(ctx context.Context, from, epoch string, now time.Time) error {
	return d.inTx(ctx, func(x q) error { return moveCursor(ctx, x, from, "", epoch, 0, 0, now) })
}

// Apply writes the rows of evs and moves the cursor from from to the last
// event's position, in one transaction: each event is applied exactly once
// even if the process dies at any point. It skips the statements whose
// outcome the DB's memo of its own earlier Applies already knows (see
// memo); now is also the clock that memo's retention guard reads.
func (d *DB) Apply(ctx context.Context, from, epoch string, evs []state.Event, now time.Time) error {
	if len(evs) == 0 {
		return nil
	}
	d.memo.mu.Lock()
	defer d.memo.mu.Unlock()
	to := evs[len(evs)-1].ID
	b := d.memo.batch(from, epoch, now)
	err := d.inTx(ctx, func(x q) error {
		x = x.preparing()
		if err := moveCursor(ctx, x, from, to, epoch, int64(len(evs)), 0, now); err != nil {
			return err
		}
		for i := range evs {
			if err := applyEvent(ctx, x, b, &evs[i]); err != nil {
				return fmt.Errorf("event %s (%s): %w", evs[i].ID, evs[i].Type, err)
			}
		}
		return nil
	})
	if err != nil {
		// Rolled back, or a commit whose outcome is unknown.
		d.memo.reset()
		return err
	}
	d.memo.merge(b, to, epoch)
	return nil
}

// applyEvent writes one event's rows. An event whose payload is not what
// this version projects is counted as applied without rows, never retried
// forever.
func applyEvent(ctx context.Context, x q, b *memoBatch, ev *state.Event) error {
	switch ev.Type {
	case routing.EventCall, routing.EventCallEnded:
		var v routing.CallView
		if err := jsonv1.Unmarshal(ev.Data, &v); err != nil || v.ID == "" {
			return nil // not a call view: nothing to project
		}
		return applyCall(ctx, x, b, ev, &v)
	case presence.EventAgent:
		var v presence.AgentView
		if err := jsonv1.Unmarshal(ev.Data, &v); err != nil || v.ID == "" {
			return nil
		}
		return applyAgent(ctx, x, b, ev, &v)
	case routing.EventMonitor:
		var v routing.MonitorView
		if err := jsonv1.Unmarshal(ev.Data, &v); err != nil || v.ID == "" {
			return nil
		}
		return applyMonitor(ctx, x, ev, &v)
	}
	return nil
}

// groupsCol stores a group list as ",g1,g2," so a group matches with
// LIKE '%,g,%' on both databases.
func groupsCol(gs []string) string {
	if len(gs) == 0 {
		return ","
	}
	return "," + strings.Join(gs, ",") + ","
}

func msPtr(t *time.Time) any {
	if t == nil || t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// Call outcomes in the calls table.
const (
	CallAnswered   = "answered"
	CallAbandoned  = "abandoned"  // inbound, ended before any agent answered
	CallUnanswered = "unanswered" // outbound, ended before the customer answered
	CallLive       = "live"       // not ended yet
)

// HungUpBy reads who ended a call from routing's end reason: "customer",
// "agent", the id of the user who hung it up through the API, or "system".
func HungUpBy(reason string) string {
	switch {
	case reason == "caller hung up" || reason == "customer hung up":
		return "customer"
	case reason == "agent hung up":
		return "agent"
	case strings.HasPrefix(reason, "hung up by "):
		return strings.TrimPrefix(reason, "hung up by ")
	}
	return "system"
}

func applyCall(ctx context.Context, x q, b *memoBatch, ev *state.Event, v *routing.CallView) error {
	r := v.Report
	var prevState, prevAgent string
	var transfers, startedMs int64
	var err error
	known := b.call(v.ID)
	exists := known != nil
	if exists {
		prevState, transfers, prevAgent, startedMs = known.state, known.transfers, known.agent, known.startedMs
	} else {
		err = x.row(ctx, `SELECT state, transfers, agent, started_ms FROM calls WHERE id = ?`, v.ID).Scan(&prevState, &transfers, &prevAgent, &startedMs)
		exists = err == nil
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read call %s: %w", v.ID, err)
		}
	}
	// An answered call ringing someone new is being transferred (or taken
	// over).
	if prevState == string(routing.StateAnswered) && v.State == routing.StateRinging {
		transfers++
	}
	agent := prevAgent
	if v.Agent != nil {
		agent = *v.Agent
	}
	campaign := ""
	if v.Campaign != nil {
		campaign = *v.Campaign
	}
	var enq, ring, ans *time.Time
	started := v.StartedAt
	if r != nil {
		if !r.EnqueuedAt.IsZero() {
			enq = &r.EnqueuedAt
		}
		if !r.RingStartedAt.IsZero() {
			ring = &r.RingStartedAt
		}
		ans = r.AnsweredAt
		// The view's started_at is whole seconds; the exact start is the
		// queue entry of an inbound call or the first event's time.
		switch {
		case enq != nil && enq.Truncate(time.Second).Equal(v.StartedAt.Truncate(time.Second)):
			started = *enq
		case !exists && r.At.Truncate(time.Second).Equal(v.StartedAt.Truncate(time.Second)):
			started = r.At
		}
	} else if v.AnsweredAt != nil {
		ans = v.AnsweredAt
	}
	outcome, cause, by := CallLive, "", ""
	var ended *time.Time
	var wait, talk any
	if v.Ended != nil {
		e := v.Ended.At
		ended = &e
		cause, by = v.Ended.Reason, HungUpBy(v.Ended.Reason)
		switch {
		case ans != nil:
			outcome = CallAnswered
			talk = secondsBetween(*ans, e)
		case v.Direction == routing.DirectionOutbound:
			outcome = CallUnanswered
		default:
			outcome = CallAbandoned
		}
	}
	// Wait: time in the queue until an agent answered (or the caller gave
	// up); inbound only.
	if v.Direction == routing.DirectionInbound {
		from := started
		if enq != nil {
			from = *enq
		}
		switch {
		case ans != nil:
			wait = secondsBetween(from, *ans)
		case ended != nil:
			wait = secondsBetween(from, *ended)
		}
	}
	if !exists {
		startedMs = started.UnixMilli()
		_, err = x.exec(ctx, `INSERT INTO calls (id, direction, customer_number, hotline, queue, campaign, scope_groups, state,
			started_ms, enqueued_ms, first_ring_ms, answered_ms, ended_ms, wait_seconds, talk_seconds, outcome, end_cause, hung_up_by,
			agent, transfers, monitors) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
			v.ID, v.Direction, v.CustomerNumber, v.Hotline, v.Queue, campaign, groupsCol(ev.Scope.Groups), string(v.State),
			startedMs, msPtr(enq), msPtr(ring), msPtr(ans), msPtr(ended), wait, talk, outcome, cause, by, agent, transfers)
	} else {
		_, err = x.exec(ctx, `UPDATE calls SET queue = ?, scope_groups = ?, state = ?, enqueued_ms = COALESCE(enqueued_ms, ?),
			first_ring_ms = COALESCE(first_ring_ms, ?), answered_ms = COALESCE(answered_ms, ?), ended_ms = ?, wait_seconds = ?,
			talk_seconds = ?, outcome = ?, end_cause = ?, hung_up_by = ?, agent = ?, transfers = ?, campaign = ? WHERE id = ?`,
			v.Queue, groupsCol(ev.Scope.Groups), string(v.State), msPtr(enq), msPtr(ring), msPtr(ans), msPtr(ended), wait,
			talk, outcome, cause, by, agent, transfers, campaign, v.ID)
	}
	if err != nil {
		return fmt.Errorf("write call %s: %w", v.ID, err)
	}
	written := &memoCall{state: string(v.State), transfers: transfers, agent: agent, startedMs: startedMs, attempts: b.attemptsOf(v.ID, known)}
	if v.Ended != nil {
		// No event follows a call's end: forget it.
		b.putCall(v.ID, nil)
	} else {
		b.putCall(v.ID, written)
	}

	if r == nil {
		return nil
	}
	for _, a := range r.Attempts {
		id := v.ID + "/" + a.Agent + "/" + string(a.Kind) + "/" + strconv.FormatInt(a.StartedAt.UnixMilli(), 10)
		if b.attemptKnown(written, id, a.StartedAt.UnixMilli()) {
			continue // inserted before: ON CONFLICT would do nothing
		}
		device, err := attemptDevice(ctx, x, b, a.Agent)
		if err != nil {
			return err
		}
		_, err = x.exec(ctx, `INSERT INTO ring_attempts (id, call_id, agent, kind, device, queue, scope_groups, started_ms, ended_ms, outcome, seconds)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			id, v.ID, a.Agent, string(a.Kind), device, v.Queue, groupsCol(ev.Scope.Groups), a.StartedAt.UnixMilli(), a.EndedAt.UnixMilli(),
			a.Outcome, secondsBetween(a.StartedAt, a.EndedAt))
		if err != nil {
			return fmt.Errorf("write ring attempt %s: %w", id, err)
		}
		written.attempts[id] = struct{}{}
	}
	return nil
}

// attemptDevice is how agent was rung: its distribution in report_agents
// ("" without a row).
func attemptDevice(ctx context.Context, x q, b *memoBatch, agent string) (string, error) {
	if a, ok := b.agent(agent); ok {
		return a.distribution, nil
	}
	var device string
	err := x.row(ctx, `SELECT distribution FROM report_agents WHERE id = ?`, agent).Scan(&device)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("read agent %s: %w", agent, err)
	}
	return device, nil
}

func secondsBetween(a, b time.Time) int64 {
	if b.Before(a) {
		return 0
	}
	return int64(b.Sub(a) / time.Second)
}

func applyAgent(ctx context.Context, x q, b *memoBatch, ev *state.Event, v *presence.AgentView) error {
	groups := groupsCol(v.Groups)
	row := memoAgent{name: v.Name, groups: groups, distribution: string(v.Distribution), role: string(v.Role)}
	if last, ok := b.agent(v.ID); !ok || last != row {
		_, err := x.exec(ctx, `INSERT INTO report_agents (id, name, scope_groups, distribution, role) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, scope_groups = excluded.scope_groups,
			distribution = excluded.distribution, role = excluded.role`,
			v.ID, row.name, row.groups, row.distribution, row.role)
		if err != nil {
			return fmt.Errorf("write agent %s: %w", v.ID, err)
		}
		b.putAgent(v.ID, row)
	}
	for i, row := range v.Changes {
		ms := row.At.UnixMilli()
		// The open interval of this field ends here, and the new status's
		// begins.
		if _, err := x.exec(ctx, `UPDATE agent_intervals SET to_ms = ?, seconds = (? - from_ms) / 1000
			WHERE agent = ? AND field = ? AND to_ms IS NULL`, ms, ms, v.ID, string(row.Field)); err != nil {
			return fmt.Errorf("close interval: %w", err)
		}
		_, err := x.exec(ctx, `INSERT INTO agent_intervals (id, agent, scope_groups, field, status, from_ms, to_ms, seconds, changed_by)
			VALUES (?, ?, ?, ?, ?, ?, NULL, NULL, ?) ON CONFLICT (id) DO NOTHING`,
			ev.ID+"/"+strconv.Itoa(i), v.ID, groups, string(row.Field), row.To, ms, row.By)
		if err != nil {
			return fmt.Errorf("open interval: %w", err)
		}
	}
	return nil
}

func applyMonitor(ctx context.Context, x q, ev *state.Event, v *routing.MonitorView) error {
	at := ev.At
	var mode, changes string
	var paused int
	err := x.row(ctx, `SELECT mode, paused, mode_changes FROM monitors WHERE id = ?`, v.ID).Scan(&mode, &paused, &changes)
	if errors.Is(err, sql.ErrNoRows) {
		var agent, queue, groups string
		err := x.row(ctx, `SELECT agent, queue, scope_groups FROM calls WHERE id = ?`, v.CallID).Scan(&agent, &queue, &groups)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if groups == "" {
			groups = groupsCol(ev.Scope.Groups)
		}
		if _, err := x.exec(ctx, `INSERT INTO monitors (id, call_id, supervisor, agent, queue, scope_groups, mode, paused, mode_changes,
			started_ms, answered_ms, ended_ms, seconds, end_reason) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?, NULL, NULL, NULL, '')`,
			v.ID, v.CallID, v.Supervisor, agent, queue, groups, string(v.Mode), string(v.Mode), at.UnixMilli()); err != nil {
			return fmt.Errorf("write monitor %s: %w", v.ID, err)
		}
		if _, err := x.exec(ctx, `UPDATE calls SET monitors = monitors + 1 WHERE id = ?`, v.CallID); err != nil {
			return err
		}
		mode, changes = string(v.Mode), string(v.Mode)
	} else if err != nil {
		return err
	}
	// mode_changes lists what the supervisor did, in order, e.g.
	// "listen,paused,listen,barge".
	isPaused := 0
	if v.Paused {
		isPaused = 1
	}
	switch {
	case isPaused == 1 && paused == 0:
		changes += ",paused"
	case isPaused == 0 && paused == 1, string(v.Mode) != mode:
		changes += "," + string(v.Mode)
	}
	var answered any
	if v.Answered {
		answered = at.UnixMilli()
	}
	var ended any
	if v.Ended {
		ended = at.UnixMilli()
	}
	_, err = x.exec(ctx, `UPDATE monitors SET mode = ?, paused = ?, mode_changes = ?, answered_ms = COALESCE(answered_ms, ?),
		ended_ms = COALESCE(ended_ms, ?), end_reason = ? WHERE id = ?`,
		string(v.Mode), isPaused, changes, answered, ended, v.Reason, v.ID)
	if err != nil {
		return err
	}

	if v.Ended {
		_, err = x.exec(ctx, `UPDATE monitors SET seconds = (ended_ms - started_ms) / 1000 WHERE id = ?`, v.ID)
	}
	return err
}
