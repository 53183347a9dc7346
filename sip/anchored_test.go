package sip

import (
	"context"
	"math"
	"math/rand/v2"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/rtpphone"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/rtpanchor"
)

// Tones: each party of the media tests sends its own (multiples of 50 Hz
// so Goertzel bins do not leak), and the test music is one tone.
const (
	toneCaller = 400
	toneAgent  = 700
	toneSup    = 1000
	toneAgent2 = 1300
	toneMusic  = 650
)

// startAnchored starts the SIP path with a media anchor on loopback.
func startAnchored(t *testing.T, cfg Config, acfg rtpanchor.Config) (*harness, *rtpanchor.Anchor) {
	t.Helper()
	music, err := rtpanchor.ToneClip(rtpanchor.Cadence{F1: toneMusic, On: 1000})
	if err != nil {
		t.Fatal(err)
	}
	acfg.Addr = netip.MustParseAddr("127.0.0.1")
	acfg.PortMin = 40000 + 2*rand.IntN(5000)
	acfg.PortMax = acfg.PortMin + 199
	if acfg.Music == nil {
		acfg.Music = music
	}
	a, err := rtpanchor.New(acfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() }) // after the server stopped (cleanups run last first)
	h := startServer(t, cfg, nil, WithMediaAnchor(a))
	return h, a
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func arrivedLeg(t *testing.T, h *harness) media.LegID {
	t.Helper()
	f := h.rec.waitFor(t, "CallArrived", 10*time.Second, func(f media.Fact) bool { _, ok := f.(media.CallArrived); return ok })
	return f.(media.CallArrived).Leg
}

func waitAnswered(t *testing.T, h *harness, leg media.LegID) {
	t.Helper()
	h.rec.waitFor(t, "LegAnswered "+string(leg), 10*time.Second, func(f media.Fact) bool {
		a, ok := f.(media.LegAnswered)
		return ok && a.Leg == leg
	})
}

func dialAgent(t *testing.T, h *harness, agent string, customer media.LegID, callID string) media.LegID {
	t.Helper()
	leg, err := h.srv.Dial(ctxT(t), media.DialRequest{CallID: callID, Customer: customer, Timeout: 10 * time.Second, CallerID: "+4930111",
		Target: media.Target{AgentID: agent, Distribution: presence.DistApp}})
	if err != nil {
		t.Fatalf("Dial %s: %v", agent, err)
	}
	return leg
}

// anchoredCall is a caller (PCMU, 400 Hz) connected to agent a1 (PCMA,
// 700 Hz) through the anchor, checked on the way: answered on entry with
// music while waiting (a queue's music mode), DTMF reported, audio both
// ways after Connect.
func anchoredCall(t *testing.T, h *harness) (caller, agent *goPhone, custLeg, agentLeg media.LegID) {
	t.Helper()
	agent = newGoPhone(t, "a1", toneAgent, rtpanchor.PCMA)
	agent.register(h)
	caller = newGoPhone(t, "+4930111", toneCaller, rtpanchor.PCMU)
	caller.dial(h, "100")
	custLeg = arrivedLeg(t, h)
	ctx := ctxT(t)
	if err := h.srv.Answer(ctx, custLeg); err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if err := h.srv.Hold(ctx, custLeg, media.HoldMusic); err != nil {
		t.Fatalf("Hold music: %v", err)
	}
	caller.waitStatus(200)
	rtpphone.AssertHears(t, "waiting caller (answered, music)", caller.rtp.Listen(20), toneMusic)

	caller.rtp.SendDTMF(7)
	h.rec.waitFor(t, "DTMF 7", 10*time.Second, func(f media.Fact) bool {
		d, ok := f.(media.DTMF)
		return ok && d.Leg == custLeg && d.Digit == "7"
	})

	agentLeg = dialAgent(t, h, "a1", custLeg, "call-1")
	waitAnswered(t, h, agentLeg)
	if err := h.srv.Connect(ctx, custLeg, agentLeg); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	heardByCaller := caller.rtp.Listen(25)
	rtpphone.AssertHears(t, "caller (PCMU) after connect", heardByCaller, toneAgent)
	rtpphone.AssertDoesNotHear(t, "caller after connect", heardByCaller, toneMusic)
	rtpphone.AssertHears(t, "agent (PCMA) after connect", agent.rtp.Listen(25), toneCaller)
	return caller, agent, custLeg, agentLeg
}

