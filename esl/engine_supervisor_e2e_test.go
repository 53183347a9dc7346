package esl

import (
	"errors"
	"testing"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// Supervisor actions end to end: routing's rules decide, the Client turns
// them into eavesdrop originates, uuid_audio mutes, eavesdrop's DTMF mode
// digits, uuid_bridge and uuid_kill on the fake FreeSWITCH.

func eavesdrop(leg string) string { return "&eavesdrop(" + leg + ")" }

func wantConflict(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, presence.ErrConflict) {
		t.Fatalf("%s: err = %v, want a conflict (409)", what, err)
	}
}

// noErr(t)(call()) fails the test when call returns an error.
func noErr(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// wantMonitor checks the call's monitor (nil: none).
func (f *e2e) wantMonitor(id string, want *routing.MonitorView) {
	f.t.Helper()
	f.eventually("monitor of "+id, func() error {
		v, err := f.eng.Call(f.ctx, f.admin, id)
		if err != nil {
			return err
		}
		switch {
		case want == nil && v.Monitor == nil:
			return nil
		case want == nil || v.Monitor == nil || *v.Monitor != *want:
			return errors.New("monitor differs")
		}
		return nil
	})
}

// TestE2EMonitorListenPauseBargeWhisper: listen, the 409 rules, pause and
// resume (mute of the supervisor's leg), barge refused while paused, barge,
// end; then whisper until the agent hangs up, which ends the call and the
// monitor.
func TestE2EMonitorListenPauseBargeWhisper(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	cust, a1, s1, s2 := custUUID(1), legUUID(1), legUUID(2), legUUID(3)
	sup := f.actor("sup-sales")
	f.fs.setBehavior(dev("sup-sales"), dialAnswer)

	mv, err := f.eng.StartMonitor(f.ctx, sup, id, media.MonitorListen, "")
	noErr(t)(mv, err)
	f.wantCommands(originateFor(2, id, "sup-sales", eavesdrop(a1), "callfloor_mode=listen"))
	want := routing.MonitorView{ID: mv.ID, CallID: id, Supervisor: "sup-sales", Mode: media.MonitorListen, Answered: true}
	f.wantMonitor(id, &want)

	// One monitor per call; nobody barges a monitored call.
	_, err = f.eng.StartMonitor(f.ctx, f.admin, id, media.MonitorListen, "")
	wantConflict(t, "second monitor", err)
	_, err = f.eng.StartMonitor(f.ctx, f.admin, id, media.MonitorBarge, "")
	wantConflict(t, "barge into a monitored call", err)
	_, err = f.eng.StartMonitor(f.ctx, sup, id, media.MonitorWhisper, "")
	wantConflict(t, "the same supervisor again", err)

	noErr(t)(f.eng.PauseMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_audio " + s1 + " start read mute -1")
	want.Paused = true
	f.wantMonitor(id, &want)
	_, err = f.eng.BargeMonitor(f.ctx, sup, mv.ID)
	wantConflict(t, "barge while paused", err)
	noErr(t)(f.eng.ResumeMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_audio " + s1 + " stop")
	noErr(t)(f.eng.BargeMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_recv_dtmf " + s1 + " 3") // eavesdrop's "both directions" digit
	want.Paused, want.Mode = false, media.MonitorBarge
	f.wantMonitor(id, &want)
	noErr(t)(f.eng.EndMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_kill " + s1 + " NORMAL_CLEARING")
	f.wantMonitor(id, nil)
	if f.fs.alive(s1) || f.fs.peerOf(cust) != a1 {
		t.Error("ending the monitor touched the call or left the supervisor's leg up")
	}
	f.wantCall(id, routing.StateAnswered, "a1")

	// Whisper: only the agent hears the supervisor (whisper into a1's
	// uuid's write stream: eavesdrop_whisper_bleg).
	mv, err = f.eng.StartMonitor(f.ctx, sup, id, media.MonitorWhisper, "")
	noErr(t)(mv, err)
	f.wantCommands(originateFor(3, id, "sup-sales", eavesdrop(a1), "callfloor_mode=whisper", "eavesdrop_whisper_bleg=true"))
	f.wantMonitor(id, &routing.MonitorView{ID: mv.ID, CallID: id, Supervisor: "sup-sales", Mode: media.MonitorWhisper, Answered: true})

	// The agent hangs up: the caller parks (park_after_bridge) and the
	// eavesdrop ends; routing ends the call and both remaining legs.
	f.fs.bye(a1)
	f.wantCommands(
		"api uuid_kill "+cust+" NORMAL_CLEARING",
		"api uuid_kill "+s2+" NORMAL_CLEARING", // already gone: no error
	)
	f.wantGone(id)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
	if f.fs.alive(cust) || f.fs.alive(s2) {
		t.Error("legs left up on FreeSWITCH")
	}
}

// TestE2ETakeOverThenTransfer: the supervisor takes the call over (a1
// dropped, caller on hold, supervisor rung and bridged), then transfers it
// to a2; finally the supervisor hangs the call up.
func TestE2ETakeOverThenTransfer(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	cust, a1, s, a2 := custUUID(1), legUUID(1), legUUID(2), legUUID(3)
	sup := f.actor("sup-sales")
	f.fs.setBehavior(dev("sup-sales"), dialAnswer)
	f.fs.setBehavior(dev("a2"), dialAnswer)

	noErr(t)(f.eng.TakeOver(f.ctx, sup, id))
	f.wantCommands(
		"api uuid_broadcast "+cust+moh,
		"api uuid_kill "+a1+" NORMAL_CLEARING",
		originateFor(2, id, "sup-sales", "&park()"),
		"api uuid_bridge "+cust+" "+s, // park_after_bridge is already set
	)
	f.wantCall(id, routing.StateAnswered, "sup-sales")
	f.wantAgent("sup-sales", presence.SysTalking, id)
	f.wantAgent("a1", presence.SysAfterCallWork, "")
	if f.fs.alive(a1) || f.fs.peerOf(cust) != s {
		t.Errorf("FreeSWITCH after take over: a1 alive %v, caller bridged to %q", f.fs.alive(a1), f.fs.peerOf(cust))
	}

	_, err := f.eng.Transfer(f.ctx, sup, id, "a2")
	wantConflict(t, "transfer to an agent who is not available", err)
	f.wantCommands()
	f.available("a2")
	noErr(t)(f.eng.Transfer(f.ctx, sup, id, "a2"))
	f.wantCommands(
		"api uuid_broadcast "+cust+moh,
		"api uuid_kill "+s+" NORMAL_CLEARING",
		originateFor(3, id, "a2", "&park()"),
		"api uuid_bridge "+cust+" "+a2,
	)
	f.wantCall(id, routing.StateAnswered, "a2")
	f.wantAgent("a2", presence.SysTalking, id)
	f.wantAgent("sup-sales", presence.SysAfterCallWork, "")

	noErr(t)(f.eng.Hangup(f.ctx, sup, id))
	f.wantCommands(
		"api uuid_kill "+cust+" NORMAL_CLEARING",
		"api uuid_kill "+a2+" NORMAL_CLEARING",
	)
	f.wantGone(id)
	f.wantAgent("a2", presence.SysAfterCallWork, "")
	if f.fs.alive(cust) || f.fs.alive(a2) {
		t.Error("legs left up on FreeSWITCH")
	}
}

// TestE2EMonitorFollowsTransfer: a listening supervisor transfers the
// call inside the team: the eavesdrop leg is dropped and re-rung on the
// new agent's leg once a2 answers.
func TestE2EMonitorFollowsTransfer(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	cust, a1, s1, a2, s2 := custUUID(1), legUUID(1), legUUID(2), legUUID(3), legUUID(4)
	sup := f.actor("sup-sales")
	f.fs.setBehavior(dev("sup-sales"), dialAnswer)
	f.fs.setBehavior(dev("a2"), dialAnswer)
	mv, err := f.eng.StartMonitor(f.ctx, sup, id, media.MonitorListen, "")
	noErr(t)(mv, err)
	f.wantCommands(originateFor(2, id, "sup-sales", eavesdrop(a1), "callfloor_mode=listen"))

	f.available("a2")
	noErr(t)(f.eng.Transfer(f.ctx, sup, id, "a2"))
	f.wantCommands(
		"api uuid_kill "+s1+" NORMAL_CLEARING",
		"api uuid_broadcast "+cust+moh,
		"api uuid_kill "+a1+" NORMAL_CLEARING",
		originateFor(3, id, "a2", "&park()"),
		"api uuid_bridge "+cust+" "+a2,
		originateFor(4, id, "sup-sales", eavesdrop(a2), "callfloor_mode=listen"),
	)
	f.wantCall(id, routing.StateAnswered, "a2")
	f.wantMonitor(id, &routing.MonitorView{ID: mv.ID, CallID: id, Supervisor: "sup-sales", Mode: media.MonitorListen, Answered: true})
	if !f.fs.alive(s2) || f.fs.alive(s1) {
		t.Error("the supervisor is not eavesdropping on a2's leg only")
	}
}

// TestE2ETakeOverUnanswered: the supervisor does not answer the take
// over: the caller (already parted from a1, on hold) goes back to the
// queue and the next free agent gets the call.
func TestE2ETakeOverUnanswered(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	cust, a1, s, a2 := custUUID(1), legUUID(1), legUUID(2), legUUID(3)
	f.fs.setBehavior(dev("sup-sales"), dialNoAnswer)
	f.fs.setBehavior(dev("a2"), dialAnswer)

	_, err := f.eng.TakeOver(f.ctx, f.actor("sup-sales"), id)
	if err != nil {
		t.Fatal(err)
	}
	f.wantCommands(
		"api uuid_broadcast "+cust+moh,
		"api uuid_kill "+a1+" NORMAL_CLEARING",
		originateFor(2, id, "sup-sales", "&park()"),
		"api uuid_kill "+s+" NO_ANSWER",
	)
	f.wantCall(id, routing.StateCalling, "sup-sales")
	f.wantAgent("sup-sales", presence.SysAvailable, "")
	f.wantAgent("a1", presence.SysAfterCallWork, "")

	f.available("a2")
	f.wantCommands(originateFor(3, id, "a2", "&park()"), "api uuid_bridge "+cust+" "+a2)
	f.wantCall(id, routing.StateAnswered, "a2")
}

// TestE2EPausedMonitorFollowsTransfer: a paused monitor re-joins the
// transferred call paused. Routing mutes the new supervisor leg before it
// answers; FreeSWITCH can attach uuid_audio's media bug only once the leg
// has media, so the client sends the mute when the supervisor answers.
func TestE2EPausedMonitorFollowsTransfer(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	cust, a1, s1, a2, s2 := custUUID(1), legUUID(1), legUUID(2), legUUID(3), legUUID(4)
	sup := f.actor("sup-sales")
	f.fs.setBehavior(dev("sup-sales"), dialAnswer)
	f.fs.setBehavior(dev("a2"), dialAnswer)
	mv, err := f.eng.StartMonitor(f.ctx, sup, id, media.MonitorWhisper, "")
	noErr(t)(mv, err)
	f.wantCommands(originateFor(2, id, "sup-sales", eavesdrop(a1), "callfloor_mode=whisper", "eavesdrop_whisper_bleg=true"))
	noErr(t)(f.eng.PauseMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_audio " + s1 + " start read mute -1")

	f.fs.setBehavior(dev("sup-sales"), dialRing)
	f.available("a2")
	noErr(t)(f.eng.Transfer(f.ctx, sup, id, "a2"))
	f.wantCommands(
		"api uuid_kill "+s1+" NORMAL_CLEARING",
		"api uuid_broadcast "+cust+moh,
		"api uuid_kill "+a1+" NORMAL_CLEARING",
		originateFor(3, id, "a2", "&park()"),
		"api uuid_bridge "+cust+" "+a2,
		originateFor(4, id, "sup-sales", eavesdrop(a2), "callfloor_mode=whisper", "eavesdrop_whisper_bleg=true"),
		// no uuid_audio while the supervisor's phone rings
	)
	f.fs.answerLeg(s2)
	f.wantCommands("api uuid_audio " + s2 + " start read mute -1")
	f.wantMonitor(id, &routing.MonitorView{ID: mv.ID, CallID: id, Supervisor: "sup-sales", Mode: media.MonitorWhisper, Paused: true, Answered: true})

	// Resume works on the answered leg at once.
	noErr(t)(f.eng.ResumeMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_audio " + s2 + " stop")
}

// TestE2EMonitorBargeBeforeAnswerAndDirect: a barge asked for while the
// supervisor's phone still rings sets eavesdrop's whisper variables (read
// when eavesdrop starts); a monitor started as barge carries both flags
// in its originate.
func TestE2EMonitorBargeBeforeAnswerAndDirect(t *testing.T) {
	f := newE2E(t)
	id := f.answeredCall(1, "a1", 1)
	a1, s1, s2 := legUUID(1), legUUID(2), legUUID(3)
	sup := f.actor("sup-sales")
	f.fs.setBehavior(dev("sup-sales"), dialRing)

	mv, err := f.eng.StartMonitor(f.ctx, sup, id, media.MonitorListen, "")
	noErr(t)(mv, err)
	f.wantCommands(originateFor(2, id, "sup-sales", eavesdrop(a1), "callfloor_mode=listen"))
	f.wantMonitor(id, &routing.MonitorView{ID: mv.ID, CallID: id, Supervisor: "sup-sales", Mode: media.MonitorListen})
	noErr(t)(f.eng.BargeMonitor(f.ctx, sup, mv.ID))
	f.wantCommands(
		"api uuid_setvar "+s1+" eavesdrop_whisper_aleg true",
		"api uuid_setvar "+s1+" eavesdrop_whisper_bleg true",
	)
	f.fs.answerLeg(s1)
	f.wantMonitor(id, &routing.MonitorView{ID: mv.ID, CallID: id, Supervisor: "sup-sales", Mode: media.MonitorBarge, Answered: true})
	noErr(t)(f.eng.EndMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_kill " + s1 + " NORMAL_CLEARING")

	f.fs.setBehavior(dev("sup-sales"), dialAnswer)
	mv, err = f.eng.StartMonitor(f.ctx, sup, id, media.MonitorBarge, "")
	noErr(t)(mv, err)
	f.wantCommands(originateFor(3, id, "sup-sales", eavesdrop(a1), "callfloor_mode=barge",
		"eavesdrop_whisper_aleg=true", "eavesdrop_whisper_bleg=true"))
	f.wantMonitor(id, &routing.MonitorView{ID: mv.ID, CallID: id, Supervisor: "sup-sales", Mode: media.MonitorBarge, Answered: true})
	// A barging supervisor pauses: the mute is immediate (answered leg).
	noErr(t)(f.eng.PauseMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_audio " + s2 + " start read mute -1")
	noErr(t)(f.eng.EndMonitor(f.ctx, sup, mv.ID))
	f.wantCommands("api uuid_kill " + s2 + " NORMAL_CLEARING")
	f.wantMonitor(id, nil)
	f.wantCall(id, routing.StateAnswered, "a1")
}
