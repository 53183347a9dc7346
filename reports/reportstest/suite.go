// Package reportstest is the contract every reports database passes: one
// suite, run against SQLite and PostgreSQL with a factory. It drives the
// real routing engine (memory store, the routing test double as media
// path, a fake clock), projects its event log, and checks every row and
// figure.
package reportstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/reports"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// Factory creates a new, empty reports database and returns a function
// that opens it (again: each call is a new connection to the same
// database, as after a restart). The test closes what open returns.
type Factory func(t *testing.T) (open func() *reports.DB)

// Run runs the contract suite.
func Run(t *testing.T, newDB Factory) {
	t.Run("Migrations", func(t *testing.T) { testMigrations(t, newDB) })
	t.Run("Scenario", func(t *testing.T) { testScenario(t, newDB) })
	t.Run("BusyUnreachableWrapUpOutbound", func(t *testing.T) { testMoreOutcomes(t, newDB) })
	t.Run("ExactlyOnceAcrossCrash", func(t *testing.T) { testExactlyOnce(t, newDB) })
	t.Run("Gap", func(t *testing.T) { testGap(t, newDB) })
	t.Run("Retention", func(t *testing.T) { testRetention(t, newDB) })
	t.Run("TwoProjectorsOneLease", func(t *testing.T) { testTwoProjectors(t, newDB) })
	t.Run("MemoMatchesPlainProjection", func(t *testing.T) { testMemo(t, newDB) })
}

func openDB(t *testing.T, open func() *reports.DB) *reports.DB {
	t.Helper()
	db := open()
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func testMigrations(t *testing.T, newDB Factory) {
	open := newDB(t)
	ctx := context.Background()
	for range 2 { // a second start finds every migration applied
		db := openDB(t, open)
		v, err := db.SchemaVersion(ctx)
		if err != nil || v != reports.SchemaVersion {
			t.Fatalf("schema version = %d, %v; want %d", v, err, reports.SchemaVersion)
		}
		c, err := db.Cursor(ctx)
		if err != nil || c.Position != "" || c.Applied != 0 {
			t.Fatalf("fresh cursor = %+v, %v", c, err)
		}
	}
}

// floor is a routing engine on a memory store with the media double.
type floor struct {
	t      *testing.T
	ctx    context.Context
	st     *store.Memory
	clock  *routingtest.Clock
	media  *routingtest.Media
	agents *presence.Service
	eng    *routing.Engine
	admin  presence.Actor
	legs   int
}

func newFloor(t *testing.T, opts ...store.MemoryOption) *floor {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	f := &floor{t: t, ctx: ctx, st: store.NewMemory(opts...), clock: routingtest.NewClock(time.Now().UTC().Truncate(time.Second)),
		media: &routingtest.Media{}, admin: presence.Actor{ID: "boss", Role: presence.RoleAdmin}}
	f.agents = presence.NewService(f.st, presence.WithClock(f.clock.Now))
	f.eng = routing.NewEngine(f.st, f.agents, f.media, routing.WithClock(f.clock), routing.WithRandSeed(1, 2))
	done := make(chan error, 1)
	go func() { done <- f.eng.Run(ctx) }()
	<-f.eng.Started()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = f.st.Close()
	})
	return f
}

func (f *floor) flush() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	if err := f.eng.Flush(ctx); err != nil {
		f.t.Fatalf("flush: %v", err)
	}
}

func (f *floor) advance(d time.Duration) { f.clock.Advance(d); f.flush() }

func (f *floor) must(err error) {
	f.t.Helper()
	if err != nil {
		f.t.Fatal(err)
	}
}

func (f *floor) group(id string, supervisors ...string) {
	f.t.Helper()
	if supervisors == nil {
		supervisors = []string{}
	}
	_, err := f.agents.PutGroup(f.ctx, f.admin, id, true, presence.GroupPatch{Name: &id, Supervisors: &supervisors})
	f.must(err)
}

func (f *floor) agent(id string, role presence.Role, groups ...string) {
	f.t.Helper()
	name, email := "Agent "+id, id+"@example.com"
	if groups == nil {
		groups = []string{}
	}
	_, err := f.agents.CreateAgent(f.ctx, presence.System, presence.AgentInput{ID: &id, Name: &name, Email: &email, Role: &role, Groups: &groups})
	f.must(err)
	f.status(id, presence.StatusAvailable)
}

func (f *floor) status(id, s string) {
	f.t.Helper()
	_, err := f.agents.SetStatus(f.ctx, presence.System, id, &s, nil)
	f.must(err)
	f.eng.Kick()
	f.flush()
}

func (f *floor) queue(id string, members []string, hotline string) {
	f.t.Helper()
	f.queueWrapUp(id, members, hotline, 0)
}

// queueWrapUp is queue with wrap seconds of after-call work.
func (f *floor) queueWrapUp(id string, members []string, hotline string, wrap int) {
	f.t.Helper()
	s, ring, sl := routing.RoundRobin, 18, 20
	hot := []string{hotline}
	_, err := f.eng.CreateQueue(f.ctx, f.admin, routing.QueueInput{ID: &id, Strategy: &s, WrapupSeconds: &wrap,
		RingTimeoutSeconds: &ring, ServiceLevelSeconds: &sl, Members: &members, Hotlines: &hot})
	f.must(err)
	f.flush()
}