func TestAnchoredInboundCall(t *testing.T) {
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{})
	if missing := h.srv.Capabilities().Missing(); len(missing) != 0 {
		t.Errorf("anchored SIP path declares %v unsupported", missing)
	}
	caller, agent, custLeg, _ := anchoredCall(t, h)
	if err := h.srv.Hangup(ctxT(t), custLeg, media.CauseNormal); err != nil {
		t.Fatal(err)
	}
	h.rec.waitFor(t, "customer leg ended", 10*time.Second, func(f media.Fact) bool {
		e, ok := f.(media.LegEnded)
		return ok && e.Leg == custLeg
	})
	_ = agent
	deadline := time.Now().Add(10 * time.Second)
	for caller.byeCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if caller.byeCount() == 0 {
		t.Error("caller got no BYE")
	}
}

func TestAnchoredMonitorModes(t *testing.T) {
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{})
	caller, agent, custLeg, agentLeg := anchoredCall(t, h)
	sup := newGoPhone(t, "s1", toneSup, rtpanchor.PCMU)
	sup.register(h)
	ctx := ctxT(t)
	supLeg, err := h.srv.Monitor(ctx, media.MonitorRequest{CallID: "call-1", Customer: custLeg, Agent: agentLeg, Mode: media.MonitorListen,
		Timeout: 10 * time.Second, Supervisor: media.Target{AgentID: "s1", Distribution: presence.DistApp}})
	if err != nil {
		t.Fatalf("Monitor: %v", err)
	}
	waitAnswered(t, h, supLeg)

	s := sup.rtp.Listen(25)
	rtpphone.AssertHears(t, "listening supervisor", s, toneCaller)
	rtpphone.AssertHears(t, "listening supervisor", s, toneAgent)
	rtpphone.AssertDoesNotHear(t, "caller while listened to", caller.rtp.Listen(20), toneSup)
	rtpphone.AssertDoesNotHear(t, "agent while listened to", agent.rtp.Listen(20), toneSup)

	if err := h.srv.SetMonitorMode(ctx, supLeg, media.MonitorWhisper); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "agent in whisper", agent.rtp.Listen(20), toneSup)
	rtpphone.AssertDoesNotHear(t, "caller in whisper", caller.rtp.Listen(20), toneSup)

	if err := h.srv.SetMonitorMode(ctx, supLeg, media.MonitorBarge); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "caller in barge", caller.rtp.Listen(20), toneSup)
	rtpphone.AssertHears(t, "agent in barge", agent.rtp.Listen(20), toneSup)

	if err := h.srv.Mute(ctx, supLeg, true); err != nil { // pause
		t.Fatal(err)
	}
	s = sup.rtp.Listen(20)
	rtpphone.AssertDoesNotHear(t, "paused supervisor", s, toneCaller)
	rtpphone.AssertDoesNotHear(t, "paused supervisor", s, toneAgent)
	rtpphone.AssertDoesNotHear(t, "caller while paused", caller.rtp.Listen(20), toneSup)

	if err := h.srv.Mute(ctx, supLeg, false); err != nil { // resume, still barging
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "caller after resume", caller.rtp.Listen(20), toneSup)
}

// Take over and transfer on the anchored path are the same media change:
// routing rings the new party into the call's session, holds the
// customer on music, hangs up the old agent and connects the new leg; no
// re-INVITE reaches the customer (goPhone fails the test on one).
func TestAnchoredTransfer(t *testing.T) {
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{})
	caller, agent, custLeg, agentLeg := anchoredCall(t, h)
	agent2 := newGoPhone(t, "a2", toneAgent2, rtpanchor.PCMU)
	agent2.register(h)
	ctx := ctxT(t)
	leg2 := dialAgent(t, h, "a2", custLeg, "call-1")
	if err := h.srv.Hold(ctx, custLeg, media.HoldMusic); err != nil {
		t.Fatal(err)
	}
	if err := h.srv.Hangup(ctx, agentLeg, media.CauseNormal); err != nil {
		t.Fatal(err)
	}
	waitAnswered(t, h, leg2)
	if err := h.srv.Connect(ctx, custLeg, leg2); err != nil {
		t.Fatalf("Connect new agent: %v", err)
	}
	after := caller.rtp.Listen(25)
	rtpphone.AssertHears(t, "caller after transfer", after, toneAgent2)
	rtpphone.AssertDoesNotHear(t, "caller after transfer", after, toneAgent)
	rtpphone.AssertHears(t, "new agent", agent2.rtp.Listen(25), toneCaller)
	if agent.byeCount() == 0 {
		deadline := time.Now().Add(10 * time.Second)
		for agent.byeCount() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if agent.byeCount() == 0 {
			t.Error("the old agent got no BYE")
		}
	}
}

