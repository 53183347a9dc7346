package reportstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/reports"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// testMemo: the projector skips statements whose outcome its memo of its
// own writes already knows; every table must still hold exactly what
// projecting each event alone, on a database handle that remembers
// nothing (the projection without a memo), writes. The events cover
// transfers, repeated ring attempts, agents whose attributes change or not,
// batches of several sizes, an Apply that fails mid-batch (its context
// cancelled at points spread over the batch), another replica writing between
// two of this one's batches, a projector restart, and retention deleting
// rows the memo wrote.
func testMemo(t *testing.T, newDB Factory) {
	ctx := context.Background()
	st := store.NewMemory()
	t.Cleanup(func() { _ = st.Close() })
	const epoch = "memo-epoch"
	if _, err := st.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindMeta, ID: "reports-log-epoch", Data: []byte(epoch), IfVersion: state.MustNotExist}}}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	sc := memoScript(base)
	logged := func(nevs []state.NewEvent) []state.Event {
		t.Helper()
		evs, err := st.Commit(ctx, state.Tx{Events: nevs})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	now := base.Add(time.Hour)
	later := base.AddDate(0, 0, 3) // retention's clock, and the projector's after it

	openSubject := newDB(t)
	db := openDB(t, openSubject)
	must(t, db.ResetEpoch(ctx, "", epoch, now))
	ref := &plainProjection{t: t, open: newDB(t), epoch: epoch}
	ref.reset(now)
	pos := ""
	applyIn := func(db *reports.DB, evs []state.Event, sizes []int, at time.Time) {
		t.Helper()
		for i, n := 0, 0; i < len(evs); n++ {
			j := min(i+sizes[n%len(sizes)], len(evs))
			must(t, db.Apply(ctx, pos, epoch, evs[i:j], at))
			pos = evs[j-1].ID
			i = j
		}
	}
	check := func(phase string) {
		t.Helper()
		if a, b := tables(t, db), ref.tables(); a != b {
			t.Fatalf("%s: the projection with its memo differs from the plain one:\n%s", phase, lineDiff(a, b))
		}
	}

	// Batches of several sizes, one handle: the memo spans them.
	evs := logged(sc.first)
	applyIn(db, evs, []int{1, 2, 3, 5, 8}, now)
	ref.apply(evs, now)
	check("batches")

	// A batch that fails mid-way, at points spread over it, then passes:
	// nothing of a failed try may be remembered.
	evs = logged(sc.failing)
	failures := 0
	// Every point would take minutes on PostgreSQL (a statement cancelled
	// costs a connection): one in a few, denser early in the batch.
	for n := int64(1); ; n += 1 + n/16 {
		tc := newTripCtx(n)
		err := db.Apply(tc, pos, epoch, evs, now)
		tc.cancel()
		if err == nil {
			break
		}
		if errors.Is(err, reports.ErrMoved) || n > 100000 {
			t.Fatalf("try %d: %v", n, err)
		}
		failures++
	}
	pos = evs[len(evs)-1].ID
	t.Logf("the batch of %d events failed at %d points before it passed", len(evs), failures)
	if failures < len(evs) {
		t.Fatalf("the batch failed %d times before it passed; want failures all over it", failures)
	}
	ref.apply(evs, now)
	check("a batch failing mid-way")

	// Another replica projects the next events; this one's next write
	// from its old position moves nothing.
	stale := pos
	evs = logged(sc.other)
	other := openDB(t, openSubject)
	applyIn(other, evs, []int{2}, now)
	ref.apply(evs, now)
	evs = logged(sc.restart)
	if err := db.Apply(ctx, stale, epoch, evs[:1], now); !errors.Is(err, reports.ErrMoved) {
		t.Fatalf("apply from a position another replica moved: %v; want ErrMoved", err)
	}
	check("another replica")

	// This replica's projector starts again (a new lease term), from what
	// the other wrote.
	projectLog(t, st, db, reports.WithBatch(3), reports.WithLinger(0), reports.WithClock(func() time.Time { return now }))
	pos = evs[len(evs)-1].ID
	ref.apply(evs, now)
	check("projector restart")

	// Retention removes the rows the memo knows of (every replica runs
	// it); a call still live then gets its row back, as without a memo.
	r := reports.Retention{CallsDays: 1, AttemptsDays: 1, IntervalsDays: 1, MonitorsDays: 1}
	if _, err := db.Prune(ctx, r, later); err != nil {
		t.Fatal(err)
	}
	ref.prune(r, later)
	evs = logged(sc.afterPrune)
	applyIn(db, evs, []int{2, 3}, later)
	ref.apply(evs, later)
	check("after retention")
}

