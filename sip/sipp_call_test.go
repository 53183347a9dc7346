package sip

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// router is a scripted stand-in for the routing engine: it holds the
// caller with ringback, dials agents in order (the next one on no answer
// or busy), connects the first that answers, and mirrors hang-ups.
type router struct {
	agents  []string
	dist    presence.Distribution
	phone   string
	timeout time.Duration

	mu       sync.Mutex
	next     int
	customer media.LegID
	agent    media.LegID
	answered bool
	dialled  []media.LegID
	errs     []error
}

func (r *router) script(h *harness, f media.Fact) {
	ctx := context.Background()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch f := f.(type) {
	case media.CallArrived:
		r.customer = f.Leg
		r.check(h.srv.Hold(ctx, f.Leg, media.HoldRingback))
		r.dialNext(h, f.Caller)
	case media.LegAnswered:
		if f.Leg == r.agent {
			r.answered = true
			r.check(h.srv.Connect(ctx, r.customer, r.agent))
		}
	case media.LegEnded:
		switch {
		case f.Leg == r.customer:
			if r.agent != "" {
				r.check(h.srv.Hangup(ctx, r.agent, media.CauseNormal))
			}
		case f.Leg == r.agent && r.answered:
			r.check(h.srv.Hangup(ctx, r.customer, media.CauseNormal))
		case f.Leg == r.agent:
			r.dialNext(h, "+4930123456")
		}
	}
}

func (r *router) dialNext(h *harness, caller string) {
	for r.next < len(r.agents) {
		a := r.agents[r.next]
		r.next++
		leg, err := h.srv.Dial(context.Background(), media.DialRequest{
			CallID: "call-1", CallerID: caller, Timeout: r.timeout,
			Target: media.Target{AgentID: a, Distribution: r.dist, Phone: r.phone},
		})
		if err != nil {
			r.errs = append(r.errs, err)
			continue
		}
		r.agent = leg
		r.dialled = append(r.dialled, leg)
		return
	}
	r.agent = ""
	r.check(h.srv.Hangup(context.Background(), r.customer, media.CauseNoAnswer))
}

func (r *router) check(err error) {
	if err != nil {
		r.errs = append(r.errs, err)
	}
}

func (r *router) snapshot() (customer media.LegID, dialled []media.LegID, errs []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.customer, append([]media.LegID(nil), r.dialled...), append([]error(nil), r.errs...)
}

func ended(leg media.LegID, cause media.Cause) func(media.Fact) bool {
	return func(f media.Fact) bool {
		e, ok := f.(media.LegEnded)
		return ok && e.Leg == leg && e.Cause == cause
	}
}

func answered(leg media.LegID) func(media.Fact) bool {
	return func(f media.Fact) bool {
		a, ok := f.(media.LegAnswered)
		return ok && a.Leg == leg
	}
}

func ringing(leg media.LegID) func(media.Fact) bool {
	return func(f media.Fact) bool {
		a, ok := f.(media.LegRinging)
		return ok && a.Leg == leg
	}
}

// agentPhone registers user from a free port with sipp, then runs the
// UAS scenario there for one call.
func agentPhone(t *testing.T, h *harness, user, scen string) *sipp {
	t.Helper()
	port := testpeer.FreeUDPPort(t)
	h.register(t, user, port)
	return startSipp(t, user+" "+scen, port, "-sf", scenario(scen), "-m", "1", "-key", "agent", user)
}

func caller(t *testing.T, h *harness, scen string, talk time.Duration) *sipp {
	t.Helper()
	return startSipp(t, "caller "+scen, testpeer.FreeUDPPort(t), h.addr, "-sf", scenario(scen), "-m", "1",
		"-s", "800", "-d", strconv.Itoa(int(talk/time.Millisecond)))
}

func noErrors(t *testing.T, r *router) {
	t.Helper()
	if _, _, errs := r.snapshot(); len(errs) > 0 {
		t.Errorf("media errors: %v", errs)
	}
}

// A routed call answered end to end: the caller gets the agent's SDP in
// the 200 OK, ACKs, talks and hangs up; the agent gets the BYE.
func TestSippCallAnswered(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistApp, timeout: 10 * time.Second}
	h := startServer(t, Config{}, r.script)
	agent := agentPhone(t, h, "a1", "agent_answer.xml")
	call := caller(t, h, "caller.xml", 300*time.Millisecond)
	call.wait(t, 30*time.Second)
	agent.wait(t, 30*time.Second)

	arrived := h.rec.waitFor(t, "call arrived", time.Second, func(f media.Fact) bool { _, ok := f.(media.CallArrived); return ok }).(media.CallArrived)
	if arrived.Hotline != "800" || arrived.Caller != "+4930123456" {
		t.Errorf("CallArrived = %+v", arrived)
	}
	customer, dialled, _ := r.snapshot()
	if len(dialled) != 1 {
		t.Fatalf("dialled %v", dialled)
	}
	h.rec.waitFor(t, "agent ringing", time.Second, ringing(dialled[0]))
	h.rec.waitFor(t, "agent answered", time.Second, answered(dialled[0]))
	h.rec.waitFor(t, "customer hung up", 5*time.Second, ended(customer, media.CauseNormal))
	h.rec.waitFor(t, "agent leg ended", 5*time.Second, ended(dialled[0], media.CauseNormal))
	noErrors(t, r)
}

