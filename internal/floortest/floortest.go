// Package floortest is the floor's behaviour suite (README.md, "Floor
// rules"), written once and run against every media path: the Asterisk
// fake (ari), the FreeSWITCH simulation (esl) and the built-in SIP path
// with real sipp phones (sip). Each path's tests implement Floor over
// their own harness and call Run.
//
// The suite only says what each device does before it is rung and then
// waits, with generous deadlines, for what routing reports: so a path
// with real phones and a real clock runs it as well as one with a fake
// clock. Nothing is timed; on a fake clock, "at once" is checked by not
// moving the clock.
package floortest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// Behaviour is what a device does when it is rung.
type Behaviour int

const (
	// Answer: rings, then answers at once.
	Answer Behaviour = iota
	// AnswerLate: rings, and answers only once the floor's clock has
	// moved (Elapse) — on a real clock, a second or two after ringing.
	AnswerLate
	// RingOut: rings until the ring is cancelled (routing's ring timeout,
	// or another device answered first).
	RingOut
	// NoAnswer: rings, then gives up by itself (480, NO_ANSWER, cause 19).
	NoAnswer
	// Busy: 486, USER_BUSY, cause 17.
	Busy
	// Decline: 603, CALL_REJECTED, cause 21.
	Decline
	// Unregistered: the device has no contact; the dial fails at once.
	Unregistered
)

func (b Behaviour) String() string {
	return [...]string{"answer", "answer late", "ring out", "no answer (480)", "busy (486)", "decline (603)", "unregistered"}[b]
}

// Floor is one media path wired to the real routing engine and presence
// service on the bundled demo floor (config.example.yaml), with phones the
// test plays.
type Floor interface {
	Engine() *routing.Engine
	Presence() *presence.Service
	// Capabilities is what the path declared (media.Capabilities).
	Capabilities() media.Capabilities
	// RingTimeout is the ring timeout the suite gives its queues: short
	// where the clock is real.
	RingTimeout() time.Duration
	// Device says what the device of SIP user `user` does the next time
	// it is rung. Set it before the ring happens.
	Device(t *testing.T, user string, b Behaviour)
	// Number says what an external number does the next time the path
	// dials it through its trunk (click-to-call).
	Number(t *testing.T, number string, b Behaviour)
	// Call places an inbound trunk call to hotline, from a customer number
	// no other call of the test uses.
	Call(t *testing.T, hotline string) Caller
	// Elapse lets d pass on routing's clock: a fake clock advances (and
	// AnswerLate devices that ring answer); a real clock does nothing, as
	// the suite's waits outlast any ring timeout.
	Elapse(t *testing.T, d time.Duration)
	// Cleared waits until the device of `user` has no call attempt left:
	// its ring was cancelled or its call ended as the phone expected.
	Cleared(t *testing.T, user string)
	// Vanish: the device of `user`, talking on a call, disappears without
	// a word — power cut, crashed softphone: no BYE, no hang-up event; the
	// media server's channel is simply gone, the SIP phone dead.
	Vanish(t *testing.T, user string)
}

// Caller is a placed trunk call.
type Caller interface {
	// Hangup: the caller hangs up (CANCEL while ringing, BYE once answered).
	Hangup(t *testing.T)
}

// Hotlines and queues the suite creates on the demo floor.
const (
	hotline    = "+842873009901" // queue "suite": longest_idle over a1, a2, a3
	hotlineAll = "+842873009902" // queue "suite-all": ring_all over a1, a3
)

