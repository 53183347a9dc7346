package routing_test

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// miss places a call from caller that hangs up before anyone answers.
func (f *testFloor) miss(caller string) {
	f.t.Helper()
	id, cust := f.arrive(caller, "+842800")
	f.advance(2 * time.Second)
	f.ended(cust, media.CauseNormal)
	f.wantGone(id)
}

func TestMissedUISRule(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addGroup("sales")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addQueue("main", routing.LongestIdle, 0, []string{"sales"})
	const x, y = "+84901000001", "+84901000002"
	f.miss(x)
	f.miss(x) // X misses N = 2
	f.miss(y)
	f.miss(y)
	f.miss(y) // Y misses M = 3
	for _, s := range []routing.Stats{f.stats("", ""), f.stats("main", ""), f.stats("", "sales")} {
		if s.Missed != 5 || s.Accepted != 0 {
			t.Fatalf("after N+M misses: %+v, want missed 5", s)
		}
	}
	// X calls again and gets through: only Y's misses remain.
	id, cust := f.arrive(x, "+842800")
	f.answer(f.legOf("a1"))
	f.ended(cust, media.CauseNormal)
	f.wantGone(id)
	for _, s := range []routing.Stats{f.stats("", ""), f.stats("main", ""), f.stats("", "sales")} {
		if s.Missed != 3 || s.Accepted != 1 {
			t.Fatalf("after X was reached: %+v, want missed 3, accepted 1", s)
		}
	}
	// An agent's answered outbound call to Y reaches Y too.
	c, err := f.eng.Originate(f.ctx, f.admin, "a1", y, "callback")
	if err != nil {
		t.Fatal(err)
	}
	f.answer(f.legOf("a1"))
	cd := f.media.Dials()
	custLeg := cd[len(cd)-1]
	if custLeg.Dial.Number != y {
		t.Fatalf("customer dial = %+v", custLeg.Dial)
	}
	f.answer(custLeg.Result)
	f.wantCall(c.ID, routing.StateAnswered, "a1")
	if s := f.stats("", ""); s.Missed != 0 || s.Accepted != 1 {
		t.Fatalf("after Y was called back: %+v, want missed 0 (outbound is not accepted)", s)
	}
	// Abandoned stays a plain count of calls lost.
	q, err := f.eng.Queue(f.ctx, f.admin, "main")
	if err != nil {
		t.Fatal(err)
	}
	if q.AbandonedToday != 5 || q.AnsweredToday != 1 {
		t.Fatalf("queue = %+v", q)
	}
	// A new miss from X after being reached counts again.
	f.ended(custLeg.Result, media.CauseNormal)
	f.miss(x)
	if s := f.stats("", ""); s.Missed != 1 {
		t.Fatalf("missed = %d, want 1", s.Missed)
	}
}

func TestCountersDayBoundaryInAccountZone(t *testing.T) {
	hcm, err := time.LoadLocation("Asia/Ho_Chi_Minh")
	if err != nil {
		t.Skipf("no tzdata: %v", err)
	}
	// 23:59:00 in Ho Chi Minh City is 16:59 UTC: a UTC day would not end here.
	start := time.Date(2026, 11, 21, 23, 59, 0, 0, hcm)
	f := newFloor(t, hcm, start)
	f.addAgent("a1", presence.RoleAgent)
	f.setStatus("a1", presence.StatusUnavailable)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"})
	f.miss("+84901000001")
	s := f.stats("", "")
	if s.Missed != 1 || !s.DayStart.Equal(time.Date(2026, 11, 21, 0, 0, 0, 0, hcm)) {
		t.Fatalf("before midnight: %+v", s)
	}
	if _, off := s.DayStart.Zone(); off != 7*3600 {
		t.Fatalf("day_start offset = %d, want +07:00", off)
	}
	f.advance(time.Minute) // 00:00:02 local, still 17:00 UTC on the 21st
	s = f.stats("", "")
	if s.Missed != 0 || s.Accepted != 0 || !s.DayStart.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, hcm)) {
		t.Fatalf("after local midnight: %+v", s)
	}
	// The new day counts on its own; the caller reached today does not
	// reach back into yesterday.
	f.setStatus("a1", presence.StatusAvailable)
	id, cust := f.arrive("+84901000001", "+842800")
	f.answer(f.legOf("a1"))
	f.ended(cust, media.CauseNormal)
	f.wantGone(id)
	if s = f.stats("", ""); s.Accepted != 1 || s.Missed != 0 {
		t.Fatalf("new day: %+v", s)
	}
}

