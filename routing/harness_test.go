package routing_test

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testFloor is one engine over the memory store, a fake clock and the
// media double.
type testFloor struct {
	t      testing.TB
	ctx    context.Context
	clock  *routingtest.Clock
	media  *routingtest.Media
	st     state.StoreLog
	agents *presence.Service
	eng    *routing.Engine
	admin  presence.Actor
	legs   int
	opts   []routing.Option
	stop   func()
}

// start runs a new engine over the floor's store (a restarted controller).
func (f *testFloor) start() {
	f.t.Helper()
	f.eng = routing.NewEngine(f.st, f.agents, f.media, f.opts...)
	ctx, cancel := context.WithCancel(context.Background())
	f.ctx = ctx
	done := make(chan error, 1)
	eng := f.eng
	go func() { done <- eng.Run(ctx) }()
	f.stop = func() {
		cancel()
		if err := <-done; err != nil {
			f.t.Errorf("Run: %v", err)
		}
	}
	select {
	case <-eng.Started():
	case err := <-done:
		f.t.Fatalf("Run: %v", err)
	}
}

// restartWith restarts the engine with extra options.
func (f *testFloor) restartWith(opts ...routing.Option) {
	f.t.Helper()
	f.opts = append(f.opts, opts...)
	f.restart()
}

// restart stops the engine and starts a fresh one on the same store.
func (f *testFloor) restart() {
	f.t.Helper()
	f.stop()
	f.start()
	f.flush()
}

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func newFloor(t testing.TB, loc *time.Location, start time.Time, opts ...routing.Option) *testFloor {
	t.Helper()
	return newFloorOn(t, store.NewMemory(), loc, start, opts...)
}

// newFloorOn is newFloor over a given store (the Redis tests).
func newFloorOn(t testing.TB, st state.StoreLog, loc *time.Location, start time.Time, opts ...routing.Option) *testFloor {
	t.Helper()
	if loc == nil {
		loc = time.UTC
	}
	if start.IsZero() {
		start = t0
	}
	f := &testFloor{t: t, clock: routingtest.NewClock(start), media: &routingtest.Media{}, st: st}
	f.agents = presence.NewService(f.st, presence.WithClock(f.clock.Now), presence.WithLocation(loc),
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return f.eng.LogoutGuard(ctx, id) }))
	f.opts = append([]routing.Option{routing.WithClock(f.clock), routing.WithDefaultQueue("main"), routing.WithRandSeed(1, 2)}, opts...)
	f.admin = presence.Actor{ID: "boss", Role: presence.RoleAdmin}
	f.start()
	t.Cleanup(func() {
		f.stop()
		_ = f.st.Close()
	})
	f.flush()
	return f
}

func (f *testFloor) flush() {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(f.ctx, 30*time.Second)
	defer cancel()
	if err := f.eng.Flush(ctx); err != nil {
		buf := make([]byte, 1<<20)
		f.t.Fatalf("flush: %v\n%s", err, buf[:runtime.Stack(buf, true)])
	}
}

// advance moves the fake clock and waits for the consequences.
func (f *testFloor) advance(d time.Duration) {
	f.t.Helper()
	f.clock.Advance(d)
	f.flush()
}

// addAgent creates an agent in groups, logged in and available.
func (f *testFloor) addAgent(id string, role presence.Role, groups ...string) {
	f.t.Helper()
	if groups == nil {
		groups = []string{}
	}
	name, email := id, id+"@example.com"
	if _, err := f.agents.CreateAgent(f.ctx, presence.System, presence.AgentInput{ID: &id, Name: &name, Email: &email, Role: &role, Groups: &groups}); err != nil {
		f.t.Fatalf("create agent %s: %v", id, err)
	}
	f.setStatus(id, presence.StatusAvailable)
}

func (f *testFloor) setStatus(id, status string) {
	f.t.Helper()
	if _, err := f.agents.SetStatus(f.ctx, presence.System, id, &status, nil); err != nil {
		f.t.Fatalf("set status %s %s: %v", id, status, err)
	}
	f.eng.Kick()
	f.flush()
}

