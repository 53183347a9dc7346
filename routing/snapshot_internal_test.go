package routing

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// listOnly hides the memory store's change feed: the pass then lists
// every record and compares versions, as on Redis.
type listOnly struct{ state.Store }

// The dispatcher's floor, kept up to date from what changed, is the floor
// a fresh read of every agent builds — after status changes, group
// changes, new and deleted agents and groups — with and without a change
// feed; and its live calls are the store's.
func TestPassStateMatchesFreshRead(t *testing.T) {
	for name, wrap := range map[string]func(state.Store) state.Store{
		"feed":      func(s state.Store) state.Store { return s },
		"list-only": func(s state.Store) state.Store { return listOnly{s} },
	} {
		t.Run(name, func(t *testing.T) {
			mem := store.NewMemory()
			defer mem.Close()
			ctx := context.Background()
			e := &Engine{st: wrap(mem), pass: newPassState()}
			if _, ok := e.st.(changeFeed); ok != (name == "feed") {
				t.Fatalf("store has a change feed: %v", ok)
			}
			put := func(kind state.Kind, id string, v any) {
				t.Helper()
				data, err := json.Marshal(v)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := mem.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: kind, ID: id, Data: data, IfVersion: state.AnyVersion}}}); err != nil {
					t.Fatal(err)
				}
			}
			del := func(kind state.Kind, id string) {
				t.Helper()
				if _, err := mem.Commit(ctx, state.Tx{Deletes: []state.Delete{{Kind: kind, ID: id, IfVersion: state.AnyVersion}}}); err != nil {
					t.Fatal(err)
				}
			}
			agent := func(id, status string, groups ...string) {
				put(state.KindAgent, id, presence.Agent{ID: id, CallStatus: status, SystemStatus: presence.SysAvailable, LoggedIn: true, Groups: groups})
			}
			check := func(step string) {
				t.Helper()
				got, err := e.passFloor(ctx)
				if err != nil {
					t.Fatal(err)
				}
				recs, err := mem.List(ctx, state.KindAgent)
				if err != nil {
					t.Fatal(err)
				}
				var agents []presence.Agent
				for _, r := range recs {
					a, err := presence.DecodeAgent(r)
					if err != nil {
						t.Fatal(err)
					}
					agents = append(agents, a)
				}
				want := newFloor(agents)
				grecs, _ := mem.List(ctx, state.KindGroup)
				for _, g := range grecs {
					want.groups[g.ID] = true
				}
				if d := floorDiff(got, want); d != "" {
					t.Fatalf("%s: %s", step, d)
				}
				calls, err := e.passCalls(ctx)
				if err != nil {
					t.Fatal(err)
				}
				wantCalls, err := e.allCalls(ctx)
				if err != nil {
					t.Fatal(err)
				}
				slices.SortFunc(calls, func(a, b Call) int { return strings.Compare(a.ID, b.ID) })
				if !reflect.DeepEqual(calls, wantCalls) {
					t.Fatalf("%s: calls %+v, want %+v", step, calls, wantCalls)
				}
			}

			check("empty")
			agent("a1", presence.StatusAvailable, "g1")
			agent("a2", presence.StatusLunchBreak, "g1", "g2")
			agent("a3", presence.StatusAvailable)
			put(state.KindGroup, "g1", map[string]string{"id": "g1"})
			put(state.KindCall, "c1", Call{ID: "c1", Queue: "q", State: StateCalling, EnqueuedAt: time.Unix(1, 0).UTC()})
			check("first read")
			agent("a2", presence.StatusAvailable, "g1", "g2")
			check("a status change")
			before, _ := e.passFloor(ctx)
			agent("a1", presence.StatusUnavailable, "g1")
			if after, _ := e.passFloor(ctx); after != before {
				t.Fatal("a status change rebuilt the floor instead of updating it")
			}
			check("another status change, in place")
			agent("a3", presence.StatusAvailable, "g2")
			check("a group change")
			agent("a0", presence.StatusAvailable, "g2")
			put(state.KindCall, "c2", Call{ID: "c2", Queue: "q", State: StateRinging, Offers: []Offer{{Agent: "a0"}}})
			put(state.KindCall, "c1", Call{ID: "c1", Queue: "q", State: StateAnswered, Agent: "a2"})
			check("a new agent, a new call, a call changed")
			del(state.KindAgent, "a2")
			del(state.KindCall, "c1")
			check("an agent and a call deleted")
			put(state.KindGroup, "g9", map[string]string{"id": "g9"})
			check("a new group")
			del(state.KindGroup, "g1")
			check("a group deleted")
			del(state.KindAgent, "a0")
			agent("a0", presence.StatusAvailable, "g1")
			check("an agent deleted and created again")
		})
	}
}

// floorDiff says how two floors differ in what routing reads.
func floorDiff(got, want *floor) string {
	ids := func(f *floor) []string {
		var out []string
		for _, a := range f.list {
			out = append(out, a.ID)
		}
		return out
	}
	if !slices.Equal(ids(got), ids(want)) {
		return fmt.Sprintf("agents %v, want %v", ids(got), ids(want))
	}
	for i, a := range got.list {
		if !reflect.DeepEqual(*a, *want.list[i]) {
			return fmt.Sprintf("agent %s = %+v, want %+v", a.ID, *a, *want.list[i])
		}
		if got.agents[a.ID] != a || got.idx[a.ID] != i {
			return fmt.Sprintf("agent %s: index and map disagree with the list", a.ID)
		}
	}
	if len(got.agents) != len(want.agents) || len(got.idx) != len(want.idx) {
		return fmt.Sprintf("%d agents mapped, want %d", len(got.agents), len(want.agents))
	}
	if !reflect.DeepEqual(got.byGroup, want.byGroup) {
		return fmt.Sprintf("by group %v, want %v", got.byGroup, want.byGroup)
	}
	if !reflect.DeepEqual(got.groups, want.groups) {
		return fmt.Sprintf("groups %v, want %v", got.groups, want.groups)
	}
	return ""
}
