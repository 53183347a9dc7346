package routing_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
)

// supervisedFloor: sales (a1, a2; supervised by sup1 and sup3), support
// (b1; supervised by sup2); queue main = sales + b1; a1 talking on call.
func supervisedFloor(t *testing.T) (f *testFloor, callID string, cust, agentLeg media.LegID) {
	f = newFloor(t, nil, time.Time{})
	f.addAgent("sup1", presence.RoleSupervisor)
	f.addAgent("sup2", presence.RoleSupervisor)
	f.addAgent("sup3", presence.RoleSupervisor)
	for _, s := range []string{"sup1", "sup2", "sup3"} {
		f.setStatus(s, presence.StatusUnavailable) // supervisors take no queue calls
	}
	f.addGroup("sales", "sup1", "sup3")
	f.addGroup("support", "sup2")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addAgent("a2", presence.RoleAgent, "sales")
	f.addAgent("b1", presence.RoleAgent, "support")
	f.setStatus("a2", presence.StatusUnavailable)
	f.setStatus("b1", presence.StatusUnavailable)
	f.addQueue("main", routing.LongestIdle, 30, []string{"sales", "b1"})
	callID, cust = f.arrive("+84901000001", "+842800")
	agentLeg = f.legOf("a1")
	f.answer(agentLeg)
	f.wantCall(callID, routing.StateAnswered, "a1")
	return f, callID, cust, agentLeg
}

