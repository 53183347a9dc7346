package ari

// The product path end to end: the fake Asterisk ⇄ Client ⇄ routing.Engine
// ⇄ presence.Service ⇄ the memory store, on the bundled demo floor
// (internal/config), as cmd/callfloor wires it. Flows assert the exact ARI
// requests and the call and agent states the engine and presence report.

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/store"
)

// salesHotline routes to the demo floor's "sales" queue (round_robin over
// a1 app, a2 app_sip, a3 ip_phone, a4 phone, sup-sales; ring 18 s,
// wrap-up 30 s).
const salesHotline = "+842873000001"

type e2e struct {
	t     testing.TB
	ctx   context.Context
	f     *fakeARI
	c     *Client
	st    *store.Memory
	svc   *presence.Service
	eng   *routing.Engine
	clock *routingtest.Clock
	admin presence.Actor
	sup   presence.Actor // sup-sales, supervisor of "sales"
	stop  func()         // stops the running controller (engine and client)
	opts  []Option       // extra client options
	// legAudit is the engine's leg audit interval: off unless a test
	// turns it on, since the request sequences the tests pin leave out
	// the audit's GET /channels.
	legAudit time.Duration
}

// startE2E wires the floor and waits until the client's first resync has
// reached presence (a1, a2 and sup-sales registered in the fake).
func startE2E(t testing.TB, opts ...Option) *e2e { t.Helper(); return startE2EAudit(t, 0, opts...) }

// startE2EAudit is startE2E with the engine's leg audit every legAudit.
func startE2EAudit(t testing.TB, legAudit time.Duration, opts ...Option) *e2e {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h := &e2e{t: t, ctx: ctx, f: newFake(t), st: store.NewMemory(), opts: opts, legAudit: legAudit,
		clock: routingtest.NewClock(time.Date(2026, 11, 21, 3, 0, 0, 0, time.UTC)), stop: func() {}}
	t.Cleanup(func() {
		h.stop()
		cancel()
		h.f.Close()
		_ = h.st.Close()
	})
	h.boot()
	h.admin = h.actor("admin")
	h.sup = h.actor("sup-sales")
	h.eventually("first resync reached presence", func() error {
		for id, want := range map[string]bool{"a1": true, "a2": true, "sup-sales": true, "a3": false, "a8": false} {
			if got := h.agent(id).Online; got != want {
				return fmt.Errorf("%s online = %v, want %v", id, got, want)
			}
		}
		return nil
	})
	return h
}

