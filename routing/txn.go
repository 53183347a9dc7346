package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// Event types routing emits (API.md, Events).
const (
	EventCall      = "call"
	EventCallEnded = "call_ended"
	EventQueue     = "queue"
	EventMonitor   = "monitor"
)

// txn is one attempt at a call change: the call as read, the agents it
// touches, counters, and effects to run once the change is committed. The
// change function may run more than once (an agent record changed under
// it), so it must only decide; media commands go into after.
type txn struct {
	e      *Engine
	now    time.Time
	call   *Call
	exists bool
	before []byte
	// beforeOffers are the call's offers as read, for report: decoding
	// before again on every change was a second decode of the call.
	beforeOffers []Offer
	monPrev      *Monitor
	// ended, when set, deletes the call and emits call_ended.
	ended     *EndedInfo
	monReason string
	// endCause, when set, is what finish hangs the legs up with
	// (default normal): a queue overflow's configured cause.
	endCause media.Cause
	// monLockVersion: the version of a stale monitoringKey record this
	// change takes over (MustNotExist otherwise).
	monLockVersion int64
	agents         map[string]*stagedAgent
	order          []string
	incrs          []state.Incr
	metas          []state.Put
	after          []func(ctx context.Context)
	// outcomes says how offers removed in this change ended, by
	// attemptKey; a removed offer not listed was answered (its leg is the
	// call's agent leg) or cancelled.
	outcomes map[string]string
}

func attemptKey(o Offer) string { return o.Agent + "|" + string(o.Kind) }

// attemptEnded records why an offer removed in this change ended.
func (t *txn) attemptEnded(o Offer, outcome string) {
	if t.outcomes == nil {
		t.outcomes = map[string]string{}
	}
	t.outcomes[attemptKey(o)] = outcome
}

// report lists the offers of the call as read that this change ended,
// with their outcome, plus the call's exact times.
func (t *txn) report(c *Call) *CallReport {
	r := &CallReport{At: t.now, EnqueuedAt: c.EnqueuedAt, RingStartedAt: c.RingStartedAt, AnsweredAt: c.AnsweredAt}
	for _, o := range t.beforeOffers {
		if o.Agent == "" || o.Kind == OfferCustomer {
			continue
		}
		if t.ended == nil && slices.ContainsFunc(c.Offers, func(n Offer) bool {
			return n.Agent == o.Agent && n.Kind == o.Kind && n.StartedAt.Equal(o.StartedAt)
		}) {
			continue
		}
		outcome, ok := t.outcomes[attemptKey(o)]
		switch {
		case ok:
		case o.Leg != "" && o.Leg == c.AgentLeg:
			outcome = OutcomeAnswered
		default:
			outcome = OutcomeCancelled
		}
		r.Attempts = append(r.Attempts, AttemptEnded{Agent: o.Agent, Kind: o.Kind, StartedAt: o.StartedAt, EndedAt: t.now, Outcome: outcome})
	}
	return r
}

type stagedAgent struct {
	a     presence.Agent
	rows  []presence.HistoryRow
	dirty bool
}

// maxAttempts bounds retries when agent records change concurrently.
const maxAttempts = 16

// change reads call callID (nil if it does not exist), lets fn decide, and
// commits the call, touched agents (with history and events), monitor
// records and counters in one Tx; then it runs the txn's effects.
func (e *Engine) change(ctx context.Context, callID string, fn func(t *txn) error) (*txn, error) {
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := state.RetryWait(ctx, attempt); err != nil {
				return nil, err
			}
		}
		t := &txn{e: e, now: e.now(), agents: make(map[string]*stagedAgent)}
		rec, err := e.st.Get(ctx, state.KindCall, callID)
		switch {
		case errors.Is(err, state.ErrNotFound):
		case err != nil:
			return nil, fmt.Errorf("get call %s: %w", callID, err)
		default:
			c, err := decodeCall(rec)
			if err != nil {
				return nil, err
			}
			t.call, t.exists, t.before = &c, true, rec.Data
			t.beforeOffers = slices.Clone(c.Offers) // Offer holds values only
			if c.Monitor != nil {
				m := *c.Monitor
				t.monPrev = &m
			}
		}
		if err := fn(t); err != nil {
			return nil, err
		}
		tx, err := t.build()
		if err != nil {
			return nil, err
		}
		if !tx.Empty() {
			_, err = e.commit(ctx, tx)
			if errors.Is(err, state.ErrConflict) {
				e.obs.ConflictRetry()
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("commit call %s: %w", callID, err)
			}
		}
		for _, f := range t.after {
			f(ctx)
		}
		return t, nil
	}
	return nil, fmt.Errorf("call %s: too many concurrent changes: %w", callID, presence.ErrConflict)
}

