package sip

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

func TestMixerFeaturesNotSupported(t *testing.T) {
	s := newIdleServer(t, discard{})
	ctx := context.Background()
	_, err := s.Monitor(ctx, media.MonitorRequest{Mode: media.MonitorBarge})
	errs := []error{
		s.Answer(ctx, "x"),
		s.Hold(ctx, "x", media.HoldMusic),
		err,
		s.SetMonitorMode(ctx, "x", media.MonitorWhisper),
		s.Mute(ctx, "x", true),
		s.Connect(ctx, "dial-a", "dial-b"),
	}
	for i, err := range errs[:5] {
		if !errors.Is(err, media.ErrNotSupported) {
			t.Errorf("call %d: %v, want ErrNotSupported", i, err)
		}
	}
	if err := errs[3]; err == nil || !contains(err.Error(), "media server") {
		t.Errorf("monitor error does not say why: %v", err)
	}
	if !errors.Is(errs[5], media.ErrLegGone) {
		t.Errorf("connect unknown legs: %v", errs[5])
	}
	if err := s.Hangup(ctx, "unknown", media.CauseNormal); err != nil {
		t.Errorf("hangup of a gone leg: %v", err)
	}
	if err := s.Hold(ctx, "unknown", media.HoldRingback); !errors.Is(err, media.ErrLegGone) {
		t.Errorf("hold of a gone leg: %v", err)
	}
}

func contains(s, sub string) bool {
	return len(s) >= len(sub) && (s == sub || len(sub) == 0 || indexOf(s, sub) >= 0)
}

func indexOf(s, sub string) int {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return i
		}
	}
	return -1
}

func TestDialUnreachable(t *testing.T) {
	h := startServer(t, Config{}, nil)
	ctx := context.Background()
	_, err := h.srv.Dial(ctx, media.DialRequest{Target: media.Target{AgentID: "a9", Distribution: presence.DistApp}})
	if !errors.Is(err, media.ErrUnreachable) {
		t.Fatalf("no contacts: %v", err)
	}
	_, err = h.srv.Dial(ctx, media.DialRequest{Target: media.Target{AgentID: "a9", Distribution: presence.DistPhone, Phone: "+4915100000"}})
	if !errors.Is(err, media.ErrUnreachable) {
		t.Fatalf("phone without outbound trunk: %v", err)
	}
}

// An INVITE from outside the allowed sources must authenticate as the
// trunk; routing refusing it (busy) answers 486.
func TestTrunkDigestAuth(t *testing.T) {
	busy := func(h *harness, f media.Fact) {
		if a, ok := f.(media.CallArrived); ok {
			_ = h.srv.Hangup(context.Background(), a.Leg, media.CauseBusy)
		}
	}
	h := startServer(t, Config{TrunkSources: []string{"10.0.0.0/8"}, TrunkUser: "trunk", TrunkPassword: "s3cret"}, busy)
	c := newSIPClient(t, h)
	invite := func() *sip.Request {
		req := sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "800", Host: "127.0.0.1", Port: h.port})
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "c", Host: "127.0.0.1", Port: 7009}})
		return req
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := invite()
	res, err := c.cli.Do(ctx, req)
	if err != nil || res.StatusCode != 401 {
		t.Fatalf("unauthenticated INVITE: %v %v", res, err)
	}
	res, err = c.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: "trunk", Password: "s3cret"})
	if err != nil || res.StatusCode != 486 {
		t.Fatalf("authenticated INVITE: %v %v", res, err)
	}
	h.rec.waitFor(t, "call arrived", time.Second, func(f media.Fact) bool {
		a, ok := f.(media.CallArrived)
		return ok && a.Hotline == "800"
	})

	// Without trunk credentials configured, a foreign source is refused.
	h2 := startServer(t, Config{TrunkSources: []string{"10.1.2.3"}}, nil)
	c2 := newSIPClient(t, h2)
	req = sip.NewRequest(sip.INVITE, sip.Uri{Scheme: "sip", User: "800", Host: "127.0.0.1", Port: h2.port})
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: "c", Host: "127.0.0.1", Port: 7009}})
	if res, err := c2.cli.Do(ctx, req); err != nil || res.StatusCode != 403 {
		t.Fatalf("foreign INVITE: %v %v", res, err)
	}
}

