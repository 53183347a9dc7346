package sip

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/rtpphone"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/rtpanchor"
)

// TestAnchoredTakeOverAndTransferThroughRouting drives take over and
// transfer the way the API does — routing.Engine.TakeOver and Transfer on
// the demo floor — through the SIP path and its anchor to real RTP at the
// customer's Go phone: the customer hears the agent, then the queue's
// music while the supervisor's phone rings (it answers at once), then the
// supervisor; then music while a2 rings (0.6 s) and a2. What is measured at
// the customer's phone is the longest stretch with none of those in it
// (docs/performance.md, "Take over and transfer"): on the RTP clock it
// must stay under 200 ms (frames the anchor sent without audio, or never
// sent), which is what "no silence" means; the arrival-time figure is
// logged. The customer gets no re-INVITE at any point.
func TestAnchoredTakeOverAndTransferThroughRouting(t *testing.T) {
	fl := newSIPFloor(t, true).(*sipFloor)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	admin, sup := floorActor(t, fl, "admin"), floorActor(t, fl, "sup-sales")
	id, hotline, ring, wrapup, members := "moves", "+842899", 10, 0, []string{"a1"}
	if _, err := fl.eng.CreateQueue(ctx, admin, routing.QueueInput{ID: &id, RingTimeoutSeconds: &ring, WrapupSeconds: &wrapup,
		Members: &members, Hotlines: &[]string{hotline}}); err != nil {
		t.Fatal(err)
	}
	h := fl.h()
	phones := map[string]*goPhone{
		"a1":        newGoPhone(t, "a1", toneAgent, rtpanchor.PCMA),
		"sup-sales": newGoPhone(t, "sup-sales", toneSup, rtpanchor.PCMU),
		"a2":        newGoPhone(t, "a2", toneAgent2, rtpanchor.PCMU),
	}
	// a2 rings for a while: the customer hears the queue's music meanwhile.
	phones["a2"].answerDelay = 600 * time.Millisecond
	app := presence.DistApp
	for user, p := range phones {
		if _, err := fl.svc.UpdateAgent(ctx, presence.System, user, presence.AgentInput{Distribution: &app}); err != nil {
			t.Fatal(err)
		}
		p.register(h)
	}
	available := func(ids ...string) {
		t.Helper()
		for _, id := range ids {
			st := presence.StatusAvailable
			if _, err := fl.svc.SetStatus(ctx, presence.System, id, &st, nil); err != nil {
				t.Fatalf("%s available: %v", id, err)
			}
		}
		fl.eng.Kick()
	}
	available("a1")
	caller := newGoPhone(t, "+4930777", toneCaller, rtpanchor.PCMU)
	caller.dial(h, hotline)
	callID := waitCallWith(t, fl, admin, "a1")
	rtpphone.AssertHears(t, "customer talking with a1", caller.rtp.Listen(20), toneAgent)

	move := func(what string, from, to float64, act func() error, newParty string, musicFrames int) {
		t.Helper()
		// Frames the customer heard before the move stay recorded: the
		// silence is measured from the last of them that was audible.
		caller.rtp.WaitFor("audio before "+what, func(hd *rtpphone.Heard) bool { return len(hd.Frames) >= 10 })
		before := caller.rtp.Frames()
		if err := act(); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		waitCallWith(t, fl, admin, newParty)
		caller.rtp.WaitFor(what+": the customer hears "+newParty+" for 0.5 s", func(hd *rtpphone.Heard) bool {
			n := 0
			for _, f := range hd.Frames[before:] {
				if rtpphone.ToneLevel(f.PCM, to) > rtpphone.HeardLevel {
					n++
				}
			}
			return n >= 25
		})
		s := caller.rtp.LongestSilence(before-5, from, toneMusic, to)
		t.Logf("%s: longest silence at the customer %v on the RTP clock, %v by arrival (%d frames, %d audible)", what, s.OnClock, s.Arrival, caller.rtp.Frames()-before+5, s.Audible)
		if s.OnClock >= 200*time.Millisecond {
			t.Errorf("%s: the customer heard nothing for %v (RTP clock)", what, s.OnClock)
		}
		music := 0
		for _, f := range caller.rtp.Heard().Frames[before:] {
			if rtpphone.ToneLevel(f.PCM, toneMusic) > rtpphone.HeardLevel {
				music++
			}
		}
		if music < musicFrames {
			t.Errorf("%s: the customer heard %d frames of music while %s rang, want at least %d", what, music, newParty, musicFrames)
		}
		after := caller.rtp.Listen(20)
		rtpphone.AssertHears(t, "customer after "+what, after, to)
		rtpphone.AssertDoesNotHear(t, "customer after "+what, after, from)
	}
	available("sup-sales")
	move("take over", toneAgent, toneSup, func() error { _, err := fl.eng.TakeOver(ctx, sup, callID); return err }, "sup-sales", 0)
	rtpphone.AssertHears(t, "supervisor after take over", phones["sup-sales"].rtp.Listen(20), toneCaller)
	if phones["a1"].byeCount() == 0 {
		waitBye(t, phones["a1"], "a1 (taken over)")
	}
	available("a2")
	move("transfer", toneSup, toneAgent2, func() error { _, err := fl.eng.Transfer(ctx, sup, callID, "a2"); return err }, "a2", 10)
	rtpphone.AssertHears(t, "a2 after transfer", phones["a2"].rtp.Listen(20), toneCaller)
	waitBye(t, phones["sup-sales"], "the supervisor (transferred away)")
	if n := caller.reinvites.Load(); n != 0 {
		t.Errorf("the customer got %d re-INVITEs", n)
	}
	if _, err := fl.eng.Hangup(ctx, admin, callID); err != nil {
		t.Fatal(err)
	}
	waitBye(t, caller, "the customer")
}

func floorActor(t *testing.T, fl *sipFloor, id string) presence.Actor {
	t.Helper()
	a, err := fl.svc.Agent(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	act, err := fl.svc.ActorFor(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return act
}

// waitCallWith waits until routing has one call, answered by agent, and
// returns its id.
func waitCallWith(t *testing.T, fl *sipFloor, admin presence.Actor, agent string) string {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = fl.eng.Flush(ctx)
		calls, err := fl.eng.Calls(ctx, admin, routing.CallFilter{})
		cancel()
		var got string
		if err == nil {
			got = fmt.Sprint(calls)
			if len(calls) == 1 && calls[0].State == routing.StateAnswered && calls[0].Agent != nil && *calls[0].Agent == agent {
				return calls[0].ID
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no call answered by %s: %v %s", agent, err, got)
		}
		time.Sleep(10 * time.Millisecond) // polling routing's state, not asserting a duration
	}
}

func waitBye(t *testing.T, p *goPhone, who string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for p.byeCount() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // polling a SIP exchange, not asserting a duration
	}
	if p.byeCount() == 0 {
		t.Errorf("%s got no BYE", who)
	}
}
