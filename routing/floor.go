package routing

import (
	"context"
	"slices"
	"strings"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// floor is a snapshot of agents and groups, indexed for expanding queue
// members: one dispatcher pass, one queue listing or one stats request
// reads it once. Not safe for concurrent use (mark is scratch space).
type floor struct {
	agents  map[string]*presence.Agent
	list    []*presence.Agent
	idx     map[string]int
	byGroup map[string][]int // group id → agent indexes, sorted by agent id
	groups  map[string]bool
	mark    []uint32 // mark[i] == gen: agent i already expanded this time
	gen     uint32
	// expanded caches each queue's expansion on this floor: the indexes
	// it reads do not change while the floor lives (the dispatcher builds
	// a new floor when agents come or go or change groups).
	expanded map[string]*expansion
}

// expansion is a queue's members expanded on one floor, and the buffer
// its routable agents are collected into for a pass.
type expansion struct {
	from     []string // the queue's member list it was expanded from
	idx      []int
	ids      []string
	routable []Candidate
}

// expand returns q's expansion, computing it the first time (or when the
// queue's members changed). Callers must not modify its slices.
func (f *floor) expand(q *Queue) *expansion {
	if x, ok := f.expanded[q.ID]; ok && slices.Equal(x.from, q.Members) {
		return x
	}
	idx := f.memberIdx(q)
	x := &expansion{from: slices.Clone(q.Members), idx: idx, ids: make([]string, len(idx))}
	for k, i := range idx {
		x.ids[k] = f.list[i].ID
	}
	if f.expanded == nil {
		f.expanded = map[string]*expansion{}
	}
	f.expanded[q.ID] = x
	return x
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

func newFloor(agents []presence.Agent) *floor {
	list := make([]*presence.Agent, len(agents))
	for i := range agents {
		list[i] = &agents[i]
	}
	return newFloorOf(list)
}

// newFloorOf indexes agents (the floor keeps the pointers, and reorders
// the slice by agent id).
func newFloorOf(list []*presence.Agent) *floor {
	slices.SortFunc(list, func(a, b *presence.Agent) int { return strings.Compare(a.ID, b.ID) })
	f := &floor{
		agents: make(map[string]*presence.Agent, len(list)), list: make([]*presence.Agent, len(list)),
		idx: make(map[string]int, len(list)), byGroup: map[string][]int{}, groups: map[string]bool{},
		mark: make([]uint32, len(list)),
	}
	for i, a := range list {
		f.agents[a.ID], f.list[i], f.idx[a.ID] = a, a, i
		for _, g := range a.Groups {
			f.byGroup[g] = append(f.byGroup[g], i)
			f.groups[g] = true
		}
	}
	return f
}

// memberIdx expands a queue's members (group ids and agent ids, in order)
// into agent indexes, each once, in member order; groups expand by agent id.
func (f *floor) memberIdx(q *Queue) []int {
	f.gen++
	out := make([]int, 0, 2*len(q.Members))
	add := func(i int) {
		if f.mark[i] != f.gen {
			f.mark[i] = f.gen
			out = append(out, i)
		}
	}
	for _, m := range q.Members {
		if f.groups[m] {
			for _, i := range f.byGroup[m] {
				add(i)
			}
			continue
		}
		if i, ok := f.idx[m]; ok {
			add(i)
		}
	}
	return out
}

// members is memberIdx as agent ids.
func (f *floor) members(q *Queue) []string { return f.expand(q).ids }

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

// candidates lists the routable members of q, skipping some, and the
// expanded member list (round_robin finds its cursor in it).
func (f *floor) candidates(q *Queue, skip func(id string) bool, callsToday map[string]int64) ([]Candidate, []string) {
	qc := f.queueCandidates(q, callsToday)
	return qc.filter(nil, skip), qc.members
}

// queueCandidates is one queue's expanded member list and its routable
// agents, built once per dispatcher pass and filtered for each waiting
// call: building them per call allocated the whole member list for every
// waiting call of every pass (megabytes per pass on a 10,000-agent
// queue; docs/performance.md, issue 15 third round).
type queueCandidates struct {
	members  []string
	routable []Candidate
}

// The routable list reuses the expansion's buffer: it is valid until the
// next queueCandidates of the same queue on the same floor.
func (f *floor) queueCandidates(q *Queue, callsToday map[string]int64) *queueCandidates {
	x := f.expand(q)
	routable := x.routable[:0]
	for pos, i := range x.idx {
		if a := f.list[i]; a.Routable() {
			routable = append(routable, Candidate{ID: a.ID, Pos: pos, LastCallEndedAt: a.LastCallEndedAt, CallsToday: callsToday[a.ID]})
		}
	}
	x.routable = routable
	return &queueCandidates{members: x.ids, routable: routable}
}

// filter appends to buf the routable agents skip does not exclude.
func (qc *queueCandidates) filter(buf []Candidate, skip func(id string) bool) []Candidate {
	for _, c := range qc.routable {
		if !skip(c.ID) {
			buf = append(buf, c)
		}
	}
	return buf
}