// memoEvents are testMemo's events, in the phases it applies them.
type memoEvents struct {
	first, failing, other, restart, afterPrune []state.NewEvent
}

// memoScript renders memoEvents for calls and agents from base on.
func memoScript(base time.Time) memoEvents {
	at := func(s int) time.Time { return base.Add(time.Duration(s)*time.Second + 137*time.Millisecond) }
	a1 := simAgent{id: "a1", name: "Agent One", groups: []string{"sales"}, dist: presence.DistApp, role: presence.RoleAgent}
	a2 := simAgent{id: "a2", name: "Agent Two", groups: []string{"sales"}, dist: presence.DistAppSIP, role: presence.RoleAgent}
	a3 := simAgent{id: "a3", name: "Agent Three", groups: []string{"sales", "support"}, dist: presence.DistIPPhone, role: presence.RoleAgent}
	s1 := simAgent{id: "s1", name: "Super One", groups: []string{"sales"}, dist: presence.DistApp, role: presence.RoleSupervisor}
	sales := func(id string, s int) *simCall {
		return &simCall{id: id, dir: routing.DirectionInbound, queue: "sales", groups: []string{"sales"}, customer: "+8490" + id, start: at(s)}
	}
	c1, c5, c6, c7 := sales("c1", 10), sales("c5", 80), sales("c6", 90), sales("c7", 100)
	c3 := &simCall{id: "c3", dir: routing.DirectionInbound, queue: "support", groups: []string{"support"}, customer: "+8490c3", start: at(70)}
	c4 := &simCall{id: "c4", dir: routing.DirectionInbound, queue: "support", groups: []string{"support"}, customer: "+8490c4", start: at(12)}
	c2 := &simCall{id: "c2", dir: routing.DirectionOutbound, groups: []string{"sales"}, customer: "+8490c2", campaign: "spring", start: at(52)}
	att := func(agent string, from, to int, outcome string) routing.AttemptEnded {
		return routing.AttemptEnded{Agent: agent, Kind: routing.OfferRouted, StartedAt: at(from), EndedAt: at(to), Outcome: outcome}
	}
	sys := presence.FieldSystemStatus
	var e memoEvents
	e.first = []state.NewEvent{
		a1.ev(chg(at(0), presence.FieldOnline, "false", "true"), chg(at(0), sys, "offline", "available")),
		a2.ev(chg(at(0), sys, "offline", "available")),
		a3.ev(chg(at(0), sys, "offline", "available")),
		s1.ev(),
		c1.ev(routing.EventCall, routing.StateCalling, "", at(10)),
		c1.ring(at(11)).ev(routing.EventCall, routing.StateRinging, "a1", at(11)),
		a1.ev(chg(at(11), sys, "available", "ringing")), // unchanged attributes
		c4.ev(routing.EventCall, routing.StateCalling, "", at(12)),
		c4.ring(at(13)).ev(routing.EventCall, routing.StateRinging, "a3", at(13)),
		// RONA: a2 rung next.
		c1.ev(routing.EventCall, routing.StateRinging, "a2", at(29), att("a1", 11, 29, routing.OutcomeNoAnswer)),
		a1.ev(chg(at(29), sys, "ringing", "rona")),
		c4.answer(at(15)).ev(routing.EventCall, routing.StateAnswered, "a3", at(15), att("a3", 13, 15, routing.OutcomeAnswered)),
		a3.ev(chg(at(15), sys, "available", "talking")),
		// Answered, repeating the attempt already written.
		c1.answer(at(31)).ev(routing.EventCall, routing.StateAnswered, "a2", at(31),
			att("a2", 29, 31, routing.OutcomeAnswered), att("a1", 11, 29, routing.OutcomeNoAnswer)),
		a2.ev(chg(at(31), sys, "available", "talking")),
		monitorEv("m1", "c1", media.MonitorListen, false, false),
		monitorEv("m1", "c1", media.MonitorListen, true, false),
		a1.with(func(a *simAgent) { a.dist = presence.DistPhone }).ev(), // a1's device changes
		a1.ev(chg(at(41), sys, "rona", "available")),
		// A transfer to a1, rung again (a second attempt of the same
		// agent), on its new device.
		c1.ev(routing.EventCall, routing.StateRinging, "a1", at(50)),
		c2.ev(routing.EventCall, routing.StateCalling, "ghost", at(52)),
		c2.ring(at(52)).ev(routing.EventCall, routing.StateRinging, "ghost", at(52)),
		c1.ev(routing.EventCall, routing.StateAnswered, "a1", at(53), att("a1", 50, 53, routing.OutcomeAnswered),
			att("a2", 29, 31, routing.OutcomeAnswered), att("a1", 11, 29, routing.OutcomeNoAnswer)),
		// No agent in the view: the row keeps the one it has.
		c1.ev(routing.EventCall, routing.StateAnswered, "", at(60), att("a1", 50, 53, routing.OutcomeAnswered)),
		monitorEv("m1", "c1", media.MonitorListen, false, false),
		a2.with(func(a *simAgent) { a.name = "Agent Two Renamed" }).ev(chg(at(62), sys, "talking", "available")),
		a2.with(func(a *simAgent) { a.name = "Agent Two Renamed" }).ev(chg(at(63), sys, "available", "lunch_break")),
		// An agent reports never heard of: no device.
		c2.end(at(70), "customer hung up").ev(routing.EventCallEnded, routing.StateRinging, "ghost", at(70),
			att("ghost", 52, 70, routing.OutcomeCancelled)),
		c3.ev(routing.EventCall, routing.StateCalling, "", at(70)),
		c3.ring(at(71)).ev(routing.EventCall, routing.StateRinging, "a2", at(71)),
		c3.end(at(76), "caller hung up").ev(routing.EventCallEnded, routing.StateRinging, "a2", at(76),
			att("a2", 71, 76, routing.OutcomeCancelled)),
		c5.ev(routing.EventCall, routing.StateCalling, "", at(80)),
		c5.ring(at(81)).ev(routing.EventCall, routing.StateRinging, "a2", at(81)),
		a1.with(func(a *simAgent) { a.dist, a.role = presence.DistPhone, presence.RoleSupervisor }).ev(),
		c6.ev(routing.EventCall, routing.StateCalling, "", at(90)),
		c6.ring(at(91)).ev(routing.EventCall, routing.StateRinging, "a1", at(91)),
		a1.with(func(a *simAgent) { a.dist = presence.DistPhone }).ev(),
	}
	a2.name = "Agent Two Renamed"
	a1.dist = presence.DistPhone
	// New rows first (a call, an agent's device, an attempt), then
	// statements enough for the failure to land after them.
	e.failing = []state.NewEvent{
		c7.ev(routing.EventCall, routing.StateCalling, "", at(100)),
		a2.with(func(a *simAgent) { a.dist = presence.DistIPPhone }).ev(chg(at(100), sys, "lunch_break", "available")),
		c5.answer(at(101)).ev(routing.EventCall, routing.StateAnswered, "a2", at(101), att("a2", 81, 101, routing.OutcomeAnswered)),
		c7.ring(at(102)).ev(routing.EventCall, routing.StateRinging, "a3", at(102)),
		c6.ev(routing.EventCall, routing.StateRinging, "a2", at(103), att("a1", 91, 103, routing.OutcomeNoAnswer)),
		a3.ev(chg(at(104), sys, "talking", "wrap_up")),
		a3.ev(chg(at(105), sys, "wrap_up", "talking")),
		a3.ev(chg(at(106), sys, "talking", "wrap_up")),
		a3.ev(chg(at(107), sys, "wrap_up", "talking")),
		c1.end(at(110), "caller hung up").ev(routing.EventCallEnded, routing.StateAnswered, "a1", at(110),
			att("a1", 50, 53, routing.OutcomeAnswered)),
		monitorEv("m1", "c1", media.MonitorListen, false, true),
	}
	a2.dist = presence.DistIPPhone
	// The other replica: c5 transferred to a1, a2's device changed again.
	e.other = []state.NewEvent{
		c5.ev(routing.EventCall, routing.StateRinging, "a1", at(120)),
		a2.with(func(a *simAgent) { a.dist = presence.DistPhone }).ev(chg(at(120), sys, "available", "ringing")),
		a1.ev(chg(at(120), sys, "available", "ringing")),
		c7.answer(at(121)).ev(routing.EventCall, routing.StateAnswered, "a3", at(121), att("a3", 102, 121, routing.OutcomeAnswered)),
	}
	// Back on this replica: what it remembers of c5 and a2 is stale.
	e.restart = []state.NewEvent{
		c5.ev(routing.EventCall, routing.StateAnswered, "a1", at(125), att("a1", 120, 125, routing.OutcomeAnswered)),
		a2.ev(chg(at(126), sys, "ringing", "available")), // a2's device back to what this replica wrote
		c5.ev(routing.EventCall, routing.StateRinging, "a2", at(130)),
		c5.ev(routing.EventCall, routing.StateAnswered, "a2", at(131), att("a2", 130, 131, routing.OutcomeAnswered)),
		c4.ev(routing.EventCall, routing.StateAnswered, "", at(140)),
		c6.end(at(141), "caller hung up").ev(routing.EventCallEnded, routing.StateRinging, "a2", at(141),
			att("a1", 91, 103, routing.OutcomeNoAnswer), att("a2", 103, 141, routing.OutcomeCancelled)),
		c7.end(at(150), "agent hung up").ev(routing.EventCallEnded, routing.StateAnswered, "a3", at(150)),
		a3.ev(chg(at(150), sys, "talking", "available")),
	}
	// Three days on: c4, still live, repeats its attempt; c8 is new.
	day := 3 * 24 * 3600
	c8 := sales("c8", day-1200)
	e.afterPrune = []state.NewEvent{
		c4.ev(routing.EventCall, routing.StateAnswered, "a3", at(day-1199), att("a3", 13, 15, routing.OutcomeAnswered)),
		c8.ev(routing.EventCall, routing.StateCalling, "", at(day-1200)),
		c8.ring(at(day-1198)).ev(routing.EventCall, routing.StateRinging, "a1", at(day-1198)),
		a1.ev(chg(at(day-1198), sys, "available", "ringing")),
		c8.answer(at(day-1195)).ev(routing.EventCall, routing.StateAnswered, "a1", at(day-1195), att("a1", day-1198, day-1195, routing.OutcomeAnswered)),
		c4.end(at(day-1190), "caller hung up").ev(routing.EventCallEnded, routing.StateAnswered, "a3", at(day-1190),
			att("a3", 13, 15, routing.OutcomeAnswered)),
		c8.end(at(day-1100), "agent hung up").ev(routing.EventCallEnded, routing.StateAnswered, "a1", at(day-1100),
			att("a1", day-1198, day-1195, routing.OutcomeAnswered)),
		a1.ev(chg(at(day-1100), sys, "talking", "available")),
	}
	return e
}