func (f *testFloor) actor(id string) presence.Actor {
	f.t.Helper()
	a, err := f.agents.ActorFor(f.ctx, f.agent(id))
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

func wantConflict(t *testing.T, err error, msg string) {
	t.Helper()
	if !errors.Is(err, presence.ErrConflict) || !strings.Contains(err.Error(), msg) {
		t.Fatalf("err = %v, want a conflict saying %q", err, msg)
	}
}

func TestMonitorRules(t *testing.T) {
	f, id, cust, agentLeg := supervisedFloor(t)
	sup1, sup2, sup3 := f.actor("sup1"), f.actor("sup2"), f.actor("sup3")

	if _, err := f.eng.StartMonitor(f.ctx, f.actor("a2"), id, media.MonitorListen, ""); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("agent listening: %v, want forbidden", err)
	}
	if _, err := f.eng.StartMonitor(f.ctx, sup2, id, media.MonitorListen, ""); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("supervisor of another group: %v, want forbidden", err)
	}
	m, err := f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorListen, "")
	if err != nil {
		t.Fatal(err)
	}
	if m.Supervisor != "sup1" || m.Mode != media.MonitorListen || m.Paused || m.ID == "" {
		t.Fatalf("monitor = %+v", m)
	}
	mc := f.media.Ops("monitor")
	if len(mc) != 1 || mc[0].Monitor.Customer != cust || mc[0].Monitor.Agent != agentLeg || mc[0].Monitor.Supervisor.AgentID != "sup1" {
		t.Fatalf("monitor commands = %+v", mc)
	}
	supLeg := mc[0].Result
	if c := f.call(id); c.Monitor == nil || c.Monitor.ID != m.ID {
		t.Fatalf("call monitor = %+v", c.Monitor)
	}

	_, err = f.eng.StartMonitor(f.ctx, sup3, id, media.MonitorWhisper, "")
	wantConflict(t, err, "already monitored by sup1; one supervisor monitors a call at a time")
	_, err = f.eng.StartMonitor(f.ctx, sup3, id, media.MonitorBarge, "")
	wantConflict(t, err, "monitored by sup1; nobody else can barge into it")
	_, err = f.eng.StartMonitor(f.ctx, f.admin, id, media.MonitorBarge, "")
	wantConflict(t, err, "monitored by sup1; nobody else can barge into it")
	_, err = f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorBarge, "")
	wantConflict(t, err, "you already monitor call")
	_, err = f.eng.BargeMonitor(f.ctx, f.admin, m.ID)
	wantConflict(t, err, "monitored by sup1; nobody else can barge into it")
	if _, err := f.eng.PauseMonitor(f.ctx, sup3, m.ID); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("pausing another's monitor: %v", err)
	}

	f.answer(supLeg)
	if c := f.call(id); !c.Monitor.Answered {
		t.Fatal("monitor not marked answered")
	}
	p, err := f.eng.PauseMonitor(f.ctx, sup1, m.ID)
	if err != nil || !p.Paused {
		t.Fatalf("pause: %+v %v", p, err)
	}
	if mu := f.media.Ops("mute"); len(mu) != 1 || mu[0].Leg != supLeg || !mu[0].Muted {
		t.Fatalf("mute = %+v", mu)
	}
	_, err = f.eng.BargeMonitor(f.ctx, sup1, m.ID)
	wantConflict(t, err, "is paused; resume it before barging")
	r, err := f.eng.ResumeMonitor(f.ctx, sup1, m.ID)
	if err != nil || r.Paused {
		t.Fatalf("resume: %+v %v", r, err)
	}
	b, err := f.eng.BargeMonitor(f.ctx, sup1, m.ID)
	if err != nil || b.Mode != media.MonitorBarge {
		t.Fatalf("barge: %+v %v", b, err)
	}
	if sm := f.media.Ops("set_monitor_mode"); len(sm) != 1 || sm[0].Mode != media.MonitorBarge || sm[0].Leg != supLeg {
		t.Fatalf("set_monitor_mode = %+v", sm)
	}

	_, err = f.agents.Logout(f.ctx, sup1, "sup1")
	wantConflict(t, err, "sup1 has a running monitor")
	if _, err := f.eng.EndMonitor(f.ctx, sup1, m.ID); err != nil {
		t.Fatal(err)
	}
	if !f.media.HungUp(supLeg) {
		t.Fatal("monitor leg not hung up")
	}
	if c := f.call(id); c.Monitor != nil {
		t.Fatalf("monitor still on call: %+v", c.Monitor)
	}
	if _, err := f.agents.Logout(f.ctx, sup1, "sup1"); err != nil {
		t.Fatalf("logout after ending the monitor: %v", err)
	}
	evs := f.events(routing.EventMonitor)
	if last := evs[len(evs)-1]; last["ended"] != true || last["reason"] != "ended by sup1" {
		t.Fatalf("final monitor event = %v", last)
	}
	// Now sup3 may monitor.
	if _, err := f.eng.StartMonitor(f.ctx, sup3, id, media.MonitorWhisper, "PJSIP/desk3"); err != nil {
		t.Fatal(err)
	}
	if mc := f.media.Ops("monitor"); mc[len(mc)-1].Monitor.Supervisor.AppDevice != "PJSIP/desk3" || mc[len(mc)-1].Mode != media.MonitorWhisper {
		t.Fatalf("whisper command = %+v", mc[len(mc)-1])
	}
}

func TestMonitorNeedsAnsweredCallAndMixer(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("sup1", presence.RoleSupervisor)
	f.setStatus("sup1", presence.StatusUnavailable)
	f.addGroup("sales", "sup1")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addQueue("main", routing.LongestIdle, 0, []string{"sales"})
	id, _ := f.arrive("+84901000001", "+842800")
	_, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, "")
	wantConflict(t, err, "not answered")
	f.answer(f.legOf("a1"))
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "monitor" {
			return media.ErrNotSupported
		}
		return nil
	}
	_, err = f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, "")
	if !errors.Is(err, media.ErrNotSupported) {
		t.Fatalf("err = %v, want ErrNotSupported", err)
	}
	if c := f.call(id); c.Monitor != nil {
		t.Fatal("a refused monitor was recorded")
	}
}

