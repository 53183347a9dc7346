package routing

import (
	"context"
	"slices"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// floor is a snapshot of agents and groups, indexed for expanding queue
// members: one dispatcher pass, one queue listing or one stats request
// reads it once.
type floor struct {
	agents  map[string]*presence.Agent
	byGroup map[string][]string // group id → agent ids, sorted
	groups  map[string]bool
}

func (e *Engine) readFloor(ctx context.Context) (*floor, error) {
	list, err := e.agents.Agents(ctx)
	if err != nil {
		return nil, err
	}
	grecs, err := e.st.List(ctx, state.KindGroup)
	if err != nil {
		return nil, err
	}
	f := newFloor(list)
	for _, g := range grecs {
		f.groups[g.ID] = true
	}
	return f, nil
}

func newFloor(list []presence.Agent) *floor {
	f := &floor{agents: make(map[string]*presence.Agent, len(list)), byGroup: map[string][]string{}, groups: map[string]bool{}}
	for i := range list {
		a := &list[i]
		f.agents[a.ID] = a
		for _, g := range a.Groups {
			f.byGroup[g] = append(f.byGroup[g], a.ID)
		}
	}
	for g := range f.byGroup {
		slices.Sort(f.byGroup[g])
		f.groups[g] = true
	}
	return f
}

// members expands a queue's members (group ids and agent ids, in order)
// into agent ids, each once, in member order.
func (f *floor) members(q *Queue) []string {
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, m := range q.Members {
		if f.groups[m] {
			for _, id := range f.byGroup[m] {
				add(id)
			}
			continue
		}
		if _, ok := f.agents[m]; ok {
			add(m)
		}
	}
	return out
}

// groupsOf returns the groups a queue spans: group members, and the
// groups of agent members. Calls in the queue are scoped to them.
func (f *floor) groupsOf(q *Queue) []string {
	var out []string
	for _, m := range q.Members {
		if f.groups[m] {
			out = append(out, m)
		} else if a, ok := f.agents[m]; ok {
			out = append(out, a.Groups...)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// candidates lists the routable members of q, skipping taken ones.
func (f *floor) candidates(q *Queue, skip func(id string) bool, callsToday map[string]int64) ([]Candidate, []string) {
	members := f.members(q)
	var out []Candidate
	for i, id := range members {
		a := f.agents[id]
		if a == nil || !a.Routable() || skip(id) {
			continue
		}
		out = append(out, Candidate{ID: id, Pos: i, LastCallEndedAt: a.LastCallEndedAt, CallsToday: callsToday[id]})
	}
	return out, members
}