// transferRouter connects the caller to a1, then transfers to a2:
// Dial(a2), Connect(customer, a2) (a re-INVITE), Hangup(a1).
type transferRouter struct {
	mu                      sync.Mutex
	customer, first, second media.LegID
	errs                    []error
}

func (r *transferRouter) script(h *harness, f media.Fact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ctx := context.Background()
	dial := func(agent string) media.LegID {
		leg, err := h.srv.Dial(ctx, media.DialRequest{CallID: "call-t", CallerID: "+4930123456", Timeout: 5 * time.Second,
			Target: media.Target{AgentID: agent, Distribution: presence.DistApp}})
		if err != nil {
			r.errs = append(r.errs, err)
		}
		return leg
	}
	switch f := f.(type) {
	case media.CallArrived:
		r.customer = f.Leg
		r.first = dial("a1")
	case media.LegAnswered:
		if err := h.srv.Connect(ctx, r.customer, f.Leg); err != nil {
			r.errs = append(r.errs, err)
		}
		if f.Leg == r.first {
			r.second = dial("a2")
		} else if err := h.srv.Hangup(ctx, r.first, media.CauseNormal); err != nil {
			r.errs = append(r.errs, err)
		}
	case media.LegEnded:
		if f.Leg == r.customer && r.second != "" {
			_ = h.srv.Hangup(ctx, r.second, media.CauseNormal)
		}
	}
}

func TestSippTransferReinvitesCaller(t *testing.T) {
	r := &transferRouter{}
	h := startServer(t, Config{}, r.script)
	a1 := agentPhone(t, h, "a1", "agent_answer.xml")
	a2 := agentPhone(t, h, "a2", "agent_answer.xml")
	call := startSipp(t, "caller transfer", testpeer.FreeUDPPort(t), h.addr, "-sf", scenario("caller_transfer.xml"), "-m", "1", "-s", "800")
	call.wait(t, 30*time.Second)
	a1.wait(t, 30*time.Second)
	a2.wait(t, 30*time.Second)
	r.mu.Lock()
	first, customer, errs := r.first, r.customer, r.errs
	r.mu.Unlock()
	h.rec.waitFor(t, "a1 hung up by routing", time.Second, ended(first, media.CauseNormal))
	h.rec.waitFor(t, "customer hung up", time.Second, ended(customer, media.CauseNormal))
	if len(errs) > 0 {
		t.Errorf("media errors: %v", errs)
	}
}

// The phone distribution mode rings the agent's number through the
// outbound trunk (here a sipp UAS standing in for the carrier).
func TestSippPhoneModeViaOutboundTrunk(t *testing.T) {
	trunkPort := testpeer.FreeUDPPort(t)
	r := &router{agents: []string{"a1"}, dist: presence.DistPhone, phone: "+4915100000", timeout: 10 * time.Second}
	h := startServer(t, Config{OutboundTrunk: "sip:{number}@127.0.0.1:" + strconv.Itoa(trunkPort)}, r.script)
	carrier := startSipp(t, "carrier", trunkPort, "-sf", scenario("agent_answer.xml"), "-m", "1", "-key", "agent", "pstn")
	call := caller(t, h, "caller.xml", 200*time.Millisecond)
	call.wait(t, 30*time.Second)
	carrier.wait(t, 30*time.Second)
	_, dialled, _ := r.snapshot()
	if len(dialled) != 1 {
		t.Fatalf("dialled %v", dialled)
	}
	h.rec.waitFor(t, "answered", time.Second, answered(dialled[0]))
	noErrors(t, r)
}

// Shutdown during a connected call hangs both sides up with BYE before
// the transports close.
func TestSippShutdownEndsCalls(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistApp, timeout: 10 * time.Second}
	h := startServer(t, Config{}, r.script)
	agent := agentPhone(t, h, "a1", "agent_answer.xml")
	call := caller(t, h, "caller_until_bye.xml", 0)
	_, _, _ = r.snapshot()
	h.rec.waitFor(t, "answered", 10*time.Second, func(f media.Fact) bool { _, ok := f.(media.LegAnswered); return ok })
	time.Sleep(200 * time.Millisecond) // let the caller's ACK arrive
	h.stop(t)
	call.wait(t, 30*time.Second)
	agent.wait(t, 30*time.Second)
}
