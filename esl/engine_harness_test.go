package esl

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// e2e is the whole product path on the FreeSWITCH side: the reactive fake
// FreeSWITCH ⇄ Client ⇄ routing.Engine ⇄ presence.Service ⇄ memory store,
// with the bundled demo floor (config.example.yaml) bootstrapped as
// cmd/callfloor does. Routing and presence share a fake clock, so ring
// timeouts and wrap-ups happen only when the test advances it.
type e2e struct {
	t      testing.TB
	ctx    context.Context
	fs     *simFS
	clock  *routingtest.Clock
	st     *store.Memory
	svc    *presence.Service
	eng    *routing.Engine
	cl     *Client
	cfg    config.Config
	admin  presence.Actor
	legSeq int
	legMu  sync.Mutex
	stop   func() // stops the client, then the engine
	// addr is the fake FreeSWITCH's event socket: the reactive fs, or a
	// transcript replay (then fs is nil).
	addr    string
	newUUID func() string
}

func newE2E(t testing.TB) *e2e {
	t.Helper()
	f := newFloorE2E(t)
	f.fs = newSimFS(t)
	f.addr = f.fs.addr()
	f.start(true)
	return f
}

// newFloorE2E bootstraps the demo floor; start runs routing and the
// client against f.addr.
func newFloorE2E(t testing.TB) *e2e {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	f := &e2e{t: t, ctx: ctx, clock: routingtest.NewClock(t0), st: store.NewMemory()}
	f.newUUID = f.nextLeg
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	f.admin = presence.Actor{ID: "admin", Role: presence.RoleAdmin}
	f.svc = presence.NewService(f.st, append(cfg.PresenceOptions(), presence.WithClock(f.clock.Now), presence.WithLogger(testLogger()),
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return f.eng.LogoutGuard(ctx, id) }))...)
	if err := config.Bootstrap(ctx, cfg, f.svc); err != nil {
		t.Fatal(err)
	}
	// a2 and the supervisors ring only their app here, so each dial is
	// one originate of one uuid; the fork tests switch a2 back to app_sip.
	for _, id := range []string{"a2", "sup-sales", "sup-support"} {
		f.setDistribution(id, presence.DistApp)
	}
	t.Cleanup(func() { _ = f.st.Close() }) // runs after the loops stopped
	return f
}

func (f *e2e) setDistribution(id string, d presence.Distribution) {
	f.t.Helper()
	if _, err := f.svc.UpdateAgent(f.ctx, presence.System, id, presence.AgentInput{Distribution: &d}); err != nil {
		f.t.Fatal(err)
	}
}

// start builds and runs an engine and a client over the floor's store
// (again after restart: a new callfloor process), bootstrapping the
// demo queues the first time.
func (f *e2e) start(bootstrap bool, opts ...routing.Option) {
	t, ctx, cfg := f.t, f.ctx, f.cfg
	f.eng = routing.NewEngine(f.st, f.svc, nil, append([]routing.Option{routing.WithClock(f.clock), routing.WithLogger(testLogger()),
		routing.WithDefaultQueue(cfg.DefaultQueue), routing.WithRandSeed(1, 2)}, opts...)...)
	if bootstrap {
		if err := config.BootstrapQueues(ctx, cfg, f.eng); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	f.cl, err = New(testConfig(f.addr), loggedFacts{f.eng}, WithLogger(testLogger()), WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	f.cl.now = f.clock.Now
	f.cl.newUUID = f.newUUID
	f.eng.SetMedia(f.cl)

	stopEngine := f.run("engine", f.eng.Run)
	select {
	case <-f.eng.Started():
	case <-ctx.Done():
		t.Fatal("engine never started")
	}
	stopClient := f.run("esl client", f.cl.Run)
	f.stop = func() { stopClient(); stopEngine() }
	f.waitConnected()
}

// loggedFacts logs every fact on its way to routing (ESL_TEST_LOG=1).
type loggedFacts struct{ media.Facts }

func (l loggedFacts) Report(f media.Fact) {
	testLogger().Debug("fact", "type", fmt.Sprintf("%T", f), "fact", fmt.Sprintf("%+v", f))
	l.Facts.Report(f)
}

// restart stops the client and the engine and starts new ones on the
// same store and FreeSWITCH: a callfloor restart.
func (f *e2e) restart() {
	f.t.Helper()
	f.stop()
	f.start(false)
}

// run starts loop in a goroutine; the returned stop (also run by
// t.Cleanup) cancels it and waits for it.
func (f *e2e) run(name string, loop func(context.Context) error) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- loop(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					f.t.Errorf("%s: %v", name, err)
				}
			case <-time.After(10 * time.Second):
				f.t.Errorf("%s did not stop", name)
			}
		})
	}
	f.t.Cleanup(stop)
	return stop
}

// nextLeg hands out the uuids the client originates with: leg 1, 2, …
func (f *e2e) nextLeg() string {
	f.legMu.Lock()
	defer f.legMu.Unlock()
	f.legSeq++
	return legUUID(f.legSeq)
}

func legUUID(n int) string { return fmt.Sprintf("0a0a0a0a-0000-4000-8000-%012d", n) }

// custUUID names the n-th customer channel the fake parks.
func custUUID(n int) string { return fmt.Sprintf("0c0c0c0c-0000-4000-8000-%012d", n) }

// connectCommands is what a (re)connection sends before anything else.
var connectCommands = []string{
	"auth callfloor", ourSubscription,
	"api show channels as json", "api show calls as json", "api show registrations as json",
}