func (f *floor) arrive(caller, hotline string) (string, media.LegID) {
	f.t.Helper()
	f.legs++
	leg := media.LegID(fmt.Sprintf("cust-%d", f.legs))
	f.eng.Report(media.CallArrived{FactBase: media.FactBase{At: f.clock.Now()}, Leg: leg, Caller: caller, Hotline: hotline})
	f.flush()
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	f.must(err)
	for _, c := range calls {
		if c.CustomerNumber == caller {
			return c.ID, leg
		}
	}
	f.t.Fatalf("call from %s not found", caller)
	return "", ""
}

// ringing is the agent the call rings now, and that agent's newest leg.
func (f *floor) ringing(id string) (string, media.LegID) {
	f.t.Helper()
	v, err := f.eng.Call(f.ctx, f.admin, id)
	f.must(err)
	if v.State != routing.StateRinging || v.Agent == nil {
		f.t.Fatalf("call %s is %s, not ringing an agent", id, v.State)
	}
	d, ok := f.media.DialOf(*v.Agent)
	if !ok {
		f.t.Fatalf("%s never dialled", *v.Agent)
	}
	return *v.Agent, d.Result
}

func (f *floor) answer(leg media.LegID) {
	f.eng.Report(media.LegAnswered{FactBase: media.FactBase{At: f.clock.Now()}, Leg: leg})
	f.flush()
}

func (f *floor) end(leg media.LegID) { f.endWith(leg, media.CauseNormal) }

func (f *floor) endWith(leg media.LegID, cause media.Cause) {
	f.eng.Report(media.LegEnded{FactBase: media.FactBase{At: f.clock.Now()}, Leg: leg, Cause: cause})
	f.flush()
}

// project runs a projector over the floor's log into db until it has
// applied everything, then stops it.
func project(t *testing.T, f *floor, db *reports.DB, opts ...reports.ProjectorOption) *reports.Projector {
	t.Helper()
	return projectLog(t, f.st, db, opts...)
}