// A phone's re-INVITE (hold, then resume with another codec) is answered
// by the anchor; the other party sees nothing of it.
func TestAnchoredReinviteHoldAndCodecChange(t *testing.T) {
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{})
	caller, agent, _, _ := anchoredCall(t, h)
	hold := strings.Replace(string(caller.sdp()), "a=sendrecv", "a=sendonly", 1)
	res := caller.reinvite([]byte(hold))
	if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "a=recvonly") {
		t.Fatalf("hold re-INVITE: %d\n%s", res.StatusCode, res.Body())
	}
	// Resume in PCMA: from now on the caller's phone sends and expects
	// PCMA (it fails the test on a PCMU packet after the answer).
	resume, err := rtpanchor.WriteSDP(rtpanchor.SDPParams{Addr: caller.rtp.Addr(), SessionID: 1, Version: 3, Codecs: []rtpanchor.Codec{rtpanchor.PCMA}, EventPT: 101})
	if err != nil {
		t.Fatal(err)
	}
	caller.rtp.SetCodec(rtpphone.PCMA)
	res = caller.reinvite(resume)
	if res.StatusCode != 200 || !strings.Contains(string(res.Body()), "PCMA/8000") {
		t.Fatalf("resume re-INVITE: %d\n%s", res.StatusCode, res.Body())
	}
	rtpphone.AssertHears(t, "agent after the caller's hold and resume", agent.rtp.Listen(20), toneCaller)
	rtpphone.AssertHears(t, "caller (now PCMA) after resume", caller.rtp.Listen(20), toneAgent)
}

func TestAnchoredGhostLegEnds(t *testing.T) {
	// 1 s, not less: on a loaded machine a live phone's first packets can
	// be that late, and the test must only catch the phone that stopped.
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{Inactivity: time.Second})
	caller, _, custLeg, _ := anchoredCall(t, h)
	caller.rtp.SetMuted(true) // the caller's phone vanished without a BYE
	f := h.rec.waitFor(t, "ghost leg ended", 10*time.Second, func(f media.Fact) bool {
		e, ok := f.(media.LegEnded)
		return ok && e.Leg == custLeg
	})
	if f.(media.LegEnded).Cause != media.CauseFailed {
		t.Errorf("ghost leg ended with %s, want failed", f.(media.LegEnded).Cause)
	}
}

func TestAnchoredCallCapRefuses503(t *testing.T) {
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{MaxCalls: 1})
	first := newGoPhone(t, "+4930001", toneCaller, rtpanchor.PCMU)
	first.dial(h, "100")
	arrivedLeg(t, h)
	second := newGoPhone(t, "+4930002", toneCaller, rtpanchor.PCMU)
	second.dial(h, "100")
	second.waitStatus(503)
}

// Click-to-call: the agent's device rings first and hears ringback while
// the customer's phone (through the outbound trunk) rings; on answer the
// two dialled legs are bridged in the anchor.
func TestAnchoredClickToCall(t *testing.T) {
	cust := newGoPhone(t, "cust", toneCaller, rtpanchor.PCMA)
	h, _ := startAnchored(t, Config{OutboundTrunk: "sip:{number}@127.0.0.1:" + strconv.Itoa(cust.port)}, rtpanchor.Config{})
	agent := newGoPhone(t, "a1", toneAgent, rtpanchor.PCMU)
	agent.register(h)
	ctx := ctxT(t)
	agentLeg := dialAgent(t, h, "a1", "", "out-1")
	waitAnswered(t, h, agentLeg)
	cust.noAnswer.Store(true)
	custLeg, err := h.srv.Dial(ctx, media.DialRequest{CallID: "out-1", Number: "+4930999", Timeout: 10 * time.Second, CallerID: "100"})
	if err != nil {
		t.Fatalf("Dial customer: %v", err)
	}
	h.rec.waitFor(t, "customer ringing", 10*time.Second, func(f media.Fact) bool {
		r, ok := f.(media.LegRinging)
		return ok && r.Leg == custLeg
	})
	rb := agent.rtp.Listen(20)
	rtpphone.AssertHears(t, "agent while the customer rings", rb, 440)
	rtpphone.AssertHears(t, "agent while the customer rings", rb, 480)
	if err := h.srv.Connect(ctx, agentLeg, custLeg); err == nil {
		t.Error("connected a customer leg that has not answered")
	}
	_ = h.srv.Hangup(ctx, custLeg, media.CauseNormal)

	cust.noAnswer.Store(false)
	custLeg, err = h.srv.Dial(ctx, media.DialRequest{CallID: "out-1", Number: "+4930999", Timeout: 10 * time.Second, CallerID: "100"})
	if err != nil {
		t.Fatalf("Dial customer again: %v", err)
	}
	waitAnswered(t, h, custLeg)
	if err := h.srv.Connect(ctx, agentLeg, custLeg); err != nil {
		t.Fatalf("bridge: %v", err)
	}
	a := agent.rtp.Listen(25)
	rtpphone.AssertHears(t, "agent after the customer answered", a, toneCaller)
	rtpphone.AssertDoesNotHear(t, "agent after the customer answered", a, 440)
	rtpphone.AssertHears(t, "customer", cust.rtp.Listen(25), toneAgent)
}