// simAgent renders "agent" events.
type simAgent struct {
	id, name string
	groups   []string
	dist     presence.Distribution
	role     presence.Role
}

func (a simAgent) with(f func(*simAgent)) simAgent {
	a.groups = slices.Clone(a.groups)
	f(&a)
	return a
}

func (a simAgent) ev(changes ...presence.HistoryRow) state.NewEvent {
	b, _ := json.Marshal(presence.AgentView{ID: a.id, Name: a.name, Groups: a.groups, Distribution: a.dist, Role: a.role, Changes: changes})
	return state.NewEvent{Type: presence.EventAgent, Data: b}
}

func chg(at time.Time, field presence.HistoryField, from, to string) presence.HistoryRow {
	return presence.HistoryRow{At: at, Field: field, From: from, To: to, By: presence.BySystem}
}

// simCall renders "call" and "call_ended" events of one call; ring,
// answer and end set its times for the events rendered after them.
type simCall struct {
	id, dir, queue, customer, campaign string
	groups                             []string
	start, rang                        time.Time
	answered                           *time.Time
	ended                              *routing.EndedInfo
}

func (c *simCall) answer(t time.Time) *simCall {
	if c.answered == nil {
		c.answered = &t
	}
	return c
}

func (c *simCall) end(t time.Time, reason string) *simCall {
	c.ended = &routing.EndedInfo{At: t, Reason: reason}
	return c
}

