package routing_test

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
)

// FuzzEngineInvariants drives the engine with an arbitrary sequence of
// facts, clock advances and status changes (each byte pair is one step)
// and checks after every step that calls and agents agree: whoever a call
// rings is ringing for that call, whoever it talks to is talking on it,
// and no agent points at a call that is gone.
func FuzzEngineInvariants(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 2, 0, 3, 0})
	f.Add([]byte{0, 1, 0, 2, 4, 18, 1, 0, 5, 1, 2, 1, 3, 1})
	f.Add([]byte{0, 0, 6, 0, 1, 0, 7, 0, 8, 1, 4, 30, 9, 0})
	f.Add([]byte{0, 0, 1, 0, 10, 0, 1, 1, 11, 0, 4, 5, 2, 2})
	f.Fuzz(func(t *testing.T, ops []byte) {
		if len(ops) > 64 {
			ops = ops[:64]
		}
		fl := newFloor(t, nil, time.Time{})
		fl.addGroup("g")
		agents := []string{"a1", "a2", "a3"}
		for _, id := range agents {
			fl.addAgent(id, presence.RoleAgent, "g")
		}
		fl.addAgent("sup", presence.RoleSupervisor)
		fl.addGroup("h", "sup")
		if _, err := fl.agents.PutGroup(fl.ctx, fl.admin, "g", false, presence.GroupPatch{Supervisors: &[]string{"sup"}}); err != nil {
			t.Fatal(err)
		}
		fl.addQueue("main", routing.Strategy([]string{"ring_all", "longest_idle", "round_robin"}[len(ops)%3]), 5, []string{"g"})
		var custs []media.LegID
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i]%12, int(ops[i+1])
			dials := fl.media.Dials()
			pickDial := func() (media.LegID, bool) {
				if len(dials) == 0 {
					return "", false
				}
				return dials[arg%len(dials)].Result, true
			}
			calls, _ := fl.eng.Calls(fl.ctx, fl.admin, routing.CallFilter{})
			pickCall := func() (string, bool) {
				if len(calls) == 0 {
					return "", false
				}
				return calls[arg%len(calls)].ID, true
			}
			switch op {
			case 0:
				_, leg := fl.arrive(fmt.Sprintf("+8490100%04d", arg%5), "+842800")
				custs = append(custs, leg)
			case 1:
				if l, ok := pickDial(); ok {
					fl.answer(l)
				}
			case 2:
				if len(custs) > 0 {
					fl.ended(custs[arg%len(custs)], media.CauseNormal)
				}
			case 3:
				if l, ok := pickDial(); ok {
					fl.ended(l, []media.Cause{media.CauseNormal, media.CauseNoAnswer, media.CauseBusy, media.CauseUnreachable}[arg%4])
				}
			case 4:
				fl.advance(time.Duration(arg%40) * time.Second)
			case 5:
				fl.setStatus(agents[arg%3], []string{presence.StatusAvailable, presence.StatusLunchBreak}[arg%2])
			case 6:
				if id, ok := pickCall(); ok {
					_, _ = fl.eng.Transfer(fl.ctx, fl.admin, id, agents[arg%3])
				}
			case 7:
				if id, ok := pickCall(); ok {
					_, _ = fl.eng.StartMonitor(fl.ctx, fl.actor("sup"), id, media.MonitorListen, "")
				}
			case 8:
				if id, ok := pickCall(); ok {
					_, _ = fl.eng.TakeOver(fl.ctx, fl.actor("sup"), id)
				}
			case 9:
				if id, ok := pickCall(); ok {
					_, _ = fl.eng.Hangup(fl.ctx, fl.admin, id)
				}
			case 10:
				_, _ = fl.eng.Originate(fl.ctx, fl.admin, agents[arg%3], "+84901000099", "")
			case 11:
				if l, ok := pickDial(); ok {
					fl.answer(l)
					fl.ended(l, media.CauseNormal)
				}
			}
			fl.flush()
			fl.checkInvariants(t, fmt.Sprintf("step %d (op %d arg %d)", i/2, op, arg))
		}
	})
}

func (f *testFloor) checkInvariants(t *testing.T, where string) {
	t.Helper()
	recs, err := f.st.List(f.ctx, state.KindCall)
	if err != nil {
		t.Fatal(err)
	}
	live := map[string]routing.Call{}
	for _, r := range recs {
		var c routing.Call
		if err := json.Unmarshal(r.Data, &c); err != nil {
			t.Fatal(err)
		}
		live[c.ID] = c
	}
	all, err := f.agents.Agents(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]presence.Agent{}
	for _, a := range all {
		byID[a.ID] = a
		onCall := a.SystemStatus == presence.SysRinging || a.SystemStatus == presence.SysTalking
		if onCall != (a.CallID != nil) {
			t.Fatalf("%s: agent %s is %s with call_id %v", where, a.ID, a.SystemStatus, a.CallID)
		}
		if a.CallID != nil {
			if _, ok := live[*a.CallID]; !ok {
				t.Fatalf("%s: agent %s points at ended call %s", where, a.ID, *a.CallID)
			}
		}
	}
	for _, c := range live {
		for _, o := range c.Offers {
			a := byID[o.Agent]
			if a.CallID == nil || *a.CallID != c.ID || a.SystemStatus != presence.SysRinging {
				t.Fatalf("%s: call %s rings %s, who is %s on %v", where, c.ID, o.Agent, a.SystemStatus, a.CallID)
			}
		}
		if c.State == routing.StateAnswered {
			a := byID[c.Agent]
			if a.CallID == nil || *a.CallID != c.ID || a.SystemStatus != presence.SysTalking {
				t.Fatalf("%s: call %s is answered by %s, who is %s on %v", where, c.ID, c.Agent, a.SystemStatus, a.CallID)
			}
		}
		if c.State == routing.StateCalling && (len(c.Offers) > 0 || c.AgentLeg != "") {
			t.Fatalf("%s: call %s is calling with offers %v / agent leg %q", where, c.ID, c.Offers, c.AgentLeg)
		}
	}
	// Monitor records mirror the calls' monitors exactly (the logout guard
	// reads them).
	mons, err := f.st.List(f.ctx, state.KindMonitor)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{}
	for _, c := range live {
		if c.Monitor != nil {
			want[c.Monitor.ID] = true
		}
	}
	if len(mons) != len(want) {
		t.Fatalf("%s: %d monitor records for %d monitored calls", where, len(mons), len(want))
	}
	for _, r := range mons {
		if !want[r.ID] {
			t.Fatalf("%s: monitor record %s has no call", where, r.ID)
		}
	}
}