func (f *testFloor) addGroup(id string, supervisors ...string) {
	f.t.Helper()
	if supervisors == nil {
		supervisors = []string{}
	}
	if _, err := f.agents.PutGroup(f.ctx, f.admin, id, true, presence.GroupPatch{Name: &id, Supervisors: &supervisors}); err != nil {
		f.t.Fatalf("group %s: %v", id, err)
	}
}

func (f *testFloor) addQueue(id string, s routing.Strategy, wrapup int, members []string, hotlines ...string) {
	f.t.Helper()
	if hotlines == nil {
		hotlines = []string{}
	}
	ring := 18
	if _, err := f.eng.CreateQueue(f.ctx, f.admin, routing.QueueInput{ID: &id, Strategy: &s, WrapupSeconds: &wrapup,
		RingTimeoutSeconds: &ring, Members: &members, Hotlines: &hotlines}); err != nil {
		f.t.Fatalf("queue %s: %v", id, err)
	}
	f.flush()
}

// arrive injects an inbound call and returns its id and customer leg.
func (f *testFloor) arrive(caller, hotline string) (string, media.LegID) {
	f.t.Helper()
	f.legs++
	leg := media.LegID(fmt.Sprintf("cust-%d", f.legs))
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: leg, Caller: caller, Hotline: hotline})
	f.flush()
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		f.t.Fatal(err)
	}
	for _, c := range calls {
		if c.CustomerNumber == caller && c.Hotline == hotline {
			return c.ID, leg
		}
	}
	f.t.Fatalf("call from %s not found after arrival", caller)
	return "", ""
}

func (f *testFloor) at() media.FactBase { return media.FactBase{At: f.clock.Now()} }

func (f *testFloor) report(fact media.Fact) {
	f.t.Helper()
	f.eng.Report(fact)
	f.flush()
}

// legOf is the newest leg dialled to agent.
func (f *testFloor) legOf(agent string) media.LegID {
	f.t.Helper()
	d, ok := f.media.DialOf(agent)
	if !ok {
		f.t.Fatalf("%s was never dialled; commands: %+v", agent, f.media.Commands())
	}
	return d.Result
}

func (f *testFloor) answer(leg media.LegID) {
	f.t.Helper()
	f.report(media.LegAnswered{FactBase: f.at(), Leg: leg})
}

func (f *testFloor) ended(leg media.LegID, cause media.Cause) {
	f.t.Helper()
	f.report(media.LegEnded{FactBase: f.at(), Leg: leg, Cause: cause})
}

func (f *testFloor) agent(id string) presence.Agent {
	f.t.Helper()
	a, err := f.agents.Agent(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func (f *testFloor) wantSys(id string, want presence.SystemStatus) {
	f.t.Helper()
	if got := f.agent(id).SystemStatus; got != want {
		f.t.Fatalf("agent %s system status = %s, want %s", id, got, want)
	}
}

func (f *testFloor) call(id string) routing.CallView {
	f.t.Helper()
	c, err := f.eng.Call(f.ctx, f.admin, id)
	if err != nil {
		f.t.Fatalf("call %s: %v", id, err)
	}
	return c
}

func (f *testFloor) wantCall(id string, state routing.CallState, agent string) routing.CallView {
	f.t.Helper()
	c := f.call(id)
	got := ""
	if c.Agent != nil {
		got = *c.Agent
	}
	if c.State != state || got != agent {
		f.t.Fatalf("call %s = %s with agent %q, want %s with %q", id, c.State, got, state, agent)
	}
	return c
}

func (f *testFloor) wantGone(id string) {
	f.t.Helper()
	if _, err := f.eng.Call(f.ctx, f.admin, id); err == nil {
		f.t.Fatalf("call %s still live", id)
	}
}

// events returns every logged event of typ, decoded into maps.
func (f *testFloor) events(typ string) []map[string]any {
	f.t.Helper()
	evs, err := f.st.ReadAfter(f.ctx, "", 100000, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []map[string]any
	for _, e := range evs {
		if e.Type != typ {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal(e.Data, &m); err != nil {
			f.t.Fatal(err)
		}
		out = append(out, m)
	}
	return out
}

func (f *testFloor) stats(queue, group string) routing.Stats {
	f.t.Helper()
	s, err := f.eng.Stats(f.ctx, f.admin, queue, group)
	if err != nil {
		f.t.Fatal(err)
	}
	return s
}
