package routing_test

import (
	"slices"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

func TestSelect(t *testing.T) {
	at := func(min int) time.Time { return t0.Add(time.Duration(min) * time.Minute) }
	c := func(id string, pos int, idle time.Time, calls int64) routing.Candidate {
		return routing.Candidate{ID: id, Pos: pos, LastCallEndedAt: idle, CallsToday: calls}
	}
	first := func(int) int { return 0 }
	last := func(n int) int { return n - 1 }
	cases := []struct {
		name    string
		s       routing.Strategy
		cands   []routing.Candidate
		lastPos int
		intn    func(int) int
		want    []string
	}{
		{"empty", routing.LongestIdle, nil, -1, first, nil},
		{"ring_all rings everyone in member order", routing.RingAll,
			[]routing.Candidate{c("b", 1, at(0), 0), c("a", 0, at(0), 0), c("c", 2, at(0), 0)}, -1, first, []string{"a", "b", "c"}},
		{"longest_idle picks the oldest last call", routing.LongestIdle,
			[]routing.Candidate{c("a", 0, at(5), 0), c("b", 1, at(1), 0), c("c", 2, at(3), 0)}, -1, first, []string{"b"}},
		{"longest_idle: never called beats any call", routing.LongestIdle,
			[]routing.Candidate{c("a", 0, at(1), 0), c("b", 1, time.Time{}, 0)}, -1, first, []string{"b"}},
		{"longest_idle tie → member order", routing.LongestIdle,
			[]routing.Candidate{c("b", 3, at(1), 0), c("a", 2, at(1), 0), c("c", 4, at(2), 0)}, -1, first, []string{"a"}},
		{"round_robin: next after last offered", routing.RoundRobin,
			[]routing.Candidate{c("a", 0, at(0), 0), c("b", 1, at(0), 0), c("c", 2, at(0), 0)}, 0, first, []string{"b"}},
		{"round_robin skips unroutable positions", routing.RoundRobin,
			[]routing.Candidate{c("a", 0, at(0), 0), c("d", 3, at(0), 0)}, 1, first, []string{"d"}},
		{"round_robin wraps around", routing.RoundRobin,
			[]routing.Candidate{c("a", 0, at(0), 0), c("b", 1, at(0), 0)}, 1, first, []string{"a"}},
		{"round_robin with no cursor starts at the first member", routing.RoundRobin,
			[]routing.Candidate{c("b", 1, at(0), 0), c("a", 0, at(0), 0)}, -1, first, []string{"a"}},
		{"fewest_calls picks the lowest count", routing.FewestCalls,
			[]routing.Candidate{c("a", 0, at(0), 4), c("b", 1, at(9), 2), c("c", 2, at(0), 3)}, -1, first, []string{"b"}},
		{"fewest_calls tie → longest idle", routing.FewestCalls,
			[]routing.Candidate{c("a", 0, at(5), 2), c("b", 1, at(2), 2), c("c", 2, at(0), 3)}, -1, first, []string{"b"}},
		{"fewest_calls full tie → member order", routing.FewestCalls,
			[]routing.Candidate{c("b", 1, at(2), 2), c("a", 0, at(2), 2)}, -1, first, []string{"a"}},
		{"random draws among candidates (first)", routing.Random,
			[]routing.Candidate{c("b", 1, at(0), 0), c("a", 0, at(0), 0)}, -1, first, []string{"a"}},
		{"random draws among candidates (last)", routing.Random,
			[]routing.Candidate{c("b", 1, at(0), 0), c("a", 0, at(0), 0)}, -1, last, []string{"b"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := routing.Select(tc.s, tc.cands, tc.lastPos, tc.intn)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("Select = %v, want %v", got, tc.want)
			}
		})
	}
}