// boot starts a controller process on the floor's store and the fake, as
// cmd/callfloor does: bootstrap the configured floor (existing records
// kept), engine, ARI client; it waits for the client's first resync.
func (h *e2e) boot() {
	t := h.t
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	h.svc = presence.NewService(h.st, append(cfg.PresenceOptions(), presence.WithClock(h.clock.Now), presence.WithLogger(testLogger(t)),
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return h.eng.LogoutGuard(ctx, id) }))...)
	if err := config.Bootstrap(h.ctx, cfg, h.svc); err != nil {
		t.Fatal(err)
	}
	eng := routing.NewEngine(h.st, h.svc, nil, routing.WithClock(h.clock), routing.WithLogger(testLogger(t)),
		routing.WithDefaultQueue(cfg.DefaultQueue), routing.WithRandSeed(1, 2), routing.WithLegAudit(h.legAudit))
	if err := config.BootstrapQueues(h.ctx, cfg, eng); err != nil {
		t.Fatal(err)
	}
	c, err := New(Config{URL: h.f.URL(), User: "callfloor", Password: "secret", App: cfg.ARI.App,
		TrunkPattern: cfg.ARI.TrunkPattern, Devices: AgentDevices(h.svc)}, eng, append([]Option{WithLogger(testLogger(t)),
		WithBackoff(5*time.Millisecond, 40*time.Millisecond)}, h.opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	eng.SetMedia(c)
	h.eng, h.c = eng, c
	ctx, cancel := context.WithCancel(h.ctx)
	engDone, cliDone := make(chan error, 1), make(chan error, 1)
	go func() { engDone <- eng.Run(ctx) }()
	<-eng.Started()
	again := len(h.f.subsOf()) > 0 // a restart: Asterisk kept the subscriptions
	go func() { cliDone <- c.Run(ctx) }()
	h.stop = func() {
		cancel()
		if err := <-cliDone; err != nil {
			t.Errorf("client Run: %v", err)
		}
		if err := <-engDone; err != nil {
			t.Errorf("engine Run: %v", err)
		}
		h.stop = func() {}
	}
	switch {
	case c.cfg.Devices != nil && again:
		h.expectPrefix(e2eReconnectRequests...)
	case c.cfg.Devices != nil:
		h.expectPrefix(e2eConnectRequests...)
	case again:
		h.expectPrefix(reconnectRequests...)
	default:
		h.expectPrefix(connectRequests...)
	}
	waitFor(t, c.Connected)
	h.flush()
}

// restart stops the controller and boots a new one (same store, same
// Asterisk): calls must survive, as channels stay in Stasis.
func (h *e2e) restart() {
	h.t.Helper()
	h.stop()
	h.f.Cut(false) // the old socket is closed already; forget it
	h.boot()
}

func (h *e2e) actor(id string) presence.Actor {
	h.t.Helper()
	a, err := h.svc.Agent(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	act, err := h.svc.ActorFor(h.ctx, a)
	if err != nil {
		h.t.Fatal(err)
	}
	return act
}

// eventually polls cond until it returns nil (facts reach the engine
// asynchronously over the fake's WebSocket), then lets the engine settle.
func (h *e2e) eventually(what string, cond func() error) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := cond()
		if err == nil {
			h.flush()
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (h *e2e) flush() {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 5*time.Second)
	defer cancel()
	if err := h.eng.Flush(ctx); err != nil {
		h.t.Fatalf("engine flush: %v", err)
	}
}

// advance moves the engine's clock (ring timeouts, wrap-up) and settles.
func (h *e2e) advance(d time.Duration) {
	h.t.Helper()
	h.clock.Advance(d)
	h.flush()
}

func (h *e2e) agent(id string) presence.Agent {
	h.t.Helper()
	a, err := h.svc.Agent(h.ctx, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

// available sets agents' manual status to available and kicks routing,
// as the API does.
func (h *e2e) available(ids ...string) {
	h.t.Helper()
	st := presence.StatusAvailable
	for _, id := range ids {
		if _, err := h.svc.SetStatus(h.ctx, presence.System, id, &st, nil); err != nil {
			h.t.Fatalf("set %s available: %v", id, err)
		}
	}
	h.eng.Kick()
	h.flush()
}

// agentIs checks an agent's system status and the call it is on.
func agentIs(a presence.Agent, sys presence.SystemStatus, callID string) error {
	got := ""
	if a.CallID != nil {
		got = *a.CallID
	}
	if a.SystemStatus != sys || got != callID {
		return fmt.Errorf("agent %s is %s on call %q, want %s on %q", a.ID, a.SystemStatus, got, sys, callID)
	}
	return nil
}

func (h *e2e) waitAgent(id string, sys presence.SystemStatus, callID string) {
	h.t.Helper()
	h.eventually("agent "+id, func() error { return agentIs(h.agent(id), sys, callID) })
}

// callIs checks a live call's state and agent.
func (h *e2e) callIs(id string, state routing.CallState, agent string) error {
	c, err := h.eng.Call(h.ctx, h.admin, id)
	if err != nil {
		return err
	}
	got := ""
	if c.Agent != nil {
		got = *c.Agent
	}
	if c.State != state || got != agent {
		return fmt.Errorf("call %s is %s with %q, want %s with %q", id, c.State, got, state, agent)
	}
	return nil
}

func (h *e2e) waitCall(id string, state routing.CallState, agent string) {
	h.t.Helper()
	h.eventually("call "+id, func() error { return h.callIs(id, state, agent) })
}

func (h *e2e) waitGone(id string) {
	h.t.Helper()
	h.eventually("call "+id+" ends", func() error {
		if _, err := h.eng.Call(h.ctx, h.admin, id); !errors.Is(err, presence.ErrNotFound) {
			return fmt.Errorf("still live (err %v)", err)
		}
		return nil
	})
}

// arrive plays a trunk call into Stasis and returns the engine's call id
// and the customer's channel.
func (h *e2e) arrive(from string) (callID, cust string) {
	h.t.Helper()
	cust = h.f.Inbound(from, salesHotline)
	h.eventually("call from "+from+" arrives", func() error {
		calls, err := h.eng.Calls(h.ctx, h.admin, routing.CallFilter{})
		if err != nil {
			return err
		}
		for _, c := range calls {
			if c.CustomerNumber == from {
				callID = c.ID
				return nil
			}
		}
		return errors.New("not in engine.Calls")
	})
	return callID, cust
}

// channelTo waits for the channel originated to an endpoint resource.
func (h *e2e) channelTo(res string) string {
	h.t.Helper()
	var id string
	h.eventually("originate to "+res, func() error {
		h.f.mu.Lock()
		defer h.f.mu.Unlock()
		for cid, ch := range h.f.chans {
			if ch.endpoint == res {
				id = cid
				return nil
			}
		}
		return errors.New("no such channel")
	})
	return id
}

// heldRequests is what a new inbound call costs: answer and music on
// hold on the caller's channel.
func heldRequests(cust string) []string {
	return []string{
		"POST /channels/" + cust + "/answer",
		"POST /channels/" + cust + "/moh?mohClass=default",
	}
}

// originate is the request routing makes to ring an agent device.
func originate(args, callerID, channel, endpoint string, timeout int) string {
	return originateReq("callfloor", args, callerID, channel, endpoint, timeout)
}

// peek returns the requests logged since the last expectation, leaving
// them to be expected.
func (h *e2e) peek() []string {
	h.f.mu.Lock()
	defer h.f.mu.Unlock()
	return slices.Clone(h.f.reqs[h.f.taken:])
}

// channelIDOf reads the channelId of a logged originate request.
func channelIDOf(req string) string {
	_, query, _ := strings.Cut(req, "?")
	q, err := url.ParseQuery(query)
	if err != nil {
		return ""
	}
	return q.Get("channelId")
}

// expectChains waits for the next requests and checks they are exactly
// the union of chains, each chain in its own order. Requests of one chain
// follow each other causally (routing's commands, the client's follow-up
// worker); separate chains run concurrently and interleave freely.
func (h *e2e) expectChains(chains ...[]string) {
	h.t.Helper()
	h.expectChainsMaybe(nil, chains...)
}

// expectChainsMaybe is expectChains where the requests in maybe may also
// appear, once each, anywhere (a race with two right outcomes).
func (h *e2e) expectChainsMaybe(maybe []string, chains ...[]string) {
	h.t.Helper()
	var n int
	for _, c := range chains {
		n += len(c)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		h.f.mu.Lock()
		have := len(h.f.reqs) - h.f.taken
		h.f.mu.Unlock()
		if have >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	time.Sleep(30 * time.Millisecond) // let a stray extra request show up
	got := h.f.takeRequests()
	for _, m := range maybe {
		if i := slices.Index(got, m); i >= 0 && matchChains(got, chains) != nil {
			got = slices.Delete(slices.Clone(got), i, i+1)
		}
	}
	if err := matchChains(got, chains); err != nil {
		h.t.Fatalf("ARI requests: %v\n got:\n  %s\n want chains:\n  %s", err, strings.Join(got, "\n  "), fmtChains(chains))
	}
}

// expectPrefix waits for the next len(want) requests and checks them, in
// order, leaving any later ones to the next expectation.
func (h *e2e) expectPrefix(want ...string) {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(h.peek()) < len(want) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	h.f.mu.Lock()
	n := min(len(want), len(h.f.reqs)-h.f.taken)
	got := slices.Clone(h.f.reqs[h.f.taken : h.f.taken+n])
	h.f.taken += n
	h.f.mu.Unlock()
	if !slices.Equal(got, want) {
		h.t.Fatalf("ARI requests:\n got  %q\n want %q", got, want)
	}
}

// expectSeq: the next requests are exactly want, in this order.
func (h *e2e) expectSeq(want ...string) {
	h.t.Helper()
	h.expectChains(want)
}

func matchChains(got []string, chains [][]string) error {
	pos := make([]int, len(chains))
	// Depth-first over which chain each request advances: a request may
	// head several chains (the same hang-up twice).
	var try func(i int) bool
	try = func(i int) bool {
		if i == len(got) {
			for c := range chains {
				if pos[c] < len(chains[c]) {
					return false
				}
			}
			return true
		}
		for c := range chains {
			if pos[c] < len(chains[c]) && chains[c][pos[c]] == got[i] {
				pos[c]++
				if try(i + 1) {
					return true
				}
				pos[c]--
			}
		}
		return false
	}
	if try(0) {
		return nil
	}
	var n int
	for _, c := range chains {
		n += len(c)
	}
	return fmt.Errorf("%d requests do not interleave the %d wanted ones in chain order", len(got), n)
}

func fmtChains(chains [][]string) string {
	var b strings.Builder
	for i, c := range chains {
		if i > 0 {
			b.WriteString("\n  --\n  ")
		}
		b.WriteString(strings.Join(c, "\n  "))
	}
	return b.String()
}

func TestMatchChains(t *testing.T) {
	chains := [][]string{{"a", "b", "c"}, {"x"}}
	for _, ok := range [][]string{{"a", "b", "c", "x"}, {"x", "a", "b", "c"}, {"a", "x", "b", "c"}} {
		if err := matchChains(ok, chains); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range [][]string{{"b", "a", "c", "x"}, {"a", "b", "c"}, {"a", "b", "c", "x", "x"}, {"a", "b", "x", "c", "y"}} {
		if matchChains(bad, chains) == nil {
			t.Errorf("%q matched", bad)
		}
	}
	if err := matchChains([]string{"d", "d"}, [][]string{{"d"}, {"d"}}); err != nil {
		t.Errorf("repeated request: %v", err)
	}
}