// Run runs every floor rule as a subtest, each on a new floor.
func Run(t *testing.T, newFloor func(t *testing.T) Floor) {
	rona := []struct {
		name string
		// agent is the agent who cannot be reached; devices what their
		// devices do.
		agent   string
		devices map[string]Behaviour
	}{
		{"ring timeout is rona", "a1", map[string]Behaviour{"a1": RingOut}},
		{"busy is rona", "a1", map[string]Behaviour{"a1": Busy}},
		{"unregistered is rona", "a1", map[string]Behaviour{"a1": Unregistered}},
		{"declined is rona", "a1", map[string]Behaviour{"a1": Decline}},
		{"app 480 desk 486 is rona", "a2", map[string]Behaviour{"a2": NoAnswer, "a2-desk": Busy}},
	}
	for _, tc := range rona {
		t.Run(tc.name, func(t *testing.T) {
			s := setup(t, newFloor(t))
			s.ronaRule(tc.agent, tc.devices)
		})
	}
	t.Run("caller hangs up while ringing is not rona", func(t *testing.T) {
		setup(t, newFloor(t)).callerHangsUpWhileRinging()
	})
	t.Run("app_sip first answer wins", func(t *testing.T) {
		setup(t, newFloor(t)).appSIPFirstAnswerWins()
	})
	t.Run("ring_all shows every agent rung", func(t *testing.T) {
		setup(t, newFloor(t)).ringAll()
	})
	t.Run("outbound shows hotline and queue; available after outdial", func(t *testing.T) {
		setup(t, newFloor(t)).outbound()
	})
	t.Run("one monitor per supervisor", func(t *testing.T) {
		setup(t, newFloor(t)).oneMonitorPerSupervisor()
	})
	t.Run("a call whose leg is gone ends within 60 s", func(t *testing.T) {
		setup(t, newFloor(t)).ghostCallEnds()
	})
	t.Run("personal numbers are stored as E.164", func(t *testing.T) {
		setup(t, newFloor(t)).phoneFormats()
	})
}

// suite is one subtest's floor with the suite's queues on it.
type suite struct {
	t     *testing.T
	f     Floor
	ctx   context.Context
	admin presence.Actor
}

func setup(t *testing.T, f Floor) *suite {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	s := &suite{t: t, f: f, ctx: ctx}
	s.admin = s.actor("admin")
	ring := int(f.RingTimeout() / time.Second)
	if ring < 1 {
		ring = 1
	}
	longest, all := routing.LongestIdle, routing.RingAll
	wrapup := 30
	for _, q := range []struct {
		id, hotline string
		strategy    *routing.Strategy
		members     []string
	}{
		// Members in this order: with nobody idle longer than another,
		// longest_idle tries them in member order (routing/strategy.go).
		{"suite", hotline, &longest, []string{"a1", "a2", "a3"}},
		{"suite-all", hotlineAll, &all, []string{"a1", "a3"}},
	} {
		id, hotlines, members := q.id, []string{q.hotline}, q.members
		if _, err := f.Engine().CreateQueue(ctx, s.admin, routing.QueueInput{ID: &id, Strategy: q.strategy,
			RingTimeoutSeconds: &ring, WrapupSeconds: &wrapup, Members: &members, Hotlines: &hotlines}); err != nil {
			t.Fatalf("create queue %s: %v", id, err)
		}
	}
	// The distribution modes the rules rely on (README.md, "Devices"):
	// a1 and a3 ring their app device, a2 both devices, the supervisor
	// their app device.
	for id, d := range map[string]presence.Distribution{"a1": presence.DistApp, "a3": presence.DistApp,
		"a2": presence.DistAppSIP, "sup-sales": presence.DistApp} {
		if _, err := f.Presence().UpdateAgent(ctx, presence.System, id, presence.AgentInput{Distribution: &d}); err != nil {
			t.Fatalf("distribution of %s: %v", id, err)
		}
	}
	return s
}

func (s *suite) actor(id string) presence.Actor {
	s.t.Helper()
	a, err := s.f.Presence().Agent(s.ctx, id)
	if err != nil {
		s.t.Fatal(err)
	}
	act, err := s.f.Presence().ActorFor(s.ctx, a)
	if err != nil {
		s.t.Fatal(err)
	}
	return act
}

// waitDeadline outlasts a real ring timeout and a loaded machine; it is
// a bound on a wait, not a timing assertion.
const waitDeadline = 20 * time.Second