func TestAverageWaitFromRingStartToAnswer(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	f.setStatus("a1", presence.StatusLunchBreak)
	f.setStatus("a2", presence.StatusLunchBreak)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1", "a2"})

	// Call 1 waits 30 s in the queue (not counted), rings 6 s, answered.
	id1, _ := f.arrive("+84901000001", "+842800")
	if s := f.stats("", ""); s.InIVR != 1 || s.Waiting != 0 {
		t.Fatalf("live while queued: %+v", s)
	}
	f.advance(30 * time.Second)
	f.setStatus("a1", presence.StatusAvailable)
	f.wantCall(id1, routing.StateRinging, "a1")
	if s := f.stats("", ""); s.InIVR != 0 || s.Waiting != 1 || s.Agents.Ringing != 1 {
		t.Fatalf("live while ringing: %+v", s)
	}
	f.advance(6 * time.Second)
	f.answer(f.legOf("a1"))

	// Call 2 rings a2 for the whole timeout (RONA), then a2... no: nobody
	// else is free, so it waits; a2 comes back and answers after 4 s more.
	f.setStatus("a2", presence.StatusAvailable)
	id2, _ := f.arrive("+84901000002", "+842800")
	f.wantCall(id2, routing.StateRinging, "a2")
	f.advance(18 * time.Second) // RONA: ring time still counts as wait
	f.wantSys("a2", presence.SysRONA)
	f.setStatus("a2", presence.StatusAvailable)
	f.advance(4 * time.Second)
	f.answer(f.legOf("a2"))
	f.wantCall(id2, routing.StateAnswered, "a2")

	s := f.stats("", "")
	// (6 + 22) / 2 = 14
	if s.AvgWaitSeconds != 14 || s.Accepted != 2 {
		t.Fatalf("stats = %+v, want avg_wait 14 over 2 accepted", s)
	}
	if s.Talking != 2 || s.Agents.Talking != 2 || s.Agents.Free != 0 {
		t.Fatalf("live = %+v", s)
	}
}

func TestStatsVisibility(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("sup1", presence.RoleSupervisor)
	f.addGroup("sales", "sup1")
	f.addGroup("support")
	f.addQueue("main", routing.LongestIdle, 0, []string{"sales"})
	sup := f.actor("sup1")
	if _, err := f.eng.Stats(f.ctx, sup, "", ""); err == nil {
		t.Fatal("supervisor read the whole floor")
	}
	if _, err := f.eng.Stats(f.ctx, sup, "", "support"); err == nil {
		t.Fatal("supervisor read another group")
	}
	if _, err := f.eng.Stats(f.ctx, sup, "", "sales"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.Stats(f.ctx, sup, "main", ""); err != nil {
		t.Fatal(err)
	}
}

func TestAllStatsMatchesPerScopeStats(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addGroup("sales")
	f.addGroup("support")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addAgent("b1", presence.RoleAgent, "support")
	f.addQueue("main", routing.LongestIdle, 0, []string{"sales"})
	f.addQueue("help", routing.LongestIdle, 0, []string{"b1"}, "+842801")
	f.miss("+84901000001")
	id, _ := f.arrive("+84901000002", "+842801")
	f.answer(f.legOf("b1"))
	f.wantCall(id, routing.StateAnswered, "b1")
	set, err := f.eng.AllStats(f.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if set.Floor != f.stats("", "") {
		t.Fatalf("floor %+v != %+v", set.Floor, f.stats("", ""))
	}
	for _, g := range []string{"sales", "support"} {
		if set.Groups[g] != f.stats("", g) {
			t.Fatalf("group %s: %+v != %+v", g, set.Groups[g], f.stats("", g))
		}
	}
	for _, q := range []string{"main", "help"} {
		if set.Queues[q] != f.stats(q, "") {
			t.Fatalf("queue %s: %+v != %+v", q, set.Queues[q], f.stats(q, ""))
		}
	}
	if set.Queues["help"].Talking != 1 || set.Queues["main"].Missed != 1 || len(set.QueueGroups["help"]) != 1 || set.QueueGroups["help"][0] != "support" {
		t.Fatalf("set = %+v", set)
	}
}
