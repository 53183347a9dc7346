package routing_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// attemptsReported collects every ring attempt the call events reported,
// in log order.
func (f *testFloor) attemptsReported() []routing.AttemptEnded {
	f.t.Helper()
	evs, err := f.st.ReadAfter(f.ctx, "", 100000, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []routing.AttemptEnded
	for _, e := range evs {
		if e.Type != routing.EventCall && e.Type != routing.EventCallEnded {
			continue
		}
		var v routing.CallView
		if err := json.Unmarshal(e.Data, &v); err != nil {
			f.t.Fatal(err)
		}
		if v.Report == nil {
			f.t.Fatalf("%s event without report: %s", e.Type, e.Data)
		}
		out = append(out, v.Report.Attempts...)
	}
	return out
}

type wantAttempt struct {
	agent, outcome string
	secs           int
}

func (f *testFloor) wantAttempts(want ...wantAttempt) {
	f.t.Helper()
	got := f.attemptsReported()
	if len(got) != len(want) {
		f.t.Fatalf("attempts = %+v; want %+v", got, want)
	}
	for i, w := range want {
		g := got[i]
		if g.Agent != w.agent || g.Outcome != w.outcome || int(g.EndedAt.Sub(g.StartedAt)/time.Second) != w.secs {
			f.t.Fatalf("attempt %d = %+v; want %+v", i, g, w)
		}
	}
}

func TestReportAttemptsRONAThenAnswered(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.RoundRobin, 0, []string{"a1", "a2"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.advance(18 * time.Second) // a1 rings out
	f.wantCall(id, routing.StateRinging, "a2")
	f.advance(4 * time.Second)
	f.answer(f.legOf("a2"))
	f.wantAttempts(wantAttempt{"a1", routing.OutcomeNoAnswer, 18}, wantAttempt{"a2", routing.OutcomeAnswered, 4})
}

func TestReportAttemptsBusyUnreachableCancelled(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	for _, a := range []string{"a1", "a2", "a3"} {
		f.addAgent(a, presence.RoleAgent)
	}
	f.addQueue("main", routing.RoundRobin, 0, []string{"a1", "a2", "a3"})
	id, cust := f.arrive("+84901000001", "+842800")
	f.advance(time.Second)
	f.ended(f.legOf("a1"), media.CauseBusy)
	f.advance(2 * time.Second)
	f.ended(f.legOf("a2"), media.CauseUnreachable)
	f.wantCall(id, routing.StateRinging, "a3")
	f.advance(3 * time.Second)
	f.ended(cust, media.CauseNormal) // the caller gives up while a3 rings
	f.wantGone(id)
	f.wantAttempts(wantAttempt{"a1", routing.OutcomeBusy, 1}, wantAttempt{"a2", routing.OutcomeUnreachable, 2},
		wantAttempt{"a3", routing.OutcomeCancelled, 3})
}

func TestReportAttemptsRingAllOthersCancelled(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.RingAll, 0, []string{"a1", "a2"})
	f.arrive("+84901000001", "+842800")
	f.advance(2 * time.Second)
	f.answer(f.legOf("a2"))
	got := f.attemptsReported()
	if len(got) != 2 {
		t.Fatalf("attempts = %+v", got)
	}
	outcomes := map[string]string{}
	for _, a := range got {
		outcomes[a.Agent] = a.Outcome
	}
	if outcomes["a1"] != routing.OutcomeCancelled || outcomes["a2"] != routing.OutcomeAnswered {
		t.Fatalf("outcomes = %v; want a1 cancelled, a2 answered", outcomes)
	}
}

func TestOutcomeOfEveryCause(t *testing.T) {
	for cause, want := range map[media.Cause]string{
		media.CauseNoAnswer: routing.OutcomeNoAnswer, media.CauseBusy: routing.OutcomeBusy,
		media.CauseRejected: routing.OutcomeBusy, media.CauseUnreachable: routing.OutcomeUnreachable,
		media.CauseFailed: routing.OutcomeUnreachable, media.CauseCancelled: routing.OutcomeCancelled,
		media.CauseNormal: routing.OutcomeCancelled,
	} {
		if got := routing.OutcomeOf(cause); got != want {
			t.Errorf("OutcomeOf(%s) = %s; want %s", cause, got, want)
		}
	}
}

func TestAgentEventsCarryTheirHistoryRows(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.setStatus("a1", presence.StatusLunchBreak)
	evs := f.events(presence.EventAgent)
	last := evs[len(evs)-1]
	ch, _ := last["changes"].([]any)
	if len(ch) != 1 {
		t.Fatalf("last agent event changes = %v", last["changes"])
	}
	row := ch[0].(map[string]any)
	if row["field"] != "call_status" || row["to"] != presence.StatusLunchBreak || row["by"] == "" {
		t.Fatalf("change row = %v", row)
	}
}