func TestTransfer(t *testing.T) {
	f, id, cust, a1Leg := supervisedFloor(t)
	sup1 := f.actor("sup1")
	m, err := f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorListen, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.eng.Transfer(f.ctx, sup1, id, "a2")
	wantConflict(t, err, "agent a2 is not available")
	f.setStatus("a2", presence.StatusAvailable)

	// Within the team: the monitor stays.
	c, err := f.eng.Transfer(f.ctx, sup1, id, "a2")
	if err != nil {
		t.Fatal(err)
	}
	if c.State != routing.StateRinging || *c.Agent != "a2" || c.Monitor == nil {
		t.Fatalf("after transfer: %+v", c)
	}
	if !f.media.HungUp(a1Leg) {
		t.Fatal("current agent not dropped")
	}
	f.wantSys("a1", presence.SysAfterCallWork)
	f.wantSys("a2", presence.SysRinging)
	firstSupLeg := f.media.Ops("monitor")[0].Result
	if !f.media.HungUp(firstSupLeg) {
		t.Fatal("the supervisor's leg on the old agent was not dropped")
	}
	a2Leg := f.legOf("a2")
	f.answer(a2Leg)
	f.wantCall(id, routing.StateAnswered, "a2")
	// The monitor follows the call: the supervisor is joined to a2's leg.
	mons := f.media.Ops("monitor")
	if len(mons) != 2 || mons[1].Monitor.Agent != a2Leg || mons[1].Mode != media.MonitorListen {
		t.Fatalf("monitor commands = %+v", mons)
	}
	if c := f.call(id); c.Monitor == nil || c.Monitor.ID != m.ID {
		t.Fatalf("monitor after the in-team transfer = %+v", c.Monitor)
	}
	// A late LegEnded for the dropped supervisor leg changes nothing.
	f.ended(firstSupLeg, media.CauseNormal)
	if c := f.call(id); c.Monitor == nil {
		t.Fatal("monitor ended by the old leg's hang-up")
	}
	if con := f.media.Ops("connect"); con[len(con)-1].Leg != cust || con[len(con)-1].Other != a2Leg {
		t.Fatalf("connect = %+v", con)
	}

	// To another team (by an admin: sup1 has no right over b1): the
	// monitor ends, and says why.
	f.addAgent("boss", presence.RoleAdmin)
	f.setStatus("boss", presence.StatusUnavailable)
	f.setStatus("b1", presence.StatusAvailable)
	if _, err := f.eng.Transfer(f.ctx, f.actor("boss"), id, "b1"); err != nil {
		t.Fatal(err)
	}
	if c := f.call(id); c.Monitor != nil {
		t.Fatalf("monitor survived a transfer to another team: %+v", c.Monitor)
	}
	evs := f.events(routing.EventMonitor)
	last := evs[len(evs)-1]
	if last["id"] != m.ID || last["ended"] != true || !strings.Contains(last["reason"].(string), "transferred to b1, outside the queue or team") {
		t.Fatalf("final monitor event = %v", last)
	}
	// Accepted counts once for a transferred call.
	f.answer(f.legOf("b1"))
	if s := f.stats("", ""); s.Accepted != 1 {
		t.Fatalf("accepted = %d, want 1", s.Accepted)
	}
}