// then queues an effect for after the commit.
func (t *txn) then(f func(ctx context.Context)) { t.after = append(t.after, f) }

// end marks the call ended for reason.
func (t *txn) end(reason string) {
	t.ended = &EndedInfo{At: t.now, Reason: reason}
}

// agent loads an agent once per attempt.
func (t *txn) agent(ctx context.Context, id string) (*presence.Agent, error) {
	if s, ok := t.agents[id]; ok {
		return &s.a, nil
	}
	a, err := t.e.agents.Agent(ctx, id)
	if err != nil {
		return nil, err
	}
	t.agents[id] = &stagedAgent{a: a}
	t.order = append(t.order, id)
	return &t.agents[id].a, nil
}

// sys moves an agent's system status (through presence's transition
// table) and stages the change.
func (t *txn) sys(ctx context.Context, id string, to presence.SystemStatus, callID *string) error {
	a, err := t.agent(ctx, id)
	if err != nil {
		return err
	}
	if a.SystemStatus == to && sameCall(a.CallID, callID) {
		return nil
	}
	if a.SystemStatus == to {
		a.CallID = callID
		t.agents[id].dirty = true
		return nil
	}
	row, err := presence.ApplySystemStatus(a, to, callID, t.now)
	if err != nil {
		return err
	}
	s := t.agents[id]
	s.rows = append(s.rows, row)
	s.dirty = true
	return nil
}

// callStatus sets an agent's manual call status (a no-op if they have
// it) and stages the change with its history row.
func (t *txn) callStatus(ctx context.Context, id, status string) error {
	a, err := t.agent(ctx, id)
	if err != nil {
		return err
	}
	rows := presence.ApplyCallStatus(a, status, t.now, presence.BySystem)
	if len(rows) > 0 {
		s := t.agents[id]
		s.rows = append(s.rows, rows...)
		s.dirty = true
	}
	return nil
}

// release takes an agent off this call: after talking into wrap-up (or
// straight to available), after ringing back to available. An agent who
// has already moved on to another call is left alone.
func (t *txn) release(ctx context.Context, id string, wrapup time.Duration) error {
	a, err := t.agent(ctx, id)
	if errors.Is(err, presence.ErrNotFound) {
		return nil // deleted meanwhile: nothing to release
	}
	if err != nil {
		return err
	}
	if a.CallID == nil || *a.CallID != t.call.ID {
		return nil
	}
	switch a.SystemStatus {
	case presence.SysTalking:
		if wrapup > 0 {
			if err := t.sys(ctx, id, presence.SysAfterCallWork, nil); err != nil {
				return err
			}
			a.WrapUpUntil = t.now.Add(wrapup)
			until := a.WrapUpUntil
			t.then(func(context.Context) { t.e.armWrapUp(id, until) })
			return nil
		}
		return t.sys(ctx, id, presence.SysAvailable, nil)
	case presence.SysRinging:
		return t.sys(ctx, id, presence.SysAvailable, nil)
	}
	a.CallID = nil
	t.agents[id].dirty = true
	return nil
}

// incr adds delta to a counter field.
func (t *txn) incr(counter, field string, delta int64) {
	t.incrs = append(t.incrs, state.Incr{Counter: counter, Field: field, Delta: delta})
}