// Strategies end to end: the engine feeds Select the right inputs
// (member order, round-robin cursor, today's answered counts).
func TestStrategiesThroughEngine(t *testing.T) {
	t.Run("round_robin rotates across calls", func(t *testing.T) {
		f := newFloor(t, nil, time.Time{})
		for _, id := range []string{"a1", "a2", "a3"} {
			f.addAgent(id, presence.RoleAgent)
		}
		f.addQueue("main", routing.RoundRobin, 0, []string{"a1", "a2", "a3"})
		var got []string
		for i := range 4 {
			id, cust := f.arrive("+8490100000"+string(rune('1'+i)), "+842800")
			c := f.call(id)
			got = append(got, *c.Agent)
			f.answer(f.legOf(*c.Agent))
			f.ended(cust, media.CauseNormal)
		}
		if want := []string{"a1", "a2", "a3", "a1"}; !slices.Equal(got, want) {
			t.Fatalf("round robin offered %v, want %v", got, want)
		}
	})
	t.Run("longest_idle prefers who finished first", func(t *testing.T) {
		f := newFloor(t, nil, time.Time{})
		f.addAgent("a1", presence.RoleAgent)
		f.addAgent("a2", presence.RoleAgent)
		f.addQueue("main", routing.LongestIdle, 0, []string{"a1", "a2"})
		x, cx := f.arrive("+84901000001", "+842800") // a1 (tie → member order)
		y, cy := f.arrive("+84901000002", "+842800") // a2
		f.answer(f.legOf("a1"))
		f.answer(f.legOf("a2"))
		f.advance(time.Second)
		f.ended(cy, media.CauseNormal) // a2 free first
		f.advance(time.Second)
		f.ended(cx, media.CauseNormal)
		f.wantGone(x)
		f.wantGone(y)
		z, _ := f.arrive("+84901000003", "+842800")
		f.wantCall(z, routing.StateRinging, "a2")
	})
	t.Run("fewest_calls counts today's answers", func(t *testing.T) {
		f := newFloor(t, nil, time.Time{})
		f.addAgent("a1", presence.RoleAgent)
		f.addAgent("a2", presence.RoleAgent)
		f.addQueue("main", routing.FewestCalls, 0, []string{"a1", "a2"})
		x, cx := f.arrive("+84901000001", "+842800")
		f.wantCall(x, routing.StateRinging, "a1")
		f.answer(f.legOf("a1"))
		f.ended(cx, media.CauseNormal)
		// a1 is now the longest idle of... no: a2 never had a call, and a1 has one answer.
		y, _ := f.arrive("+84901000002", "+842800")
		f.wantCall(y, routing.StateRinging, "a2")
	})
	t.Run("group members expand in id order", func(t *testing.T) {
		f := newFloor(t, nil, time.Time{})
		f.addGroup("g")
		f.addAgent("z9", presence.RoleAgent, "g")
		f.addAgent("b2", presence.RoleAgent, "g")
		f.addAgent("solo", presence.RoleAgent)
		f.addQueue("main", routing.RingAll, 0, []string{"solo", "g"})
		f.arrive("+84901000001", "+842800")
		var got []string
		for _, d := range f.media.Dials() {
			got = append(got, d.Dial.Target.AgentID)
		}
		if want := []string{"solo", "b2", "z9"}; !slices.Equal(got, want) {
			t.Fatalf("dialled %v, want %v", got, want)
		}
	})
	t.Run("only manual status available is routed", func(t *testing.T) {
		f := newFloor(t, nil, time.Time{})
		f.addAgent("a1", presence.RoleAgent)
		f.addAgent("a2", presence.RoleAgent)
		f.setStatus("a1", presence.StatusShortBreak)
		f.addQueue("main", routing.RingAll, 0, []string{"a1", "a2"})
		f.arrive("+84901000001", "+842800")
		if ds := f.media.Dials(); len(ds) != 1 || ds[0].Dial.Target.AgentID != "a2" {
			t.Fatalf("dials = %+v", ds)
		}
	})
}