func (c *simCall) ev(typ string, st routing.CallState, agent string, at time.Time, atts ...routing.AttemptEnded) state.NewEvent {
	// Inbound calls start in the queue; the view's start is whole seconds.
	v := routing.CallView{ID: c.id, CustomerNumber: c.customer, Hotline: "+842800", Queue: c.queue, State: st,
		StartedAt: c.start.Truncate(time.Second), Direction: c.dir, AnsweredAt: c.answered, Ended: c.ended,
		Report: &routing.CallReport{At: at, RingStartedAt: c.rang, AnsweredAt: c.answered, Attempts: atts}}
	if c.dir == routing.DirectionInbound {
		v.Report.EnqueuedAt = c.start
	}
	if agent != "" {
		v.Agent = &agent
	}
	if c.campaign != "" {
		v.Campaign = &c.campaign
	}
	b, _ := json.Marshal(v)
	return state.NewEvent{Type: typ, Scope: state.Scope{Queue: c.queue, Groups: c.groups}, Data: b}
}

func (c *simCall) ring(t time.Time) *simCall {
	if c.rang.IsZero() {
		c.rang = t
	}
	return c
}

func monitorEv(id, call string, mode media.MonitorMode, paused, ended bool) state.NewEvent {
	v := routing.MonitorView{ID: id, CallID: call, Supervisor: "s1", Mode: mode, Paused: paused, Answered: true, Ended: ended}
	if ended {
		v.Reason = "the call ended"
	}
	b, _ := json.Marshal(v)
	return state.NewEvent{Type: routing.EventMonitor, Scope: state.Scope{Groups: []string{"sales"}}, Data: b}
}

