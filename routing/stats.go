package routing

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/callfloor/callfloor/presence"
)

// Stats is GET /v1/stats/today (DESIGN.md, Today's counters).
type Stats struct {
	Accepted       int64       `json:"accepted"`
	Missed         int64       `json:"missed"`
	AvgWaitSeconds int64       `json:"avg_wait_seconds"` // whole seconds (API.md), rounded
	InIVR          int         `json:"in_ivr"`
	Waiting        int         `json:"waiting"`
	Talking        int         `json:"talking"`
	Agents         AgentCounts `json:"agents"`
	DayStart       time.Time   `json:"day_start"`
	Queue          string      `json:"queue,omitempty"`
	Group          string      `json:"group,omitempty"`
}

// AgentCounts splits agents by what they are doing right now.
type AgentCounts struct {
	Free     int `json:"free"`     // available, not talking, not being rung
	Talking  int `json:"talking"`  // in an inbound (or internal) call
	Ringing  int `json:"ringing"`  // being rung by an inbound call
	Outbound int `json:"outbound"` // on an outbound call, ringing or talking
}

// Stats returns today's counters for the floor, a queue or a group. The
// account's time zone decides where today starts. The whole floor is for
// admins; others ask for a queue or group they can see.
func (e *Engine) Stats(ctx context.Context, actor presence.Actor, queue, group string) (Stats, error) {
	if queue != "" && group != "" {
		return Stats{}, invalid("group", "give queue or group, not both")
	}
	l, err := e.readLive(ctx)
	if err != nil {
		return Stats{}, err
	}
	dim := dimAll
	inScope := func(c *Call) bool { return true }
	agentIn := func(a *presence.Agent) bool { return true }
	switch {
	case queue != "":
		q, _, err := e.queue(ctx, queue)
		if err != nil {
			return Stats{}, err
		}
		if !canSeeQueue(actor, l.floor.groupsOf(&q)) {
			return Stats{}, fmt.Errorf("queue %s is outside your groups: %w", queue, presence.ErrForbidden)
		}
		dim = "queue=" + queue
		members := map[string]bool{}
		for _, id := range l.floor.members(&q) {
			members[id] = true
		}
		inScope = func(c *Call) bool { return c.Queue == queue }
		agentIn = func(a *presence.Agent) bool { return members[a.ID] }
	case group != "":
		if !actor.CanSeeGroups([]string{group}) {
			return Stats{}, fmt.Errorf("group %s is outside your groups: %w", group, presence.ErrForbidden)
		}
		dim = "group=" + group
		inScope = func(c *Call) bool { return slices.Contains(c.Groups, group) }
		agentIn = func(a *presence.Agent) bool { return a.InGroup(group) }
	case !actor.IsAdmin():
		return Stats{}, fmt.Errorf("the whole floor's counters are for admins; ask for ?queue= or ?group=: %w", presence.ErrForbidden)
	}
	return l.stats(e.loc(), dim, queue, group, inScope, agentIn), nil
}

// stats computes the counters of one dimension from a live snapshot.
func (l *live) stats(loc *time.Location, dim, queue, group string, inScope func(*Call) bool, agentIn func(*presence.Agent) bool) Stats {
	local := l.now.In(loc)
	s := Stats{
		Accepted: l.counters[field(mAccepted, dim)],
		Missed:   max(0, l.counters[field(mMissed, dim)]),
		DayStart: time.Date(local.Year(), local.Month(), local.Day(), 0, 0, 0, 0, loc),
		Queue:    queue, Group: group,
	}
	if n := l.counters[field(mWaitN, dim)]; n > 0 {
		s.AvgWaitSeconds = int64(math.Round(float64(l.counters[field(mWaitMS, dim)]) / float64(n) / 1000))
	}
	direction := map[string]string{}
	for i := range l.calls {
		c := &l.calls[i]
		direction[c.ID] = c.Direction
		if !inScope(c) {
			continue
		}
		switch {
		case c.State == StateAnswered:
			s.Talking++
		case c.Direction != DirectionInbound:
		case c.State == StateCalling:
			s.InIVR++
		case c.State == StateRinging:
			s.Waiting++
		}
	}
	for _, a := range l.floor.agents {
		if !agentIn(a) {
			continue
		}
		outbound := a.CallID != nil && direction[*a.CallID] == DirectionOutbound
		switch {
		case a.Routable():
			s.Agents.Free++
		case outbound && (a.SystemStatus == presence.SysRinging || a.SystemStatus == presence.SysTalking):
			s.Agents.Outbound++
		case a.SystemStatus == presence.SysTalking:
			s.Agents.Talking++
		case a.SystemStatus == presence.SysRinging:
			s.Agents.Ringing++
		}
	}
	return s
}

// StatsSet is every counter view of the floor from one snapshot.
type StatsSet struct {
	Floor  Stats
	Groups map[string]Stats
	Queues map[string]Stats
	// QueueGroups scopes each queue's stats (the groups it spans).
	QueueGroups map[string][]string
}

// AllStats computes the floor's, every group's and every queue's counters
// from a single read of agents, calls and counters (for the stats event
// publisher: one snapshot instead of one per group and queue). No access
// check: the caller scopes what it publishes.
func (e *Engine) AllStats(ctx context.Context) (StatsSet, error) {
	l, err := e.readLive(ctx)
	if err != nil {
		return StatsSet{}, err
	}
	queues, err := e.allQueues(ctx)
	if err != nil {
		return StatsSet{}, err
	}
	loc := e.loc()
	all := func(*Call) bool { return true }
	everyone := func(*presence.Agent) bool { return true }
	set := StatsSet{
		Floor:  l.stats(loc, dimAll, "", "", all, everyone),
		Groups: map[string]Stats{}, Queues: map[string]Stats{}, QueueGroups: map[string][]string{},
	}
	for g := range l.floor.groups {
		set.Groups[g] = l.stats(loc, "group="+g, "", g,
			func(c *Call) bool { return slices.Contains(c.Groups, g) },
			func(a *presence.Agent) bool { return a.InGroup(g) })
	}
	for _, q := range queues {
		members := map[string]bool{}
		for _, id := range l.floor.members(&q) {
			members[id] = true
		}
		set.Queues[q.ID] = l.stats(loc, "queue="+q.ID, q.ID, "",
			func(c *Call) bool { return c.Queue == q.ID },
			func(a *presence.Agent) bool { return members[a.ID] })
		set.QueueGroups[q.ID] = l.floor.groupsOf(&q)
	}
	return set, nil
}
