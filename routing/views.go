package routing

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/callfloor/callfloor/presence"
)

// QueueView is a queue as GET /v1/queues returns it: configuration plus
// live fields.
type QueueView struct {
	Queue
	Waiting             int      `json:"waiting"`
	LongestWaitSeconds  int64    `json:"longest_wait_seconds"`
	AgentsLoggedIn      int      `json:"agents_logged_in"`
	AgentsAvailable     int      `json:"agents_available"`
	AgentsBusy          int      `json:"agents_busy"`
	AnsweredToday       int64    `json:"answered_today"`
	AbandonedToday      int64    `json:"abandoned_today"`
	ServiceLevelPercent *float64 `json:"service_level_percent"`
}

// live is what a view needs besides the queue: a snapshot of agents, the
// live calls and today's counters.
type live struct {
	floor    *floor
	calls    []Call
	counters map[string]int64
	now      time.Time
}

func (e *Engine) readLive(ctx context.Context) (*live, error) {
	f, err := e.readFloor(ctx)
	if err != nil {
		return nil, err
	}
	calls, err := e.allCalls(ctx)
	if err != nil {
		return nil, err
	}
	now := e.now()
	counters, err := e.st.Counters(ctx, statsKey(dayOf(now, e.loc())))
	if err != nil {
		return nil, fmt.Errorf("read counters: %w", err)
	}
	return &live{floor: f, calls: calls, counters: counters, now: now}, nil
}

func (l *live) queueView(q Queue) QueueView {
	v := QueueView{Queue: q}
	if v.Members == nil {
		v.Members = []string{}
	}
	if v.Hotlines == nil {
		v.Hotlines = []string{}
	}
	for _, c := range l.calls {
		if c.Queue != q.ID || c.Direction != DirectionInbound || c.State == StateAnswered {
			continue
		}
		v.Waiting++
		v.LongestWaitSeconds = max(v.LongestWaitSeconds, seconds(l.now.Sub(c.EnqueuedAt)))
	}
	for _, id := range l.floor.members(&q) {
		a := l.floor.agents[id]
		if a.LoggedIn || a.Online {
			v.AgentsLoggedIn++
		}
		switch {
		case a.Routable():
			v.AgentsAvailable++
		case a.SystemStatus == presence.SysRinging || a.SystemStatus == presence.SysTalking:
			v.AgentsBusy++
		}
	}
	dim := "queue=" + q.ID
	v.AnsweredToday = l.counters[field(mAccepted, dim)]
	v.AbandonedToday = l.counters[field(mAbandoned, dim)]
	if total := v.AnsweredToday + v.AbandonedToday; total > 0 {
		p := math.Round(float64(l.counters[field(mSLOK, dim)])*1000/float64(total)) / 10
		v.ServiceLevelPercent = &p
	}
	return v
}

// queueView renders one queue and the groups that scope it.
func (e *Engine) queueView(ctx context.Context, q Queue) (QueueView, []string, error) {
	l, err := e.readLive(ctx)
	if err != nil {
		return QueueView{}, nil, err
	}
	return l.queueView(q), l.floor.groupsOf(&q), nil
}

// canSeeQueue: admins see every queue; others the queues spanning a group
// they supervise or belong to.
func canSeeQueue(actor presence.Actor, groups []string) bool {
	return actor.IsAdmin() || actor.CanSeeGroups(groups)
}

// Queues lists the queues the actor may see, with live fields.
func (e *Engine) Queues(ctx context.Context, actor presence.Actor) ([]QueueView, error) {
	qs, err := e.allQueues(ctx)
	if err != nil {
		return nil, err
	}
	l, err := e.readLive(ctx)
	if err != nil {
		return nil, err
	}
	out := []QueueView{}
	for _, q := range qs {
		if canSeeQueue(actor, l.floor.groupsOf(&q)) {
			out = append(out, l.queueView(q))
		}
	}
	return out, nil
}

// Queue returns one queue with live fields.
func (e *Engine) Queue(ctx context.Context, actor presence.Actor, id string) (QueueView, error) {
	q, _, err := e.queue(ctx, id)
	if err != nil {
		return QueueView{}, err
	}
	v, groups, err := e.queueView(ctx, q)
	if err != nil {
		return QueueView{}, err
	}
	if !canSeeQueue(actor, groups) {
		return QueueView{}, fmt.Errorf("queue %s is outside your groups: %w", id, presence.ErrForbidden)
	}
	return v, nil
}

// CallFilter narrows Calls; empty fields do not filter.
type CallFilter struct {
	Queue, Direction, Agent, State string
}

// canSeeCall: admins, the agent on it, and users who see its groups.
func canSeeCall(actor presence.Actor, c *Call) bool {
	return actor.IsAdmin() || c.Agent == actor.ID || actor.CanSeeGroups(c.Groups)
}

// Calls lists the live calls the actor may see, oldest first.
func (e *Engine) Calls(ctx context.Context, actor presence.Actor, f CallFilter) ([]CallView, error) {
	if f.Direction != "" && f.Direction != DirectionInbound && f.Direction != DirectionOutbound {
		return nil, invalid("direction", "must be inbound or outbound")
	}
	switch CallState(f.State) {
	case "", StateCalling, StateRinging, StateAnswered:
	default:
		return nil, invalid("state", "must be calling, ringing or answered")
	}
	calls, err := e.allCalls(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(calls, func(a, b Call) int { return a.StartedAt.Compare(b.StartedAt) })
	now, loc := e.now(), e.loc()
	out := []CallView{}
	for i := range calls {
		c := &calls[i]
		switch {
		case !canSeeCall(actor, c):
		case f.Queue != "" && c.Queue != f.Queue:
		case f.Direction != "" && c.Direction != f.Direction:
		case f.Agent != "" && c.Agent != f.Agent:
		case f.State != "" && string(c.State) != f.State:
		default:
			out = append(out, c.View(now, loc))
		}
	}
	return out, nil
}

// Call returns one live call.
func (e *Engine) Call(ctx context.Context, actor presence.Actor, id string) (CallView, error) {
	c, err := e.getCall(ctx, id)
	if err != nil {
		return CallView{}, err
	}
	if !canSeeCall(actor, &c) {
		return CallView{}, fmt.Errorf("call %s is outside your groups: %w", id, presence.ErrForbidden)
	}
	return c.View(e.now(), e.loc()), nil
}