// plainProjection applies events one at a time, each on a new handle to
// its database: a handle remembers nothing of earlier writes, so this is
// the projection as it was before the memo.
type plainProjection struct {
	t     *testing.T
	open  func() *reports.DB
	epoch string
	pos   string
}

func (p *plainProjection) with(f func(db *reports.DB) error) {
	p.t.Helper()
	db := p.open()
	defer db.Close()
	must(p.t, f(db))
}

func (p *plainProjection) reset(now time.Time) {
	p.with(func(db *reports.DB) error { return db.ResetEpoch(context.Background(), "", p.epoch, now) })
}

func (p *plainProjection) apply(evs []state.Event, now time.Time) {
	p.t.Helper()
	for _, ev := range evs {
		p.with(func(db *reports.DB) error {
			return db.Apply(context.Background(), p.pos, p.epoch, []state.Event{ev}, now)
		})
		p.pos = ev.ID
	}
}

func (p *plainProjection) prune(r reports.Retention, now time.Time) {
	p.with(func(db *reports.DB) error { _, err := db.Prune(context.Background(), r, now); return err })
}

func (p *plainProjection) tables() string {
	var s string
	p.with(func(db *reports.DB) error { s = tables(p.t, db); return nil })
	return s
}

// tables renders every projected row of db: each column of each table
// where reports' own tests provide DumpTables (export_test.go), else what
// the reports read, over a wide range.
func tables(t *testing.T, db *reports.DB) string {
	t.Helper()
	if d, ok := any(db).(interface {
		DumpTables(context.Context) (string, error)
	}); ok {
		s, err := d.DumpTables(context.Background())
		must(t, err)
		return s
	}
	now := time.Now()
	qq := reports.Query{Scope: reports.Scope{All: true}, From: now.AddDate(0, 0, -30), To: now.AddDate(0, 0, 30), Limit: 100000, Loc: time.UTC}
	ivs, _, err := db.Intervals(context.Background(), qq, "", "")
	must(t, err)
	j, _ := json.Marshal(ivs)
	return Dump(t, db, qq) + string(j)
}

// lineDiff lists the lines only one of a and b has.
func lineDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	var out strings.Builder
	for _, l := range al {
		if !slices.Contains(bl, l) {
			fmt.Fprintf(&out, "memo:  %s\n", l)
		}
	}
	for _, l := range bl {
		if !slices.Contains(al, l) {
			fmt.Fprintf(&out, "plain: %s\n", l)
		}
	}
	return out.String()
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// tripCtx cancels itself the n-th time anything asks for its Done
// channel, as database/sql and the drivers do before and during each
// statement: an Apply given it fails at a different point for each n, as
// when the lease is lost mid-batch.
type tripCtx struct {
	context.Context
	cancel context.CancelFunc
	left   atomic.Int64
}

func newTripCtx(n int64) *tripCtx {
	ctx, cancel := context.WithCancel(context.Background())
	c := &tripCtx{Context: ctx, cancel: cancel}
	c.left.Store(n)
	return c
}

func (c *tripCtx) Done() <-chan struct{} {
	if c.left.Add(-1) == 0 {
		c.cancel()
	}
	return c.Context.Done()
}