// TestSupervisorActionsCheckEveryAgentTouched: the right over the call
// is not enough — transferring to an agent outside the supervisor's
// groups, or monitoring from such an agent's device, is 403 and changes
// nothing.
func TestSupervisorActionsCheckEveryAgentTouched(t *testing.T) {
	f, id, _, _ := supervisedFloor(t)
	sup1 := f.actor("sup1")
	f.setStatus("b1", presence.StatusAvailable)
	before, ops := f.call(id), len(f.media.Commands())
	b1 := f.agent("b1")

	if _, err := f.eng.Transfer(f.ctx, sup1, id, "b1"); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("transfer to b1 (support) by sup1 (sales): %v, want forbidden", err)
	}
	for _, dev := range []string{"PJSIP/b1", "user/b1", "sip:b1@127.0.0.1:5060", "b1-desk"} {
		if _, err := f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorListen, dev); !errors.Is(err, presence.ErrForbidden) {
			t.Fatalf("monitor from %s (b1's device) by sup1: %v, want forbidden", dev, err)
		}
	}
	if after := f.call(id); *after.Agent != *before.Agent || after.State != before.State || after.Monitor != nil {
		t.Fatalf("refused actions changed the call: %+v → %+v", before, after)
	}
	if n := len(f.media.Commands()); n != ops {
		t.Fatalf("refused actions drove the media path: %v", f.media.Commands()[ops:])
	}
	if got := f.agent("b1"); got.Version != b1.Version {
		t.Fatalf("refused transfer touched b1: %+v", got)
	}
	// The supervisor's own group is fine.
	if _, err := f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorListen, "PJSIP/a2"); err != nil {
		t.Fatalf("monitor from a2's device (sales) by sup1: %v", err)
	}
}

func TestTakeOverAndHangup(t *testing.T) {
	f, id, cust, a1Leg := supervisedFloor(t)
	sup1 := f.actor("sup1")
	if _, err := f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorListen, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.TakeOver(f.ctx, f.actor("sup2"), id); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("takeover by another group's supervisor: %v", err)
	}
	c, err := f.eng.TakeOver(f.ctx, sup1, id)
	if err != nil {
		t.Fatal(err)
	}
	if c.State != routing.StateRinging || *c.Agent != "sup1" || c.Monitor != nil {
		t.Fatalf("after takeover: %+v", c)
	}
	if !f.media.HungUp(a1Leg) {
		t.Fatal("agent leg not dropped")
	}
	holds := f.media.Ops("hold")
	if h := holds[len(holds)-1]; h.Leg != cust || h.Hold != media.HoldMusic {
		t.Fatalf("customer not held: %+v", h)
	}
	f.wantSys("sup1", presence.SysRinging)
	supLeg := f.legOf("sup1")
	f.answer(supLeg)
	f.wantCall(id, routing.StateAnswered, "sup1")
	f.wantSys("sup1", presence.SysTalking)

	if _, err := f.eng.Hangup(f.ctx, f.actor("a2"), id); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("agent hanging up: %v", err)
	}
	if _, err := f.eng.Hangup(f.ctx, sup1, id); err != nil {
		t.Fatal(err)
	}
	f.wantGone(id)
	if !f.media.HungUp(cust) || !f.media.HungUp(supLeg) {
		t.Fatal("legs not hung up")
	}
	f.wantSys("sup1", presence.SysAfterCallWork)
	if _, err := f.eng.Hangup(f.ctx, sup1, id); !errors.Is(err, presence.ErrNotFound) {
		t.Fatalf("hang up an ended call: %v", err)
	}
}

// TestActionRefusedByMediaPathChangesNothing: a media path that cannot
// take over at all (the SIP proxy) makes TakeOver fail with
// ErrNotSupported before anything changes; transfer still works there.
func TestActionRefusedByMediaPathChangesNothing(t *testing.T) {
	f, id, _, a1Leg := supervisedFloor(t)
	f.media.Caps = media.Capabilities{Path: media.PathSIP, Unsupported: map[media.Action]string{
		media.ActionTakeOver: "take over needs a media server"}}
	before := len(f.media.Commands())
	if _, err := f.eng.TakeOver(f.ctx, f.actor("sup1"), id); !errors.Is(err, media.ErrNotSupported) {
		t.Fatalf("takeover on a path without a mixer: %v", err)
	}
	f.wantCall(id, routing.StateAnswered, "a1")
	f.wantSys("a1", presence.SysTalking)
	if n := len(f.media.Commands()); n != before || f.media.HungUp(a1Leg) {
		t.Fatalf("refused takeover sent %d media commands", n-before)
	}
}