// projectLog runs a projector over st's log into db until it has applied
// everything, then stops it.
func projectLog(t *testing.T, st *store.Memory, db *reports.DB, opts ...reports.ProjectorOption) *reports.Projector {
	t.Helper()
	p := reports.NewProjector(db, st, st, append([]reports.ProjectorOption{reports.WithReadWait(20 * time.Millisecond)}, opts...)...)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	caught := p.CaughtUp()
	go func() { done <- p.Project(ctx) }()
	last, err := st.Last(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for {
		select {
		case <-caught:
		case <-time.After(30 * time.Second):
			cancel()
			t.Fatal("projector did not catch up")
		}
		c, err := db.Cursor(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if c.Position == last || last == "" {
			break
		}
		caught = p.CaughtUp()
	}
	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("projector: %v", err)
	}
	return p
}

// scenario runs the calls every check below relies on, on queues sales
// (a1, a2; supervisor s1) and support (b1); it returns the call ids.
type scenario struct {
	answered, rona, abandoned, transferred string
	ronaAgent, otherAgent                  string
	monitor                                string
}

func runScenario(t *testing.T, f *floor) scenario {
	t.Helper()
	var s scenario
	f.agent("s1", presence.RoleSupervisor)
	f.group("sales", "s1")
	f.group("support")
	f.agent("a1", presence.RoleAgent, "sales")
	f.agent("a2", presence.RoleAgent, "sales")
	f.agent("b1", presence.RoleAgent, "support")
	f.queue("sales", []string{"sales"}, "+842800")
	f.queue("support", []string{"support"}, "+842900")

	// 1. Answered after 3 s of ringing, 60 s talk, the caller hangs up.
	id, cust := f.arrive("+84901000001", "+842800")
	_, leg := f.ringing(id)
	f.advance(3 * time.Second)
	f.answer(leg)
	f.advance(60 * time.Second)
	f.end(cust)
	s.answered = id

	// 2. The first agent lets it ring out (RONA, 18 s); the other answers
	// after 2 s, talks 30 s and hangs up.
	id, _ = f.arrive("+84901000002", "+842800")
	s.ronaAgent, _ = f.ringing(id)
	f.advance(18 * time.Second)
	var leg2 media.LegID
	s.otherAgent, leg2 = f.ringing(id)
	if s.otherAgent == s.ronaAgent {
		t.Fatalf("RONA rang %s again", s.ronaAgent)
	}
	f.advance(2 * time.Second)
	f.answer(leg2)
	f.advance(30 * time.Second)
	f.end(leg2)
	s.rona = id
	f.status(s.ronaAgent, presence.StatusAvailable)

	// 3. Abandoned: the caller gives up after 5 s of b1 ringing.
	id, cust = f.arrive("+84901000003", "+842900")
	f.ringing(id)
	f.advance(5 * time.Second)
	f.end(cust)
	s.abandoned = id

	// 4. Answered after 1 s, transferred after 10 s to the other sales
	// agent, who answers after 2 s; s1 listens, pauses, resumes, barges;
	// the caller hangs up 20 s after the transfer was answered.
	id, cust = f.arrive("+84901000004", "+842800")
	first, leg := f.ringing(id)
	f.advance(time.Second)
	f.answer(leg)
	f.advance(10 * time.Second)
	target := "a1"
	if first == "a1" {
		target = "a2"
	}
	_, err := f.eng.Transfer(f.ctx, f.admin, id, target)
	f.must(err)
	f.flush()
	_, leg = f.ringing(id)
	f.advance(2 * time.Second)
	f.answer(leg)
	sup := presence.Actor{ID: "s1", Role: presence.RoleSupervisor, Supervises: []string{"sales"}}
	m, err := f.eng.StartMonitor(f.ctx, sup, id, media.MonitorListen, "")
	f.must(err)
	f.flush()
	mons := f.media.Ops("monitor")
	f.answer(mons[len(mons)-1].Result)
	_, err = f.eng.PauseMonitor(f.ctx, sup, m.ID)
	f.must(err)
	_, err = f.eng.ResumeMonitor(f.ctx, sup, m.ID)
	f.must(err)
	_, err = f.eng.BargeMonitor(f.ctx, sup, m.ID)
	f.must(err)
	f.advance(20 * time.Second)
	f.end(cust)
	s.transferred, s.monitor = id, m.ID
	return s
}

func dayRange(f *floor) reports.Query {
	now := f.clock.Now()
	return reports.Query{Scope: reports.Scope{All: true}, From: now.Add(-48 * time.Hour), To: now.Add(48 * time.Hour), Limit: 100, Loc: time.UTC}
}

func testScenario(t *testing.T, newDB Factory) {
	f := newFloor(t)
	s := runScenario(t, f)
	db := openDB(t, newDB(t))
	project(t, f, db)
	ctx := context.Background()
	qq := dayRange(f)

	calls, next, err := db.Calls(ctx, qq, reports.CallFilter{})
	f.must(err)
	if len(calls) != 4 || next != "" {
		t.Fatalf("calls = %d rows (next %q); want 4", len(calls), next)
	}
	by := map[string]reports.CallRow{}
	for _, c := range calls {
		by[c.ID] = c
	}
	check := func(id, outcome string, wait, talk int64, hung, agent string, transfers, monitors int) {
		t.Helper()
		c, ok := by[id]
		if !ok {
			t.Fatalf("call %s has no row", id)
		}
		if c.Outcome != outcome || deref(c.WaitSeconds) != wait || deref(c.TalkSeconds) != talk || c.HungUpBy != hung ||
			c.Agent != agent || c.Transfers != transfers || c.Monitors != monitors || c.EndedAt == nil || c.Direction != "inbound" {
			b, _ := json.Marshal(c)
			t.Fatalf("call row %s\nwant outcome %s wait %d talk %d hung up by %s agent %s transfers %d monitors %d", b, outcome, wait, talk, hung, agent, transfers, monitors)
		}
	}
	check(s.answered, reports.CallAnswered, 3, 60, "customer", by[s.answered].Agent, 0, 0)
	check(s.rona, reports.CallAnswered, 20, 30, "agent", s.otherAgent, 0, 0)
	check(s.abandoned, reports.CallAbandoned, 5, -1, "customer", "b1", 0, 0)
	check(s.transferred, reports.CallAnswered, 1, 32, "customer", by[s.transferred].Agent, 1, 1)
	if by[s.answered].Queue != "sales" || by[s.abandoned].Queue != "support" || by[s.answered].CustomerNumber != "+84901000001" ||
		by[s.answered].Hotline != "+842800" || by[s.answered].FirstRingAt == nil || by[s.abandoned].AnsweredAt != nil {
		t.Fatalf("call columns: %+v / %+v", by[s.answered], by[s.abandoned])
	}

	// Ring attempts, per call in order.
	atts, _, err := db.Attempts(ctx, qq, reports.AttemptFilter{})
	f.must(err)
	got := map[string][]string{}
	for _, a := range atts {
		got[a.CallID] = append(got[a.CallID], fmt.Sprintf("%s:%s:%d", a.Agent, a.Outcome, a.Seconds))
		if a.Device != "app" || a.Kind != "routed" {
			t.Fatalf("attempt %+v: want device app, kind routed", a)
		}
	}
	want := map[string][]string{
		s.answered:    {by[s.answered].Agent + ":answered:3"},
		s.rona:        {s.ronaAgent + ":no_answer:18", s.otherAgent + ":answered:2"},
		s.abandoned:   {"b1:cancelled:5"},
		s.transferred: {otherThan(by[s.transferred].Agent) + ":answered:1", by[s.transferred].Agent + ":answered:2"},
	}
	for id, w := range want {
		if strings.Join(got[id], " ") != strings.Join(w, " ") {
			t.Fatalf("attempts of %s = %v; want %v", id, got[id], w)
		}
	}

	// Monitor: listen, paused, listen again, barge; ended with the call.
	mons, _, err := db.Monitors(ctx, qq, "")
	f.must(err)
	if len(mons) != 1 || mons[0].ID != s.monitor || mons[0].Supervisor != "s1" || mons[0].CallID != s.transferred ||
		mons[0].ModeChanges != "listen,paused,listen,barge" || mons[0].EndedAt == nil || mons[0].AnsweredAt == nil ||
		mons[0].EndReason != "the call ended" || mons[0].Agent != by[s.transferred].Agent {
		t.Fatalf("monitors = %+v", mons)
	}

	// Agents: talk is the system status "talking" (60+30+10+20 s in all).
	ags, err := db.Agents(ctx, qq, "", f.clock.Now())
	f.must(err)
	var talk, answered, offered, rona int64
	for _, a := range ags {
		talk += a.TalkSeconds
		answered += a.Answered
		offered += a.Offered
		rona += a.NoAnswer
		if a.Agent == s.ronaAgent && a.NoAnswer != 1 {
			t.Fatalf("%s RONA = %d; want 1", a.Agent, a.NoAnswer)
		}
		if a.Answered > 0 && a.AvgHandleSeconds != a.TalkSeconds/a.Answered {
			t.Fatalf("%s average handle %d; want talk %d / answered %d", a.Agent, a.AvgHandleSeconds, a.TalkSeconds, a.Answered)
		}
		if a.Name != "Agent "+a.Agent {
			t.Fatalf("agent row name %q", a.Name)
		}
	}
	if talk != 120 || answered != 4 || offered != 6 || rona != 1 {
		t.Fatalf("agents: talk %d answered %d offered %d rona %d; want 120, 4, 6, 1\n%+v", talk, answered, offered, rona, ags)
	}

	// Queues: sales 3 offered, 3 answered (waits 3, 20, 1: all within the
	// 20 s service level); support 1 abandoned after 5 s.
	qs, err := db.Queues(ctx, qq, reports.Day, "", map[string]int{"sales": 20, "support": 20})
	f.must(err)
	tot := map[string]*reports.QueueRow{}
	for i := range qs {
		r := &qs[i]
		if tot[r.Queue] == nil {
			tot[r.Queue] = &reports.QueueRow{Queue: r.Queue}
		}
		x := tot[r.Queue]
		x.Offered += r.Offered
		x.Answered += r.Answered
		x.Abandoned += r.Abandoned
		x.AnsweredWithinSL += r.AnsweredWithinSL
		x.MaxWaitSeconds = max(x.MaxWaitSeconds, r.MaxWaitSeconds)
	}
	if sl, sp := tot["sales"], tot["support"]; sl == nil || sp == nil || sl.Offered != 3 || sl.Answered != 3 || sl.AnsweredWithinSL != 3 ||
		sl.MaxWaitSeconds != 20 || sp.Offered != 1 || sp.Abandoned != 1 || sp.Answered != 0 {
		t.Fatalf("queue totals: sales %+v support %+v", tot["sales"], tot["support"])
	}
	hours, err := db.Queues(ctx, qq, reports.Hour, "sales", map[string]int{"sales": 20})
	f.must(err)
	for _, h := range hours {
		if h.Queue != "sales" || h.IntervalStart.Minute() != 0 || h.IntervalStart.Second() != 0 {
			t.Fatalf("hour bucket %+v", h)
		}
	}

	// Visibility: s1 supervises sales, b1 belongs to support.
	sup := qq
	sup.Scope = reports.Scope{Groups: []string{"sales"}, Self: "s1"}
	rows, _, err := db.Calls(ctx, sup, reports.CallFilter{})
	f.must(err)
	if len(rows) != 3 || containsCall(rows, s.abandoned) {
		t.Fatalf("s1 sees %d calls (abandoned support call visible: %v); want the 3 sales calls", len(rows), containsCall(rows, s.abandoned))
	}
	ag := qq
	ag.Scope = reports.Scope{Groups: []string{"support"}, Self: "b1"}
	rows, _, err = db.Calls(ctx, ag, reports.CallFilter{})
	f.must(err)
	if len(rows) != 1 || rows[0].ID != s.abandoned {
		t.Fatalf("b1 sees %+v; want only the support call", rows)
	}
	if as, _ := db.Agents(ctx, ag, "", f.clock.Now()); len(as) != 1 || as[0].Agent != "b1" {
		t.Fatalf("b1's agent report = %+v; want only b1", as)
	}

	// Filters and paging.
	rows, _, err = db.Calls(ctx, qq, reports.CallFilter{Outcome: reports.CallAbandoned})
	f.must(err)
	if len(rows) != 1 || rows[0].ID != s.abandoned {
		t.Fatalf("outcome filter: %+v", rows)
	}
	rows, _, err = db.Calls(ctx, qq, reports.CallFilter{Customer: "+84901000002", Queue: "sales", Direction: "inbound"})
	f.must(err)
	if len(rows) != 1 || rows[0].ID != s.rona {
		t.Fatalf("customer filter: %+v", rows)
	}
	pq := qq
	pq.Limit = 3
	p1, cur, err := db.Calls(ctx, pq, reports.CallFilter{})
	f.must(err)
	pq.Cursor = cur
	p2, cur2, err := db.Calls(ctx, pq, reports.CallFilter{})
	f.must(err)
	if len(p1) != 3 || cur == "" || len(p2) != 1 || cur2 != "" || p2[0].ID == p1[2].ID {
		t.Fatalf("paging: %d rows + cursor %q, then %d rows + %q", len(p1), cur, len(p2), cur2)
	}
	pq.Cursor = "!!"
	if _, _, err := db.Calls(ctx, pq, reports.CallFilter{}); !errors.Is(err, reports.ErrBadCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	pq.Cursor, pq.Limit = "", 4
	if p, cur, err := db.Calls(ctx, pq, reports.CallFilter{}); err != nil || len(p) != 4 || cur != "" {
		t.Fatalf("a page of exactly the rows left: %d rows, cursor %q, %v; want 4 and no cursor", len(p), cur, err)
	}
	testPaging(t, db, qq)

	// Today's counters agree with a recomputation from the rows.
	now := f.clock.Now()
	dayStart := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	for _, dim := range [][2]string{{"", ""}, {"sales", ""}, {"support", ""}, {"", "sales"}} {
		live, err := f.eng.Stats(f.ctx, f.admin, dim[0], dim[1])
		f.must(err)
		re, err := db.Recount(ctx, dayStart, dayStart.AddDate(0, 0, 1), dim[0], dim[1])
		f.must(err)
		if live.Accepted != re.Accepted || live.Missed != re.Missed || live.AvgWaitSeconds != re.AvgWaitSeconds {
			t.Fatalf("counters %v: live accepted %d missed %d avg wait %d; from rows %+v", dim, live.Accepted, live.Missed, live.AvgWaitSeconds, re)
		}
	}

	// Agent status intervals: every status change of every agent, with who
	// changed it; the RONA interval lasts until the agent chose available.
	var ronaRows int
	for _, a := range ags {
		for _, st := range a.Statuses {
			if st.Field == "system_status" && st.Status == "rona" {
				ronaRows++
			}
		}
	}
	if ronaRows != 1 {
		t.Fatalf("rona status rows = %d; want 1", ronaRows)
	}
	ivs, _, err := db.Intervals(ctx, qq, s.ronaAgent, "system_status")
	f.must(err)
	var sawRONA bool
	for i, iv := range ivs {
		if iv.Status == "rona" {
			sawRONA = true
			// RONA ends when the agent is made available again.
			if iv.To == nil || iv.ChangedBy != "system" || i+1 >= len(ivs) || ivs[i+1].Status != "available" || !ivs[i+1].From.Equal(*iv.To) {
				t.Fatalf("rona interval %+v then %+v", iv, ivs[i+1:])
			}
		}
	}
	if !sawRONA || ivs[len(ivs)-1].To != nil {
		t.Fatalf("%s system status intervals: %+v (want a rona one, and the last one open)", s.ronaAgent, ivs)
	}
	// A replay into an empty database rebuilds the same rows.
	db2 := openDB(t, newDB(t))
	project(t, f, db2)
	if a, b := Dump(t, db, qq), Dump(t, db2, qq); a != b {
		t.Fatalf("replay differs:\n%s\n---\n%s", a, b)
	}
}

// testMoreOutcomes covers the rows and figures the main scenario does
// not: ring attempts that end busy and unreachable, after-call work and
// the average handle time it enters, an outbound campaign call and the
// agent's outbound count, the end cause, and the queue's service level
// and averages.
func testMoreOutcomes(t *testing.T, newDB Factory) {
	f := newFloor(t)
	f.group("care")
	for _, a := range []string{"c1", "c2", "c3"} {
		f.agent(a, presence.RoleAgent, "care")
	}
	f.queueWrapUp("care", []string{"care"}, "+842700", 30)

	// Inbound: the first agent's device is busy, the second's unreachable,
	// the third answers after 2 s and talks 50 s; 30 s of wrap-up follow.
	id, cust := f.arrive("+84901000007", "+842700")
	busy, leg := f.ringing(id)
	f.endWith(leg, media.CauseBusy)
	unreachable, leg := f.ringing(id)
	f.endWith(leg, media.CauseUnreachable)
	answerer, leg := f.ringing(id)
	if busy == unreachable || unreachable == answerer || busy == answerer {
		t.Fatalf("rang %s, %s, %s: want three agents", busy, unreachable, answerer)
	}
	f.advance(2 * time.Second)
	f.answer(leg)
	f.advance(50 * time.Second)
	f.end(cust)
	f.advance(31 * time.Second) // wrap-up over
	for _, a := range []string{busy, unreachable, answerer} {
		f.status(a, presence.StatusAvailable)
	}

	// Outbound: c1 calls a customer for the "spring" campaign; both
	// answer; they talk 40 s and the customer hangs up.
	out, err := f.eng.Originate(f.ctx, f.admin, "c1", "+84901000008", "spring")
	f.must(err)
	f.flush()
	_, agentLeg := f.ringing(out.ID)
	f.answer(agentLeg)
	var custLeg media.LegID
	for _, d := range f.media.Dials() {
		if d.Dial.Number == "+84901000008" {
			custLeg = d.Result
		}
	}
	if custLeg == "" {
		t.Fatalf("the customer was never dialled: %+v", f.media.Dials())
	}
	f.answer(custLeg)
	f.advance(40 * time.Second)
	f.end(custLeg)

	db := openDB(t, newDB(t))
	project(t, f, db)
	ctx := context.Background()
	qq := dayRange(f)
	calls, _, err := db.Calls(ctx, qq, reports.CallFilter{})
	f.must(err)
	if len(calls) != 2 {
		t.Fatalf("calls: %+v", calls)
	}
	in, ob := calls[0], calls[1]
	if in.ID != id || in.Direction != "inbound" || in.Outcome != reports.CallAnswered || in.Agent != answerer || deref(in.WaitSeconds) != 2 ||
		deref(in.TalkSeconds) != 50 || in.EndCause == "" || in.HungUpBy != "customer" || in.Campaign != "" {
		t.Errorf("inbound row %+v", in)
	}
	if ob.ID != out.ID || ob.Direction != "outbound" || ob.Campaign != "spring" || ob.CustomerNumber != "+84901000008" || ob.Agent != "c1" ||
		ob.Outcome != reports.CallAnswered || deref(ob.TalkSeconds) != 40 || ob.EndCause == "" || ob.HungUpBy != "customer" {
		t.Errorf("outbound row %+v", ob)
	}
	if rows, _, err := db.Calls(ctx, qq, reports.CallFilter{Direction: "outbound"}); err != nil || len(rows) != 1 || rows[0].ID != out.ID {
		t.Errorf("direction filter: %+v %v", rows, err)
	}
	if rows, _, err := db.Calls(ctx, qq, reports.CallFilter{Agent: answerer}); err != nil || len(rows) != 1 || rows[0].ID != id {
		t.Errorf("agent filter: %+v %v", rows, err)
	}

	atts, _, err := db.Attempts(ctx, qq, reports.AttemptFilter{Call: id})
	f.must(err)
	var got []string
	for _, a := range atts {
		got = append(got, a.Agent+":"+a.Outcome)
	}
	if w := busy + ":busy " + unreachable + ":unreachable " + answerer + ":answered"; strings.Join(got, " ") != w {
		t.Errorf("attempts %v; want %s", got, w)
	}
	for _, o := range []string{"busy", "unreachable"} {
		if rows, _, err := db.Attempts(ctx, qq, reports.AttemptFilter{Outcome: o}); err != nil || len(rows) != 1 {
			t.Errorf("attempts with outcome %s: %+v %v", o, rows, err)
		}
	}

	ags, err := db.Agents(ctx, qq, "", f.clock.Now())
	f.must(err)
	by := map[string]reports.AgentRow{}
	for _, a := range ags {
		by[a.Agent] = a
	}
	if a := by[answerer]; a.Answered < 1 || a.AfterCallWorkSeconds < 30 || a.AvgHandleSeconds != (a.TalkSeconds+a.AfterCallWorkSeconds)/a.Answered {
		t.Errorf("%s: %+v; want 30 s of after-call work in the average handle time", answerer, a)
	}
	if a := by[busy]; a.Busy != 1 || a.Offered < 1 {
		t.Errorf("%s: %+v; want one busy", busy, a)
	}
	if a := by[unreachable]; a.Unreachable != 1 || a.Offered < 1 {
		t.Errorf("%s: %+v; want one unreachable", unreachable, a)
	}
	if a := by["c1"]; a.OutboundCalls != 1 {
		t.Errorf("c1: %+v; want one outbound call", a)
	}

	qs, err := db.Queues(ctx, qq, reports.Day, "care", map[string]int{"care": 20})
	f.must(err)
	if len(qs) != 1 || qs[0].Offered != 1 || qs[0].Answered != 1 || qs[0].AnsweredWithinSL != 1 || qs[0].ServiceLevelPercent == nil ||
		*qs[0].ServiceLevelPercent != 100 || qs[0].AvgWaitSeconds != 2 || qs[0].MaxWaitSeconds != 2 || qs[0].AvgTalkSeconds != 50 {
		t.Errorf("care queue: %+v", qs)
	}
}

// testPaging walks every list report page by page (1 and 2 rows a page)
// through its streaming read and requires the pages to add up to the
// whole list, each page's cursor to be handed over before its first row,
// and the slice read to agree with the stream.
func testPaging(t *testing.T, db *reports.DB, qq reports.Query) {
	ctx := context.Background()
	walkPages(t, "calls", qq, func(q reports.Query, p reports.Page[reports.CallRow]) error {
		return db.EachCall(ctx, q, reports.CallFilter{}, p)
	},
		func(q reports.Query) ([]reports.CallRow, string, error) {
			return db.Calls(ctx, q, reports.CallFilter{})
		},
		func(r reports.CallRow) string { return r.ID })
	walkPages(t, "attempts", qq, func(q reports.Query, p reports.Page[reports.AttemptRow]) error {
		return db.EachAttempt(ctx, q, reports.AttemptFilter{}, p)
	}, func(q reports.Query) ([]reports.AttemptRow, string, error) {
		return db.Attempts(ctx, q, reports.AttemptFilter{})
	},
		func(r reports.AttemptRow) string { return r.ID })
	walkPages(t, "monitors", qq, func(q reports.Query, p reports.Page[reports.MonitorRow]) error { return db.EachMonitor(ctx, q, "", p) },
		func(q reports.Query) ([]reports.MonitorRow, string, error) { return db.Monitors(ctx, q, "") },
		func(r reports.MonitorRow) string { return r.ID })
	walkPages(t, "statuses", qq, func(q reports.Query, p reports.Page[reports.IntervalRow]) error {
		return db.EachInterval(ctx, q, "", "", p)
	},
		func(q reports.Query) ([]reports.IntervalRow, string, error) { return db.Intervals(ctx, q, "", "") },
		func(r reports.IntervalRow) string { return r.ID })
}

func walkPages[T any](t *testing.T, name string, qq reports.Query, each func(reports.Query, reports.Page[T]) error,
	list func(reports.Query) ([]T, string, error), id func(T) string) {
	t.Helper()
	qq.Limit = 1000
	whole, _, err := list(qq)
	if err != nil || len(whole) == 0 {
		t.Fatalf("%s: %d rows, %v; the scenario leaves some", name, len(whole), err)
	}
	var want []string
	for _, r := range whole {
		want = append(want, id(r))
	}
	for _, limit := range []int{1, 2} {
		q := qq
		q.Limit = limit
		var got []string
		for pages := 0; ; pages++ {
			if pages > len(whole) {
				t.Fatalf("%s, %d a page: more pages than rows", name, limit)
			}
			var next string
			started, rows := false, 0
			err := each(q, reports.Page[T]{
				Start: func(n string) error { started, next = true, n; return nil },
				Row: func(r *T) error {
					if !started {
						t.Errorf("%s: a row before the page's start", name)
					}
					rows++
					got = append(got, id(*r))
					return nil
				},
			})
			if err != nil {
				t.Fatalf("%s, %d a page: %v", name, limit, err)
			}
			slice, sliceNext, err := list(q)
			if err != nil || len(slice) != rows || sliceNext != next {
				t.Fatalf("%s, %d a page: the slice read has %d rows and cursor %q; the stream %d and %q (%v)", name, limit, len(slice), sliceNext, rows, next, err)
			}
			if rows > limit || (next != "" && rows != limit) {
				t.Fatalf("%s, %d a page: a page of %d rows, cursor %q", name, limit, rows, next)
			}
			if next == "" {
				break
			}
			q.Cursor = next
		}
		if strings.Join(got, " ") != strings.Join(want, " ") {
			t.Errorf("%s, %d a page: pages hold %v; the whole list %v", name, limit, got, want)
		}
	}
}

func deref(p *int64) int64 {
	if p == nil {
		return -1
	}
	return *p
}

func otherThan(a string) string {
	if a == "a1" {
		return "a2"
	}
	return "a1"
}

func containsCall(rows []reports.CallRow, id string) bool {
	for _, r := range rows {
		if r.ID == id {
			return true
		}
	}
	return false
}

// Dump renders every row the reports hold in q's range (open intervals
// counted up to q.To), for comparing two databases.
func Dump(t testing.TB, db *reports.DB, qq reports.Query) string {
	t.Helper()
	ctx := context.Background()
	qq.Limit = 100000
	calls, _, err := db.Calls(ctx, qq, reports.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	atts, _, err := db.Attempts(ctx, qq, reports.AttemptFilter{})
	if err != nil {
		t.Fatal(err)
	}
	mons, _, err := db.Monitors(ctx, qq, "")
	if err != nil {
		t.Fatal(err)
	}
	ags, err := db.Agents(ctx, qq, "", qq.To)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, v := range []any{calls, atts, mons, ags} {
		j, _ := json.Marshal(v)
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.String()
}

// testExactlyOnce: a projector that dies after any transaction resumes
// from the position stored with the rows; a stale writer changes nothing.
func testExactlyOnce(t *testing.T, newDB Factory) {
	f := newFloor(t)
	runScenario(t, f)
	ctx := context.Background()
	evs, err := f.st.ReadAfter(ctx, "", 100000, 0)
	f.must(err)
	open := newDB(t)
	db := open()
	// The first projector "crashes" after applying a third of the log in
	// batches of 7 (a process killed between transactions).
	epoch := projectEpoch(t, f, db)
	pos := ""
	for i := 0; i < len(evs)/3; i += 7 {
		batch := evs[i:min(i+7, len(evs)/3)]
		f.must(db.Apply(ctx, pos, epoch, batch, time.Now()))
		pos = batch[len(batch)-1].ID
	}
	// A writer that read an older position cannot apply again.
	if err := db.Apply(ctx, "", epoch, evs[:1], time.Now()); !errors.Is(err, reports.ErrMoved) {
		t.Fatalf("stale apply: %v; want ErrMoved", err)
	}
	f.must(db.Close())
	db = openDB(t, open)
	project(t, f, db)
	c, err := db.Cursor(ctx)
	f.must(err)
	if c.Applied != int64(len(evs)) {
		t.Fatalf("applied %d events; the log holds %d", c.Applied, len(evs))
	}
	fresh := openDB(t, newDB(t))
	project(t, f, fresh)
	if a, b := Dump(t, db, dayRange(f)), Dump(t, fresh, dayRange(f)); a != b {
		t.Fatalf("resumed projection differs from a replay:\n%s\n---\n%s", a, b)
	}
}

// projectEpoch runs a projector once on an empty log position so the
// database and store agree on the log's epoch, and returns it.
func projectEpoch(t *testing.T, f *floor, db *reports.DB) string {
	t.Helper()
	rr, err := f.st.Get(context.Background(), state.KindMeta, "reports-log-epoch")
	if errors.Is(err, state.ErrNotFound) {
		_, err = f.st.Commit(context.Background(), state.Tx{Puts: []state.Put{{Kind: state.KindMeta, ID: "reports-log-epoch", Data: []byte("e1"), IfVersion: state.MustNotExist}}})
		f.must(err)
		rr.Data = []byte("e1")
	} else {
		f.must(err)
	}
	f.must(db.ResetEpoch(context.Background(), "", string(rr.Data), time.Now()))
	return string(rr.Data)
}

type countingObserver struct{ applied, gaps atomic.Int64 }

func (o *countingObserver) Applied(n int) { o.applied.Add(int64(n)) }
func (o *countingObserver) Gap()          { o.gaps.Add(1) }

// testGap: the log trimmed past the projector's position is recorded (in
// the database, the counter and the observer), and projection goes on.
func testGap(t *testing.T, newDB Factory) {
	f := newFloor(t, store.WithRetention(20))
	db := openDB(t, newDB(t))
	f.group("g")
	f.agent("a1", presence.RoleAgent, "g")
	obs := &countingObserver{}
	project(t, f, db, reports.WithObserver(obs))
	for i := range 30 {
		f.status("a1", []string{presence.StatusLunchBreak, presence.StatusAvailable}[i%2])
	}
	p := project(t, f, db, reports.WithObserver(obs))
	c, err := db.Cursor(context.Background())
	f.must(err)
	gaps, err := db.Gaps(context.Background())
	f.must(err)
	if c.Gaps != 1 || len(gaps) != 1 || obs.gaps.Load() != 1 || p.GapsSeen() != 1 || gaps[0].Reason == "" {
		t.Fatalf("gap not reported: cursor %+v, gaps %+v, observer %d, projector %d", c, gaps, obs.gaps.Load(), p.GapsSeen())
	}
	last, _ := f.st.Last(context.Background())
	if c.Position != last || obs.applied.Load() == 0 {
		t.Fatalf("projection did not go on after the gap: at %q, log at %q", c.Position, last)
	}
}

func testRetention(t *testing.T, newDB Factory) {
	f := newFloor(t)
	runScenario(t, f)
	db := openDB(t, newDB(t))
	project(t, f, db)
	ctx := context.Background()
	qq := dayRange(f)
	// Nothing is older than a day yet.
	n, err := db.Prune(ctx, reports.Retention{CallsDays: 1, AttemptsDays: 1, IntervalsDays: 1, MonitorsDays: 1}, f.clock.Now())
	f.must(err)
	for table, rows := range n {
		if rows != 0 {
			t.Fatalf("pruned %d %s rows of today", rows, table)
		}
	}
	// Three days later, calls kept for 7 days stay; attempts and monitors
	// kept for 2 go; intervals kept forever (0) stay.
	later := f.clock.Now().AddDate(0, 0, 3)
	_, err = db.Prune(ctx, reports.Retention{CallsDays: 7, AttemptsDays: 2, MonitorsDays: 2}, later)
	f.must(err)
	calls, _, _ := db.Calls(ctx, qq, reports.CallFilter{})
	atts, _, _ := db.Attempts(ctx, qq, reports.AttemptFilter{})
	mons, _, _ := db.Monitors(ctx, qq, "")
	ags, _ := db.Agents(ctx, qq, "", f.clock.Now())
	if len(calls) != 4 || len(atts) != 0 || len(mons) != 0 || len(ags) == 0 {
		t.Fatalf("after pruning: %d calls, %d attempts, %d monitors, %d agents", len(calls), len(atts), len(mons), len(ags))
	}
}

// testTwoProjectors: two projectors on one store and database; one holds
// the lease, and every event is applied once.
func testTwoProjectors(t *testing.T, newDB Factory) {
	f := newFloor(t)
	open := newDB(t)
	db1, db2 := openDB(t, open), openDB(t, open)
	ctx, cancel := context.WithCancel(context.Background())
	p1 := reports.NewProjector(db1, f.st, f.st, reports.WithReadWait(10*time.Millisecond))
	p2 := reports.NewProjector(db2, f.st, f.st, reports.WithReadWait(10*time.Millisecond))
	l1 := lease.New(f.st, reports.LeaseName, lease.WithTTL(300*time.Millisecond))
	l2 := lease.New(f.st, reports.LeaseName, lease.WithTTL(300*time.Millisecond))
	done := make(chan error, 2)
	go func() { done <- p1.Run(ctx, reports.UnderLease(l1)) }()
	go func() { done <- p2.Run(ctx, reports.UnderLease(l2)) }()
	runScenario(t, f)
	evs, err := f.st.ReadAfter(ctx, "", 100000, 0)
	f.must(err)
	last := evs[len(evs)-1].ID
	for {
		c, err := db1.Cursor(ctx)
		f.must(err)
		if c.Position == last {
			if c.Applied != int64(len(evs)) {
				t.Fatalf("applied %d; the log holds %d events", c.Applied, len(evs))
			}
			break
		}
		select {
		case <-p1.CaughtUp():
		case <-p2.CaughtUp():
		case <-time.After(30 * time.Second):
			t.Fatalf("not caught up: %+v", c)
		}
	}
	if p1.Leading() == p2.Leading() {
		t.Fatalf("leading: %v and %v; want exactly one", p1.Leading(), p2.Leading())
	}
	cancel()
	<-done
	<-done
	calls, _, err := db1.Calls(context.Background(), dayRange(f), reports.CallFilter{})
	f.must(err)
	ids := []string{}
	for _, c := range calls {
		ids = append(ids, c.ID)
	}
	sort.Strings(ids)
	if len(ids) != 4 {
		t.Fatalf("calls %v; want 4", ids)
	}
}