// build turns the attempt into a Tx.
func (t *txn) build() (state.Tx, error) {
	var tx state.Tx
	e := t.e
	loc := e.loc()
	for _, id := range t.order {
		s := t.agents[id]
		if !s.dirty && len(s.rows) == 0 {
			continue
		}
		if err := presence.Stage(&tx, &s.a, s.rows, t.now, loc); err != nil {
			return tx, err
		}
	}
	if t.call != nil {
		c := t.call
		for i := range c.Offers {
			if c.Offers[i].StartedAt.IsZero() {
				c.Offers[i].StartedAt = t.now
			}
		}
		if t.ended != nil {
			// A call that ends keeps no monitor.
			c.Monitor = nil
		}
		if err := t.stageMonitor(&tx, c); err != nil {
			return tx, err
		}
		data, err := json.Marshal(c)
		if err != nil {
			return tx, fmt.Errorf("encode call %s: %w", c.ID, err)
		}
		switch {
		case t.ended != nil:
			if t.exists {
				tx.Deletes = append(tx.Deletes, state.Delete{Kind: state.KindCall, ID: c.ID, IfVersion: c.Version})
			}
			v := c.View(t.now, loc)
			v.Ended = &EndedInfo{At: t.ended.At.In(loc), Reason: t.ended.Reason}
			v.Report = t.report(c)
			if err := addEvent(&tx, EventCallEnded, c.Scope(), v); err != nil {
				return tx, err
			}
		case !t.exists || !bytes.Equal(data, t.before):
			ifv := c.Version
			if !t.exists {
				ifv = state.MustNotExist
			}
			tx.Puts = append(tx.Puts, state.Put{Kind: state.KindCall, ID: c.ID, Data: data, IfVersion: ifv})
			v := c.View(t.now, loc)
			v.Report = t.report(c)
			if err := addEvent(&tx, EventCall, c.Scope(), v); err != nil {
				return tx, err
			}
		}
	}
	tx.Incrs = append(tx.Incrs, t.incrs...)
	tx.Puts = append(tx.Puts, t.metas...)
	return tx, nil
}

// stageMonitor mirrors the call's monitor into a KindMonitor record (so a
// monitor is found by id, and a supervisor's running monitors by listing)
// and emits "monitor" events; the final one says why it ended.
func (t *txn) stageMonitor(tx *state.Tx, c *Call) error {
	prev, cur := t.monPrev, c.Monitor
	scope := func(m *Monitor) state.Scope {
		s := c.Scope()
		s.Agent = m.Supervisor
		return s
	}
	if prev != nil && (cur == nil || cur.ID != prev.ID) {
		tx.Deletes = append(tx.Deletes, state.Delete{Kind: state.KindMonitor, ID: prev.ID, IfVersion: state.AnyVersion})
		v := prev.View()
		v.Ended = true
		v.Reason = t.monReason
		if v.Reason == "" {
			v.Reason = "monitor ended"
		}
		if err := addEvent(tx, EventMonitor, scope(prev), v); err != nil {
			return err
		}
	}
	if prev != nil && (cur == nil || cur.ID != prev.ID) && (cur == nil || cur.Supervisor != prev.Supervisor) {
		tx.Deletes = append(tx.Deletes, state.Delete{Kind: state.KindMeta, ID: monitoringKey(prev.Supervisor), IfVersion: state.AnyVersion})
	}
	if cur == nil || (prev != nil && *prev == *cur) {
		return nil
	}
	data, err := json.Marshal(cur)
	if err != nil {
		return fmt.Errorf("encode monitor: %w", err)
	}
	tx.Puts = append(tx.Puts, state.Put{Kind: state.KindMonitor, ID: cur.ID, Data: data, IfVersion: state.AnyVersion})
	if prev == nil || prev.ID != cur.ID {
		// A supervisor monitors one call at a time (monitorsNothingElse).
		lock, err := json.Marshal(monitoring{Monitor: cur.ID, Call: c.ID})
		if err != nil {
			return fmt.Errorf("encode monitor lock: %w", err)
		}
		ifv := t.monLockVersion
		if prev != nil && prev.Supervisor == cur.Supervisor {
			ifv = state.AnyVersion
		}
		tx.Puts = append(tx.Puts, state.Put{Kind: state.KindMeta, ID: monitoringKey(cur.Supervisor), Data: lock, IfVersion: ifv})
	}
	if prev != nil && prev.ID == cur.ID && prev.View() == cur.View() {
		return nil // bookkeeping only (the leg, ringing): nothing to tell
	}
	return addEvent(tx, EventMonitor, scope(cur), cur.View())
}

func addEvent(tx *state.Tx, typ string, scope state.Scope, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s event: %w", typ, err)
	}
	tx.Events = append(tx.Events, state.NewEvent{Type: typ, Scope: scope, Data: data})
	return nil
}

func sameCall(a, b *string) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func ptr[T any](v T) *T { return &v }