// sipp's own recordings through the anchored path: a sipp trunk caller
// offering PCMA plays g711a.pcap and an RFC 2833 digit as RTP; the agent
// (a Go phone speaking PCMU) hears the audio transcoded, and the digit
// is reported.
func TestAnchoredSippCallerWithRTP(t *testing.T) {
	const pcapDir = "/usr/share/sip-tester"
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{})
	if _, err := os.Stat(pcapDir + "/g711a.pcap"); err != nil {
		testpeer.Require(t, "sipp-pcaps-missing", "sip-tester")
	}
	agent := newGoPhone(t, "a1", toneAgent, rtpanchor.PCMU)
	agent.register(h)
	call := startSipp(t, "caller with RTP", testpeer.FreeUDPPort(t), h.addr, "-sf", scenario("caller_rtp.xml"), "-m", "1",
		"-s", "800", "-mp", strconv.Itoa(testpeer.FreeUDPPort(t)))
	custLeg := arrivedLeg(t, h)
	ctx := ctxT(t)
	if err := h.srv.Answer(ctx, custLeg); err != nil {
		t.Fatal(err)
	}
	agentLeg := dialAgent(t, h, "a1", custLeg, "call-sipp")
	waitAnswered(t, h, agentLeg)
	if err := h.srv.Connect(ctx, custLeg, agentLeg); err != nil {
		t.Fatal(err)
	}
	heard := agent.rtp.Listen(50)
	// Silence through the anchor is exact zeros; the recording is speech
	// at a modest level.
	var sum, peak float64
	for _, v := range heard {
		sum += float64(v) * float64(v)
		peak = math.Max(peak, math.Abs(float64(v)))
	}
	rms := math.Sqrt(sum / float64(len(heard)))
	t.Logf("agent heard sipp's g711a.pcap at RMS %.0f, peak %.0f", rms, peak)
	if rms < 50 || peak < 500 {
		t.Errorf("agent heard the sipp caller's recording at RMS %.0f, peak %.0f: nearly silence", rms, peak)
	}
	h.rec.waitFor(t, "DTMF 5 from sipp's pcap", 15*time.Second, func(f media.Fact) bool {
		d, ok := f.(media.DTMF)
		return ok && d.Leg == custLeg && d.Digit == "5"
	})
	call.wait(t, 30*time.Second)
}

// A queue in ringback mode leaves the caller unanswered: early media (183)
// with the ringback tone, no RTP needed from the caller (many trunks only
// listen until answered; that is not a ghost call), then 200 OK and the
// agent when connected.
func TestAnchoredRingbackWhileUnanswered(t *testing.T) {
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{Inactivity: time.Second})
	agent := newGoPhone(t, "a1", toneAgent, rtpanchor.PCMA)
	agent.register(h)
	caller := newGoPhone(t, "+4930111", toneCaller, rtpanchor.PCMU)
	caller.rtp.SetMuted(true)
	caller.dial(h, "100")
	custLeg := arrivedLeg(t, h)
	ctx := ctxT(t)
	if err := h.srv.Hold(ctx, custLeg, media.HoldRingback); err != nil {
		t.Fatal(err)
	}
	caller.waitStatus(183)
	rb := caller.rtp.Listen(100) // 2 s: past the 1 s timeout and two checks after it
	rtpphone.AssertHears(t, "unanswered caller", rb, 440)
	rtpphone.AssertHears(t, "unanswered caller", rb, 480)
	for _, f := range h.rec.all() {
		if e, ok := f.(media.LegEnded); ok && e.Leg == custLeg {
			t.Fatalf("a waiting caller without RTP was hung up: %+v", e)
		}
	}
	for _, code := range caller.statuses() {
		if code == 200 {
			t.Fatal("the caller was answered while waiting in ringback mode")
		}
	}
	caller.rtp.SetMuted(false)
	agentLeg := dialAgent(t, h, "a1", custLeg, "call-rb")
	waitAnswered(t, h, agentLeg)
	if err := h.srv.Connect(ctx, custLeg, agentLeg); err != nil {
		t.Fatal(err)
	}
	caller.waitStatus(200)
	rtpphone.AssertHears(t, "caller after connect", caller.rtp.Listen(20), toneAgent)
}