// Failover to the next agent: RONA (the first agent never answers and is
// CANCELled at the ring timeout) and busy (the first agent answers 486).
// Either way the second agent answers.
func TestSippFailoverToNextAgent(t *testing.T) {
	for _, c := range []struct {
		name, first string
		timeout     time.Duration
		cause       media.Cause
	}{
		{"rona", "agent_noanswer.xml", time.Second, media.CauseNoAnswer},
		{"busy", "agent_busy.xml", 10 * time.Second, media.CauseBusy},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &router{agents: []string{"a1", "a2"}, dist: presence.DistApp, timeout: c.timeout}
			h := startServer(t, Config{}, r.script)
			a1 := agentPhone(t, h, "a1", c.first)
			a2 := agentPhone(t, h, "a2", "agent_answer.xml")
			call := caller(t, h, "caller.xml", 300*time.Millisecond)
			call.wait(t, 30*time.Second)
			a1.wait(t, 30*time.Second)
			a2.wait(t, 30*time.Second)

			_, dialled, _ := r.snapshot()
			if len(dialled) != 2 {
				t.Fatalf("dialled %v, want two legs", dialled)
			}
			h.rec.waitFor(t, "a1 "+string(c.cause), time.Second, ended(dialled[0], c.cause))
			h.rec.waitFor(t, "a2 answered", time.Second, answered(dialled[1]))
			noErrors(t, r)
		})
	}
}

// app_sip forks to both devices of the agent — the app (SIP user "a1")
// and the IP phone ("a1-desk"): one answers, the other is CANCELled.
func TestSippAppSIPForking(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistAppSIP, timeout: 10 * time.Second}
	h := startServer(t, Config{}, r.script)
	phone := agentPhone(t, h, "a1-desk", "agent_noanswer.xml")
	app := agentPhone(t, h, "a1", "agent_answer.xml")
	if got := h.srv.Contacts("a1"); len(got) != 1 {
		t.Fatalf("Contacts(a1) = %v, want one", got)
	}
	if got := h.srv.Contacts("a1-desk"); len(got) != 1 {
		t.Fatalf("Contacts(a1-desk) = %v, want one", got)
	}
	call := caller(t, h, "caller.xml", 300*time.Millisecond)
	call.wait(t, 30*time.Second)
	phone.wait(t, 30*time.Second)
	app.wait(t, 30*time.Second)

	_, dialled, _ := r.snapshot()
	if len(dialled) != 1 {
		t.Fatalf("dialled %v, want one leg for both devices", dialled)
	}
	h.rec.waitFor(t, "answered", time.Second, answered(dialled[0]))
	noErrors(t, r)
}

// The caller hangs up while the agent rings: the customer leg ends
// cancelled and routing's hang-up CANCELs the agent.
func TestSippCallerHangsUpWhileRinging(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistApp, timeout: 10 * time.Second}
	h := startServer(t, Config{}, r.script)
	agent := agentPhone(t, h, "a1", "agent_noanswer.xml")
	call := caller(t, h, "caller_cancel.xml", 500*time.Millisecond)
	call.wait(t, 30*time.Second)
	agent.wait(t, 30*time.Second)

	customer, dialled, _ := r.snapshot()
	h.rec.waitFor(t, "customer cancelled", time.Second, ended(customer, media.CauseCancelled))
	if len(dialled) != 1 {
		t.Fatalf("dialled %v", dialled)
	}
	h.rec.waitFor(t, "agent leg ended", time.Second, func(f media.Fact) bool {
		e, ok := f.(media.LegEnded)
		return ok && e.Leg == dialled[0]
	})
	noErrors(t, r)
}

// The agent hangs up: routing hangs up the caller, who gets a BYE.
func TestSippAgentHangsUp(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistApp, timeout: 10 * time.Second}
	h := startServer(t, Config{}, r.script)
	agent := agentPhone(t, h, "a1", "agent_hangup.xml")
	call := caller(t, h, "caller_until_bye.xml", 0)
	call.wait(t, 30*time.Second)
	agent.wait(t, 30*time.Second)

	customer, dialled, _ := r.snapshot()
	if len(dialled) != 1 {
		t.Fatalf("dialled %v", dialled)
	}
	h.rec.waitFor(t, "agent hung up", time.Second, ended(dialled[0], media.CauseNormal))
	h.rec.waitFor(t, "customer ended", time.Second, ended(customer, media.CauseNormal))
	noErrors(t, r)
}

// A device whose 200 OK crosses our CANCEL (the other device won) is
// ACKed and hung up with BYE; routing still sees one answered leg.
func TestSippLateAnswerAfterCancelIsHungUp(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistAppSIP, timeout: 10 * time.Second}
	h := startServer(t, Config{}, r.script)
	late := agentPhone(t, h, "a1-desk", "agent_late_answer.xml")
	winner := agentPhone(t, h, "a1", "agent_answer.xml")
	call := caller(t, h, "caller.xml", 500*time.Millisecond)
	call.wait(t, 30*time.Second)
	winner.wait(t, 30*time.Second)
	late.wait(t, 30*time.Second)
	_, dialled, _ := r.snapshot()
	if len(dialled) != 1 {
		t.Fatalf("dialled %v", dialled)
	}
	n := 0
	for _, f := range h.rec.all() {
		if a, ok := f.(media.LegAnswered); ok && a.Leg == dialled[0] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d LegAnswered for one dial", n)
	}
	noErrors(t, r)
}
