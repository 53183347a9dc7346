package sip

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/rtpphone"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/rtpanchor"
)

// checkOffer fails t unless body is the anchor's late offer: PCMU and
// PCMA and telephone-events on an anchored port.
func checkOffer(t *testing.T, body []byte) {
	t.Helper()
	d, err := rtpanchor.ParseSDP(body)
	if err != nil {
		t.Errorf("callfloor's offer in the 200 OK: %v\n%s", err, body)
		return
	}
	if !slices.Contains(d.Codecs, rtpanchor.PCMU) || !slices.Contains(d.Codecs, rtpanchor.PCMA) || d.EventPT == 0 {
		t.Errorf("callfloor's offer has codecs %v, telephone-event %d; want PCMU, PCMA and events", d.Codecs, d.EventPT)
	}
}

// A late offer (RFC 3261 section 13.2.1, an INVITE without SDP) on the
// anchored path: callfloor offers in its 200 OK and takes the answer from
// the ACK. A ringback-mode caller gets 180 (no SDP: an unreliable 1xx
// cannot carry an offer to an answer), then the 200 with the offer when an
// agent is connected; audio flows both ways with the codec the caller
// chose (PCMA) against an agent on PCMU, and the caller's DTMF is reported.
func TestAnchoredLateOffer(t *testing.T) {
	h, _ := startAnchored(t, Config{}, rtpanchor.Config{})
	agent := newGoPhone(t, "a1", toneAgent, rtpanchor.PCMU)
	agent.register(h)
	caller := newGoPhone(t, "+4930111", toneCaller, rtpanchor.PCMA)
	caller.lateAnswer = func(offer []byte) []byte {
		checkOffer(t, offer)
		return caller.sdp()
	}
	caller.dial(h, "100")
	custLeg := arrivedLeg(t, h)
	ctx := ctxT(t)
	if err := h.srv.Hold(ctx, custLeg, media.HoldRingback); err != nil {
		t.Fatal(err)
	}
	caller.waitStatus(180)
	agentLeg := dialAgent(t, h, "a1", custLeg, "call-late")
	waitAnswered(t, h, agentLeg)
	if err := h.srv.Connect(ctx, custLeg, agentLeg); err != nil {
		t.Fatal(err)
	}
	caller.waitStatus(200)
	if slices.Contains(caller.statuses(), 183) {
		t.Errorf("late-offer caller got 183 (statuses %v)", caller.statuses())
	}
	rtpphone.AssertHears(t, "late-offer caller (PCMA)", caller.rtp.Listen(25), toneAgent)
	rtpphone.AssertHears(t, "agent of a late-offer caller", agent.rtp.Listen(25), toneCaller)
	caller.rtp.SendDTMF(3)
	h.rec.waitFor(t, "DTMF 3 from the late-offer caller", 10*time.Second, func(f media.Fact) bool {
		d, ok := f.(media.DTMF)
		return ok && d.Leg == custLeg && d.Digit == "3"
	})
	for _, f := range h.rec.all() {
		if e, ok := f.(media.LegEnded); ok {
			t.Errorf("a leg ended: %+v", e)
		}
	}
}

// An ACK without an answer to our offer, or with one that names none of
// the offered codecs, leaves a dialog that cannot carry audio: callfloor
// ends it with a BYE and reports the leg ended (failed).
func TestAnchoredLateOfferBadAnswerEndsTheCall(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer func(p *goPhone) []byte
	}{
		{"no SDP in the ACK", func(*goPhone) []byte { return nil }},
		{"no common codec", func(p *goPhone) []byte {
			return []byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n" +
				"m=audio " + strconv.Itoa(int(p.rtp.Addr().Port())) + " RTP/AVP 18\r\na=rtpmap:18 G729/8000\r\n")
		}},
		{"not SDP", func(*goPhone) []byte { return []byte("hello") }},
	} {
		t.Run(c.name, func(t *testing.T) {
			h, a := startAnchored(t, Config{}, rtpanchor.Config{})
			caller := newGoPhone(t, "+4930111", toneCaller, rtpanchor.PCMU)
			caller.lateAnswer = func(offer []byte) []byte {
				checkOffer(t, offer)
				return c.answer(caller)
			}
			caller.dial(h, "100")
			custLeg := arrivedLeg(t, h)
			if err := h.srv.Answer(ctxT(t), custLeg); err != nil {
				t.Fatal(err)
			}
			h.rec.waitFor(t, "the late-offer leg ended", 10*time.Second, ended(custLeg, media.CauseFailed))
			deadline := time.Now().Add(10 * time.Second)
			for caller.byeCount() == 0 && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond) // polling a SIP exchange, not asserting a duration
			}
			if caller.byeCount() == 0 {
				t.Error("the caller got no BYE")
			}
			if n := a.Calls(); n != 0 {
				t.Errorf("%d anchored calls left after the call ended", n)
			}
		})
	}
}

// sipp as a late-offer trunk (sip/testdata/caller_late_offer.xml): its
// INVITE has no body, it checks that callfloor's 200 OK offers PCMU, PCMA
// and telephone-event, answers in the ACK and hangs up with BYE. sipp
// echoes the RTP it gets (-rtp_echo), so the agent (a Go phone) hears its
// own tone only if the anchor sends to the address of sipp's answer: the
// ACK's SDP was applied.
func TestAnchoredSippLateOffer(t *testing.T) {
	h, a := startAnchored(t, Config{}, rtpanchor.Config{})
	agent := newGoPhone(t, "a1", toneAgent, rtpanchor.PCMA)
	agent.register(h)
	call := startSipp(t, "late-offer caller", testpeer.FreeUDPPort(t), h.addr, "-sf", scenario("caller_late_offer.xml"), "-m", "1",
		"-s", "800", "-rtp_echo", "-mp", strconv.Itoa(testpeer.FreeUDPPort(t)), "-d", "3000")
	custLeg := arrivedLeg(t, h)
	ctx := ctxT(t)
	if err := h.srv.Answer(ctx, custLeg); err != nil {
		t.Fatal(err)
	}
	agentLeg := dialAgent(t, h, "a1", custLeg, "call-sipp-late")
	waitAnswered(t, h, agentLeg)
	if err := h.srv.Connect(ctx, custLeg, agentLeg); err != nil {
		t.Fatal(err)
	}
	rtpphone.AssertHears(t, "agent hearing itself echoed by the late-offer sipp caller", agent.rtp.Listen(25), toneAgent)
	call.wait(t, 30*time.Second)
	h.rec.waitFor(t, "sipp hung up", 10*time.Second, ended(custLeg, media.CauseNormal))
	_ = h.srv.Hangup(ctx, agentLeg, media.CauseNormal)
	h.rec.waitFor(t, "agent leg ended", 10*time.Second, func(f media.Fact) bool {
		e, ok := f.(media.LegEnded)
		return ok && e.Leg == agentLeg
	})
	if n := a.Calls(); n != 0 {
		t.Errorf("%d anchored calls left", n)
	}
}