// waitConnected waits for the handshake and resync, and checks them.
func (f *e2e) waitConnected() {
	f.t.Helper()
	if f.fs != nil { // a replay (fakeFS) checks its script itself
		f.fs.takeSequence(connectCommands)
	}
	f.eventually("client connected", func() error {
		if !f.cl.Connected() {
			return errors.New("not connected")
		}
		return nil
	})
}

// eventually waits (flushing the engine) until check passes.
func (f *e2e) eventually(what string, check func() error) {
	f.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		fctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
		_ = f.eng.Flush(fctx)
		cancel()
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(time.Millisecond)
	}
}

// wantCommands waits for the commands since the last check and compares
// them, in order.
func (f *e2e) wantCommands(want ...string) {
	f.t.Helper()
	if len(want) > 0 {
		f.fs.waitCommands(len(want))
	}
	// Let anything routing would still send arrive, so extras show.
	f.settle()
	got := f.fs.takeCommands()
	if !reflect.DeepEqual(got, want) {
		f.t.Fatalf("ESL commands:\n got: %s\nwant: %s", quoteLines(got), quoteLines(want))
	}
}

// settle flushes the engine until the fake has received nothing new for
// a moment: routing's reactions to facts are asynchronous.
func (f *e2e) settle() {
	last := -1
	for stable := 0; stable < 3; {
		fctx, cancel := context.WithTimeout(f.ctx, 5*time.Second)
		_ = f.eng.Flush(fctx)
		cancel()
		time.Sleep(5 * time.Millisecond)
		if n := f.fs.commandCount(); n == last {
			stable++
		} else {
			last, stable = n, 0
		}
	}
}

func quoteLines(ss []string) string {
	var b strings.Builder
	for _, s := range ss {
		fmt.Fprintf(&b, "\n  %q", s)
	}
	return b.String()
}

// available sets agents' call status to available and kicks routing, as
// the API does.
func (f *e2e) available(ids ...string) {
	f.t.Helper()
	for _, id := range ids {
		st := presence.StatusAvailable
		if _, err := f.svc.SetStatus(f.ctx, presence.System, id, &st, nil); err != nil {
			f.t.Fatalf("set %s available: %v", id, err)
		}
	}
	if f.eng != nil {
		f.eng.Kick()
	}
}

// arrive parks a trunk call on the fake and returns routing's call id.
func (f *e2e) arrive(n int, hotline string) string {
	f.t.Helper()
	cust := custUUID(n)
	f.fs.inbound(cust, caller, hotline)
	var id string
	f.eventually("call from "+cust+" recorded", func() error {
		calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
		if err != nil {
			return err
		}
		for _, c := range calls {
			r, err := f.st.Get(f.ctx, state.KindCall, c.ID)
			if err == nil && strings.Contains(string(r.Data), cust) {
				id = c.ID
				return nil
			}
		}
		return fmt.Errorf("no call for %s among %d", cust, len(calls))
	})
	return id
}

// wantCall checks a live call's state and agent.
func (f *e2e) wantCall(id string, state routing.CallState, agent string) routing.CallView {
	f.t.Helper()
	var v routing.CallView
	f.eventually("call "+id+" "+string(state)+" with "+agent, func() error {
		var err error
		v, err = f.eng.Call(f.ctx, f.admin, id)
		if err != nil {
			return err
		}
		got := ""
		if v.Agent != nil {
			got = *v.Agent
		}
		if v.State != state || got != agent {
			return fmt.Errorf("call is %s with %q", v.State, got)
		}
		return nil
	})
	return v
}

func (f *e2e) wantGone(id string) {
	f.t.Helper()
	f.eventually("call "+id+" ended", func() error {
		if _, err := f.eng.Call(f.ctx, f.admin, id); !errors.Is(err, presence.ErrNotFound) {
			return fmt.Errorf("still live (err %v)", err)
		}
		return nil
	})
}

// wantAgent checks an agent's system status and call.
func (f *e2e) wantAgent(id string, sys presence.SystemStatus, callID string) {
	f.t.Helper()
	f.eventually("agent "+id+" "+string(sys), func() error {
		a, err := f.svc.Agent(f.ctx, id)
		if err != nil {
			return err
		}
		got := ""
		if a.CallID != nil {
			got = *a.CallID
		}
		if a.SystemStatus != sys || got != callID {
			return fmt.Errorf("agent is %s on call %q, want %s on %q", a.SystemStatus, got, sys, callID)
		}
		return nil
	})
}

// advance moves the shared fake clock and lets routing react.
func (f *e2e) advance(d time.Duration) {
	f.clock.Advance(d)
	f.settle()
}

func (f *e2e) actor(id string) presence.Actor {
	f.t.Helper()
	a, err := f.svc.Agent(f.ctx, id)
	if err != nil {
		f.t.Fatal(err)
	}
	act, err := f.svc.ActorFor(f.ctx, a)
	if err != nil {
		f.t.Fatal(err)
	}
	return act
}

// originateFor is the originate routing sends to ring agent id for call
// on leg n (ring timeout 18 s: the demo queues' and DefaultRingTimeout).
func originateFor(n int, callID, id, app string, extra ...string) string {
	vars := append([]string{"originate_timeout=18", "ignore_early_media=true", "park_after_bridge=true",
		"origination_caller_id_number=" + caller, "origination_caller_id_name=" + caller, "callfloor_call_id=" + callID}, extra...)
	return "bgapi originate {" + strings.Join(vars, ",") + "}[origination_uuid=" + legUUID(n) + "]user/" + id + "@127.0.0.1 " + app
}

func dev(id string) string { return "user/" + id + "@127.0.0.1" }