// eventually polls check, letting routing settle between tries.
func (s *suite) eventually(what string, check func() error) {
	s.t.Helper()
	deadline := time.Now().Add(waitDeadline)
	for {
		fctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		_ = s.f.Engine().Flush(fctx)
		cancel()
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// available sets agents' call status to available, as the API does
// (from rona too: "go to available").
func (s *suite) available(ids ...string) {
	s.t.Helper()
	for _, id := range ids {
		st := presence.StatusAvailable
		if _, err := s.f.Presence().SetStatus(s.ctx, presence.System, id, &st, nil); err != nil {
			s.t.Fatalf("set %s available: %v", id, err)
		}
	}
	s.f.Engine().Kick()
}

// place calls hotline and returns routing's id for the new call.
func (s *suite) place(hotline string) (string, Caller) {
	s.t.Helper()
	before := map[string]bool{}
	calls, err := s.f.Engine().Calls(s.ctx, s.admin, routing.CallFilter{})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, c := range calls {
		before[c.ID] = true
	}
	caller := s.f.Call(s.t, hotline)
	var id string
	s.eventually("a new call to "+hotline, func() error {
		calls, err := s.f.Engine().Calls(s.ctx, s.admin, routing.CallFilter{})
		if err != nil {
			return err
		}
		for _, c := range calls {
			if !before[c.ID] && c.Hotline == hotline {
				id = c.ID
				return nil
			}
		}
		return errors.New("not in routing's calls")
	})
	return id, caller
}

func (s *suite) call(id string) (routing.CallView, error) {
	return s.f.Engine().Call(s.ctx, s.admin, id)
}

// anyAgent: wantCall does not look at the call's agent.
const anyAgent = "*"

// wantCall waits until call id is in state with agent ("" for none,
// anyAgent for any) and exactly the ringing agents given.
func (s *suite) wantCall(id string, state routing.CallState, agent string, ringing ...string) routing.CallView {
	s.t.Helper()
	var v routing.CallView
	s.eventually(fmt.Sprintf("call %s %s with agent %q ringing %v", id, state, agent, ringing), func() error {
		var err error
		if v, err = s.call(id); err != nil {
			return err
		}
		got := ""
		if v.Agent != nil {
			got = *v.Agent
		}
		rung := slices.Sorted(slices.Values(v.RingingAgents))
		if v.State != state || got != agent && agent != anyAgent || !slices.Equal(rung, slices.Sorted(slices.Values(ringing))) {
			return fmt.Errorf("call is %s with agent %q ringing %v", v.State, got, v.RingingAgents)
		}
		return nil
	})
	return v
}

func (s *suite) wantGone(id string) {
	s.t.Helper()
	s.eventually("call "+id+" ended", func() error {
		if _, err := s.call(id); !errors.Is(err, presence.ErrNotFound) {
			return fmt.Errorf("still live (err %v)", err)
		}
		return nil
	})
}

// wantAgent waits until agent id's system status is sys, on call callID.
func (s *suite) wantAgent(id string, sys presence.SystemStatus, callID string) {
	s.t.Helper()
	s.eventually(fmt.Sprintf("agent %s %s on %q", id, sys, callID), func() error {
		a, err := s.f.Presence().Agent(s.ctx, id)
		if err != nil {
			return err
		}
		got := ""
		if a.CallID != nil {
			got = *a.CallID
		}
		if a.SystemStatus != sys || got != callID {
			return fmt.Errorf("agent is %s on call %q", a.SystemStatus, got)
		}
		return nil
	})
}

// ringOut lets a ring time out: the fake clock passes the queue's ring
// timeout; a real one passes by itself while the suite waits.
func (s *suite) ringOut() {
	s.f.Elapse(s.t, s.f.RingTimeout()+time.Second)
}

func (s *suite) devices(m map[string]Behaviour) {
	for user, b := range m {
		s.f.Device(s.t, user, b)
	}
}

// ronaRule: a routed call that cannot reach the agent's devices puts the
// agent in rona, as a ring timeout does; the next agent is rung at once
// (the fake clock does not move), and when that one rings out too, the
// call is back in its queue ahead of a later call: the next free agent
// gets it first.
func (s *suite) ronaRule(agent string, devices map[string]Behaviour) {
	t := s.t
	s.devices(devices)
	s.f.Device(t, "a3", RingOut)
	s.available(agent, "a3")
	first, caller1 := s.place(hotline)
	if devices[agent] == RingOut {
		s.wantCall(first, routing.StateRinging, agent, agent)
		s.wantAgent(agent, presence.SysRinging, first)
		s.ringOut()
	}
	s.wantAgent(agent, presence.SysRONA, "")
	s.wantCall(first, routing.StateRinging, "a3", "a3")
	s.wantAgent("a3", presence.SysRinging, first)

	// A later call waits behind it.
	second, caller2 := s.place(hotline)
	s.wantCall(second, routing.StateCalling, "")
	s.ringOut()
	s.wantAgent("a3", presence.SysRONA, "")
	s.wantCall(first, routing.StateCalling, "a3") // "agent" is the last agent tried (API.md)

	// The agent goes back to available: the first call is theirs, the
	// second still waits. Their app device answers, any other rings on.
	answer := map[string]Behaviour{}
	for user := range devices {
		answer[user] = RingOut
	}
	answer[agent] = Answer
	s.devices(answer)
	// "Go to available" from rona restarts the status timer even though
	// the manual status already was available.
	inRona, err := s.f.Presence().Agent(s.ctx, agent)
	if err != nil {
		t.Fatal(err)
	}
	if inRona.CallStatus != presence.StatusAvailable {
		t.Fatalf("%s in rona has manual status %s, want it kept available", agent, inRona.CallStatus)
	}
	s.f.Elapse(t, time.Second)
	s.available(agent)
	if a, err := s.f.Presence().Agent(s.ctx, agent); err != nil || !a.StatusSince.After(inRona.StatusSince) {
		t.Errorf("go to available from rona kept the status timer from %v (now from %v, %v)", inRona.StatusSince, a.StatusSince, err)
	}
	s.wantCall(first, routing.StateAnswered, agent)
	s.wantAgent(agent, presence.SysTalking, first)
	s.wantCall(second, routing.StateCalling, "")

	caller2.Hangup(t)
	s.wantGone(second)
	caller1.Hangup(t)
	s.wantGone(first)
	s.wantAgent(agent, presence.SysAfterCallWork, "")
	s.wantAgent("a3", presence.SysRONA, "") // nobody's caller hanging up changes a rona

	// "Go to idle": out of rona into the default idle status, not routed.
	a3, err := s.f.Presence().GoIdle(s.ctx, s.admin, "a3")
	if err != nil {
		t.Fatalf("go to idle: %v", err)
	}
	if a3.SystemStatus == presence.SysRONA || a3.CallStatus == presence.StatusAvailable {
		t.Errorf("a3 after go to idle: %s / %s, want out of rona and not available", a3.SystemStatus, a3.CallStatus)
	}
}

// callerHangsUpWhileRinging: only the caller hanging up puts nobody in
// rona; the agent is free again at once.
func (s *suite) callerHangsUpWhileRinging() {
	t := s.t
	s.f.Device(t, "a1", RingOut)
	s.available("a1")
	id, caller := s.place(hotline)
	s.wantCall(id, routing.StateRinging, "a1", "a1")
	s.wantAgent("a1", presence.SysRinging, id)
	caller.Hangup(t)
	s.wantGone(id)
	s.f.Cleared(t, "a1")
	s.wantAgent("a1", presence.SysAvailable, "")
}

// appSIPFirstAnswerWins: app_sip rings the app and the IP phone as one
// offer; the app answers, the IP phone's ring is cancelled, and routing
// sees one agent on one call.
func (s *suite) appSIPFirstAnswerWins() {
	t := s.t
	s.f.Device(t, "a2", Answer)
	s.f.Device(t, "a2-desk", RingOut)
	s.available("a2")
	id, caller := s.place(hotline)
	s.wantCall(id, routing.StateAnswered, "a2")
	s.wantAgent("a2", presence.SysTalking, id)
	s.f.Cleared(t, "a2-desk")
	// Still one conversation, with a2 on it, after the cancelled fork ended.
	s.wantCall(id, routing.StateAnswered, "a2")
	s.wantAgent("a2", presence.SysTalking, id)
	caller.Hangup(t)
	s.wantGone(id)
	s.f.Cleared(t, "a2")
	s.wantAgent("a2", presence.SysAfterCallWork, "")
	s.wantAnsweredToday("suite", 1)
}

// wantAnsweredToday checks a queue counted n answered calls: a fork
// seen by routing as more than one leg would count twice.
func (s *suite) wantAnsweredToday(queue string, n int64) {
	s.t.Helper()
	s.eventually(fmt.Sprintf("queue %s answered %d today", queue, n), func() error {
		q, err := s.f.Engine().Queue(s.ctx, s.admin, queue)
		if err != nil {
			return err
		}
		if q.AnsweredToday != n {
			return fmt.Errorf("answered today %d", q.AnsweredToday)
		}
		return nil
	})
}

// ringAll: a ring_all call lists every agent rung while it rings, and the
// agent who answered afterwards; the others stop ringing and are free,
// not in rona.
func (s *suite) ringAll() {
	t := s.t
	s.f.Device(t, "a1", RingOut)
	s.f.Device(t, "a3", AnswerLate)
	s.available("a1", "a3")
	id, caller := s.place(hotlineAll)
	v := s.wantCall(id, routing.StateRinging, anyAgent, "a1", "a3")
	if v.Queue != "suite-all" {
		t.Errorf("call queue = %q, want suite-all", v.Queue)
	}
	s.wantAgent("a1", presence.SysRinging, id)
	s.wantAgent("a3", presence.SysRinging, id)
	s.f.Elapse(t, time.Second) // a3 picks up
	s.wantCall(id, routing.StateAnswered, "a3")
	s.wantAgent("a3", presence.SysTalking, id)
	s.f.Cleared(t, "a1")
	s.wantAgent("a1", presence.SysAvailable, "")
	caller.Hangup(t)
	s.wantGone(id)
	s.wantAgent("a3", presence.SysAfterCallWork, "")
	s.wantAnsweredToday("suite-all", 1)
}

// oneMonitorPerSupervisor: a supervisor who monitors a call cannot start
// a second monitor on another: 409 naming the call they monitor.
func (s *suite) oneMonitorPerSupervisor() {
	t := s.t
	if err := s.f.Capabilities().Supports(media.ActionMonitor); err != nil {
		t.Skipf("the %s path cannot monitor: %v", s.f.Capabilities().Path, err)
	}
	s.f.Device(t, "a1", Answer)
	s.f.Device(t, "a3", Answer)
	s.f.Device(t, "sup-sales", Answer)
	s.available("a1")
	first, caller1 := s.place(hotline)
	s.wantCall(first, routing.StateAnswered, "a1")
	s.available("a3")
	second, caller2 := s.place(hotline)
	s.wantCall(second, routing.StateAnswered, "a3")

	sup := s.actor("sup-sales")
	mon, err := s.f.Engine().StartMonitor(s.ctx, sup, first, media.MonitorListen, "")
	if err != nil {
		t.Fatalf("first monitor: %v", err)
	}
	s.wantMonitorAnswered(first, mon.ID)
	for _, mode := range []media.MonitorMode{media.MonitorListen, media.MonitorWhisper, media.MonitorBarge} {
		_, err := s.f.Engine().StartMonitor(s.ctx, sup, second, mode, "")
		if !errors.Is(err, presence.ErrConflict) || !strings.Contains(err.Error(), first) {
			t.Errorf("second monitor (%s) = %v, want a conflict (409) naming call %s", mode, err, first)
		}
	}
	if v, err := s.call(second); err != nil || v.Monitor != nil {
		t.Errorf("refused monitor changed call %s: %+v, %v", second, v.Monitor, err)
	}
	if _, err := s.f.Engine().EndMonitor(s.ctx, sup, mon.ID); err != nil {
		t.Fatalf("end monitor: %v", err)
	}
	s.f.Cleared(t, "sup-sales")
	// Once the first monitor ended, the supervisor may monitor the other.
	s.f.Device(t, "sup-sales", Answer)
	mon2, err := s.f.Engine().StartMonitor(s.ctx, sup, second, media.MonitorListen, "")
	if err != nil {
		t.Fatalf("monitor after the first ended: %v", err)
	}
	s.wantMonitorAnswered(second, mon2.ID)
	if _, err := s.f.Engine().EndMonitor(s.ctx, sup, mon2.ID); err != nil {
		t.Fatalf("end second monitor: %v", err)
	}
	s.f.Cleared(t, "sup-sales")
	caller1.Hangup(t)
	caller2.Hangup(t)
	s.wantGone(first)
	s.wantGone(second)
}

// wantMonitorAnswered waits until the supervisor's leg of monitor id on
// call callID answered.
func (s *suite) wantMonitorAnswered(callID, id string) {
	s.t.Helper()
	s.eventually("the supervisor's leg of "+id+" answered", func() error {
		v, err := s.call(callID)
		if err != nil {
			return err
		}
		if v.Monitor == nil || v.Monitor.ID != id || !v.Monitor.Answered {
			return fmt.Errorf("monitor is %+v", v.Monitor)
		}
		return nil
	})
}

// outbound: a click-to-call shows the hotline presented to the customer
// and the queue it belongs to; afterwards the agent keeps the status they
// dialled from, or is available when the account says
// available_after_outdial.
func (s *suite) outbound() {
	t := s.t
	if err := s.f.Capabilities().Supports(media.ActionClickToCall); err != nil {
		t.Skipf("the %s path cannot place click-to-call: %v", s.f.Capabilities().Path, err)
	}
	const number = "+84909999999"
	for _, after := range []bool{false, true} {
		if _, err := s.f.Presence().UpdateSettings(s.ctx, s.admin, presence.SettingsInput{AvailableAfterOutdial: &after}); err != nil {
			t.Fatalf("settings: %v", err)
		}
		s.f.Device(t, "a1", Answer)
		s.f.Number(t, number, Answer)
		before, err := s.f.Presence().Agent(s.ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		if before.CallStatus == presence.StatusAvailable {
			t.Fatalf("a1 dials from %q; the rule needs a not-available status", before.CallStatus)
		}
		v, err := s.f.Engine().Originate(s.ctx, s.actor("a1"), "a1", number, "")
		if err != nil {
			t.Fatalf("originate: %v", err)
		}
		v = s.wantCall(v.ID, routing.StateAnswered, "a1")
		if v.Direction != routing.DirectionOutbound || v.CustomerNumber != number {
			t.Errorf("outbound call: direction %q, customer %q", v.Direction, v.CustomerNumber)
		}
		q, err := s.f.Engine().Queue(s.ctx, s.admin, v.Queue)
		if err != nil {
			t.Fatalf("the outbound call's queue %q: %v", v.Queue, err)
		}
		if !slices.Contains(q.Hotlines, v.Hotline) {
			t.Errorf("outbound call shows hotline %q, not one of queue %s's %v", v.Hotline, q.ID, q.Hotlines)
		}
		s.wantAgent("a1", presence.SysTalking, v.ID)
		if _, err := s.f.Engine().Hangup(s.ctx, s.admin, v.ID); err != nil {
			t.Fatalf("hang up: %v", err)
		}
		s.wantGone(v.ID)
		s.f.Cleared(t, "a1")
		want := before.CallStatus
		if after {
			want = presence.StatusAvailable
		}
		s.eventually(fmt.Sprintf("a1's status after the outbound call (available_after_outdial %v)", after), func() error {
			a, err := s.f.Presence().Agent(s.ctx, "a1")
			if err != nil {
				return err
			}
			if a.CallID != nil || a.CallStatus != want {
				return fmt.Errorf("a1 is %s / %s on %v, want %s", a.SystemStatus, a.CallStatus, a.CallID, want)
			}
			return nil
		})
		if after { // back to where the next round starts
			st := before.CallStatus
			if _, err := s.f.Presence().SetStatus(s.ctx, presence.System, "a1", &st, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// ghostCallEnds: the agent's device vanishes mid-call with no signalling
// at all. Within a minute of routing's clock the path notices (a leg
// audit on a media server, the session timer on the SIP path), the call
// ends and the agent is released into wrap-up, not left talking.
func (s *suite) ghostCallEnds() {
	t := s.t
	s.f.Device(t, "a1", Answer)
	s.available("a1")
	id, _ := s.place(hotline)
	s.wantCall(id, routing.StateAnswered, "a1")
	s.wantAgent("a1", presence.SysTalking, id)
	s.f.Vanish(t, "a1")
	for range 3 { // a minute, in the audit's steps
		s.f.Elapse(t, 20*time.Second)
	}
	s.wantGone(id)
	s.wantAgent("a1", presence.SysAfterCallWork, "")
}

// phoneFormats: personal numbers are accepted as people enter them in the
// account's region (the demo floor's VN) and kept as E.164; anything else
// is refused naming the field, and the stored number is untouched.
func (s *suite) phoneFormats() {
	t := s.t
	for _, c := range [][2]string{
		{"+84901000021", "+84901000021"},
		{"84901000022", "+84901000022"},
		{"0901000023", "+84901000023"},
	} {
		in, want := c[0], c[1]
		a, err := s.f.Presence().UpdateAgent(s.ctx, s.admin, "a3", presence.AgentInput{Phone: &in})
		if err != nil || a.Phone != want {
			t.Errorf("phone %q: stored %q (%v), want %q", in, a.Phone, err, want)
		}
	}
	for _, in := range []string{"12345", "+84 not a number", "0123"} {
		_, err := s.f.Presence().UpdateAgent(s.ctx, s.admin, "a3", presence.AgentInput{Phone: &in})
		var fe *presence.FieldError
		if !errors.As(err, &fe) || fe.Field != "phone" || !errors.Is(err, presence.ErrUnprocessable) {
			t.Errorf("phone %q: err %v, want a 422 naming phone", in, err)
		}
	}
	if a, err := s.f.Presence().Agent(s.ctx, "a3"); err != nil || a.Phone != "+84901000023" {
		t.Errorf("a refused phone changed the stored one: %q %v", a.Phone, err)
	}
}
