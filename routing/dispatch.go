package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// errNotWaiting: the call moved on (answered, ended, already ringing)
// between the dispatcher's read and the offer.
var errNotWaiting = errors.New("call is no longer waiting")

// dispatchPass matches waiting calls to routable agents, oldest call
// first across every queue (a call that RONA'd keeps its original
// position), and hands each offer to the call's loop.
func (e *Engine) dispatchPass(ctx context.Context) {
	e.noneWaiting.Store(false)
	e.obs.DispatchPass()
	e.sweepParked()
	if e.hasSuspects() {
		e.submit("orphans", e.hangUpOrphans)
	}
	calls, err := e.passCalls(ctx)
	if err != nil {
		e.log.Error("dispatch: list calls", "err", err)
		return
	}
	f, err := e.passFloor(ctx)
	if err != nil {
		e.log.Error("dispatch: read agents", "err", err)
		return
	}
	e.expireWrapUps(f)
	queues, err := e.allQueues(ctx)
	if err != nil {
		e.log.Error("dispatch: list queues", "err", err)
		return
	}
	now := e.now()
	counters, err := e.st.Counters(ctx, statsKey(dayOf(now, e.loc())))
	if err != nil {
		e.log.Error("dispatch: read counters", "err", err)
		return
	}
	lv := &live{floor: f, calls: calls, counters: counters, now: now}
	e.publishQueues(ctx, lv, queues)
	e.announceWaits(ctx, lv)
	var waiting []Call
	for _, c := range calls {
		if c.Direction == DirectionInbound && c.State == StateCalling && len(c.Offers) == 0 && c.AgentLeg == "" {
			waiting = append(waiting, c)
		}
	}
	if len(waiting) == 0 {
		e.noneWaiting.Store(true)
		return
	}
	if now := e.now(); now.UnixNano() < e.mediaDownUntil.Load() {
		// The media path just said it is down: do not reserve (and churn
		// the statuses of) agents it cannot ring; the tick retries.
		return
	}
	slices.SortFunc(waiting, func(a, b Call) int {
		if c := a.EnqueuedAt.Compare(b.EnqueuedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	byID := make(map[string]*Queue, len(queues))
	for i := range queues {
		byID[queues[i].ID] = &queues[i]
	}
	// Agents' answered counts matter only to fewest_calls queues: picked
	// out of today's counters once, when the first such queue needs them.
	var today map[string]int64
	now = e.now()
	taken := map[string]bool{}
	byQueue := map[string]*queueCandidates{} // built once per pass (queueCandidates)
	var offers []startedOffer
	for _, c := range waiting {
		if e.now().UnixNano() < e.mediaDownUntil.Load() {
			break
		}
		q := byID[c.Queue]
		if q == nil {
			continue
		}
		if q.MaxWaitSeconds > 0 && !now.Before(c.EnqueuedAt.Add(time.Duration(q.MaxWaitSeconds)*time.Second)) {
			qq := *q
			err := e.on(ctx, c.ID, func(ctx context.Context) error { return e.overflow(ctx, c.ID, qq) })
			if err != nil && !errors.Is(err, errNotWaiting) {
				e.log.Warn("queue overflow failed", "call", c.ID, "queue", q.ID, "err", err)
			}
			continue
		}
		qc := byQueue[q.ID]
		if qc == nil {
			if q.Strategy == FewestCalls && today == nil {
				today = agentsAnswered(counters)
			}
			qc = f.queueCandidates(q, today)
			byQueue[q.ID] = qc
		}
		cands := qc.filter(e.candBuf[:0], func(id string) bool {
			return taken[id] || now.Before(c.Skip[id])
		})
		e.candBuf = cands
		lastPos := -1
		if q.Strategy == RoundRobin {
			lastPos = slices.Index(qc.members, e.rrCursor(ctx, q.ID))
		}
		picks := Select(q.Strategy, cands, lastPos, e.intn)
		if len(picks) == 0 {
			continue
		}
		for _, id := range picks {
			taken[id] = true
		}
		// The pass waits for reservations only, and for all of them at
		// once: each goes on its call's loop, which may be busy with another
		// call's round trip to the media server, and the dial follows on
		// that loop. Waiting for each dial, or for each reservation in turn,
		// made calls queue behind each other's.
		qq := *q
		offers = append(offers, startedOffer{call: c.ID, picks: picks,
			wait: e.startReserved(ctx, c.ID, func(ctx context.Context, reserved func(error)) error {
				return e.offer(ctx, c.ID, qq, picks, reserved)
			})})
	}
	// The next pass starts after these reservations: it sees their
	// agents taken and their calls offered.
	for _, o := range offers {
		if err := o.wait(); err != nil && !errors.Is(err, errNotWaiting) {
			e.log.Warn("offer failed", "call", o.call, "agents", o.picks, "err", err)
		}
	}
}

// startedOffer is an offer a pass started and waits for.
type startedOffer struct {
	call  string
	picks []string
	wait  func() error
}

// overflow handles a call that waited q.MaxWaitSeconds in q: counted as
// abandoned for q, then hung up with q.Overflow.Cause, or moved to
// q.Overflow.Queue where it waits from now (a missing target queue hangs
// up instead).
func (e *Engine) overflow(ctx context.Context, callID string, q Queue) error {
	_, err := e.change(ctx, callID, func(t *txn) error {
		c := t.call
		if c == nil || c.Queue != q.ID || c.State != StateCalling || len(c.Offers) > 0 || c.AgentLeg != "" {
			return errNotWaiting
		}
		reason := fmt.Sprintf("waited %d s in queue %s, its maximum", q.MaxWaitSeconds, q.ID)
		if target := q.Overflow.Queue; target != "" {
			if next, _, err := e.queue(ctx, target); err == nil {
				t.countAbandoned(c)
				groups, err := e.queueGroups(ctx, &next)
				if err != nil {
					return err
				}
				c.Queue, c.Groups, c.EnqueuedAt = next.ID, groups, t.now
				c.Skip = nil
				e.log.Info("queue overflow: moved", "call", c.ID, "from", q.ID, "to", next.ID)
				t.then(func(context.Context) { e.Kick() })
				return nil
			} else if !errors.Is(err, presence.ErrNotFound) {
				return err
			}
		}
		t.endCause = media.CauseNoAnswer
		if q.Overflow.Cause != "" {
			t.endCause = q.Overflow.Cause
		}
		e.log.Info("queue overflow: hung up", "call", c.ID, "queue", q.ID, "cause", t.endCause)
		return e.finish(ctx, t, reason)
	})
	return err
}

func (e *Engine) intn(n int) int {
	e.rndMu.Lock()
	defer e.rndMu.Unlock()
	return e.rnd.IntN(n)
}

// agentsAnswered picks every agent's answered count out of today's
// counters (fewest_calls).
func agentsAnswered(all map[string]int64) map[string]int64 {
	out := map[string]int64{}
	prefix := field(mAnswered, "agent=")
	for k, v := range all {
		if id, ok := strings.CutPrefix(k, prefix); ok {
			out[id] = v
		}
	}
	return out
}

func rrKey(queue string) string { return "rr:" + queue }

// rrCursor is the agent round_robin offered last in the queue.
func (e *Engine) rrCursor(ctx context.Context, queue string) string {
	r, err := e.st.Get(ctx, state.KindMeta, rrKey(queue))
	if err != nil {
		return ""
	}
	return string(r.Data)
}

// pendingDial is one leg to dial for an offer that has been reserved.
type pendingDial struct {
	agent    presence.Agent
	kind     OfferKind
	timeout  time.Duration
	number   string // outbound customer leg
	callID   string
	caller   string
	customer media.LegID // the leg the dialled one will be connected to
}

// offer reserves the picked agents (CAS on their records: a concurrent
// reservation by another shard makes us skip them), says how that went
// through reserved, then rings them and records the legs. Runs on the
// call's loop.
func (e *Engine) offer(ctx context.Context, callID string, q Queue, picks []string, reserved func(error)) error {
	var dials []pendingDial
	_, err := e.change(ctx, callID, func(t *txn) error {
		dials = dials[:0]
		c := t.call
		if c == nil || c.State != StateCalling || len(c.Offers) > 0 || c.AgentLeg != "" {
			return errNotWaiting
		}
		for _, id := range picks {
			a, err := t.agent(ctx, id)
			if err != nil || !a.Routable() {
				continue
			}
			if err := t.sys(ctx, id, presence.SysRinging, &c.ID); err != nil {
				continue
			}
			c.Offers = append(c.Offers, Offer{Agent: id, Kind: OfferRouted, Deadline: t.now.Add(q.ringTimeout())})
			dials = append(dials, pendingDial{agent: *a, kind: OfferRouted, timeout: q.ringTimeout(), callID: c.ID, caller: c.CustomerNumber, customer: c.CustomerLeg})
		}
		if len(dials) == 0 {
			return errNotWaiting
		}
		if err := c.setState(StateRinging, t.now); err != nil {
			return err
		}
		c.Agent = dials[0].agent.ID
		if c.RingStartedAt.IsZero() {
			c.RingStartedAt = t.now
		}
		if q.Strategy == RoundRobin {
			t.meta(rrKey(q.ID), []byte(dials[0].agent.ID))
		}
		return nil
	})
	reserved(err)
	if err != nil {
		return err
	}
	if err := e.dialOffers(ctx, callID, dials); err != nil {
		e.log.Warn("ringing the reserved agents failed", "call", callID, "agents", picks, "err", err)
	}
	return nil
}

// dialOffers rings reserved offers and records their legs. A routed Dial
// refused as unreachable puts its agent in RONA; any other Dial that
// fails at once (media path down, not supported) releases its agent
// (skipped for this call a while) and,
// when nothing else is ringing, puts the call back in its queue or, for
// an outbound call, ends it.
func (e *Engine) dialOffers(ctx context.Context, callID string, dials []pendingDial) error {
	m := e.mediaPath()
	var results []dialResult
	for _, d := range dials {
		req := media.DialRequest{CallID: callID, Customer: d.customer, Timeout: d.timeout, CallerID: d.caller, Number: d.number,
			Target: media.TargetOf(d.agent)}
		leg, err := e.dialLeg(ctx, m, req)
		if err == nil {
			e.armRing(callID, leg, d.timeout)
		}
		results = append(results, dialResult{agent: d.agent.ID, kind: d.kind, leg: leg, err: err})
	}
	var firstErr error
	_, err := e.change(ctx, callID, func(t *txn) error {
		firstErr = nil
		c := t.call
		if c == nil {
			return nil
		}
		for _, r := range results {
			i := slices.IndexFunc(c.Offers, func(o Offer) bool { return o.Agent == r.agent && o.Kind == r.kind && o.Leg == "" })
			if i < 0 {
				continue
			}
			if r.err == nil {
				c.Offers[i].Leg = r.leg
				continue
			}
			if firstErr == nil {
				firstErr = fmt.Errorf("ring %s: %w", r.agent, r.err)
			}
			if errors.Is(r.err, media.ErrMediaUnavailable) {
				e.mediaDownUntil.Store(t.now.Add(e.skipFor).UnixNano())
			}
			t.attemptEnded(c.removeOffer(i), OutcomeUnreachable)
			if r.kind == OfferRouted && errors.Is(r.err, media.ErrUnreachable) {
				// The device cannot be reached: RONA, as if it had rung
				// out (README.md, "Floor rules").
				if err := t.rona(ctx, r.agent); err != nil {
					return err
				}
				continue
			}
			if r.agent != "" && r.kind != OfferCustomer {
				if err := t.release(ctx, r.agent, 0); err != nil {
					return err
				}
				if c.Skip == nil {
					c.Skip = map[string]time.Time{}
				}
				c.Skip[r.agent] = t.now.Add(e.skipFor)
			}
		}
		if len(c.Offers) == 0 && c.AgentLeg == "" || customerDialFailed(c, results) {
			return e.unanswered(ctx, t, "could not ring anyone")
		}
		return nil
	})
	if err != nil {
		return err
	}
	return firstErr
}

type dialResult struct {
	agent string
	kind  OfferKind
	leg   media.LegID
	err   error
}

// customerDialFailed: an outbound call whose customer leg could not be
// dialled has nothing left to do.
func customerDialFailed(c *Call, results []dialResult) bool {
	for _, r := range results {
		if r.kind == OfferCustomer && r.err != nil && c.Direction == DirectionOutbound {
			return true
		}
	}
	return false
}

// unanswered handles a call left with nobody ringing and no agent: an
// inbound call goes back to its queue at its original position; an
// outbound call ends.
func (e *Engine) unanswered(ctx context.Context, t *txn, reason string) error {
	c := t.call
	if c.Direction == DirectionOutbound {
		return e.finish(ctx, t, reason)
	}
	if err := c.setState(StateCalling, t.now); err != nil {
		return err
	}
	t.then(func(context.Context) { e.Kick() })
	return nil
}

// meta stages a small bookkeeping record.
func (t *txn) meta(id string, data []byte) {
	t.metas = append(t.metas, state.Put{Kind: state.KindMeta, ID: id, Data: data, IfVersion: state.AnyVersion})
}

// publishQueues emits a "queue" event for every queue whose live view
// changed since the last pass (ignoring the ever-growing longest wait, so
// a busy queue does not flood the log every tick). Only the dispatcher
// goroutine touches queueSeen.
func (e *Engine) publishQueues(ctx context.Context, l *live, queues []Queue) {
	var tx state.Tx
	seen := make(map[string]string, len(queues))
	groups := make(map[string][]string, len(queues))
	for _, q := range queues {
		groups[q.ID] = l.floor.groupsOf(&q)
		v := l.queueView(q)
		key := v
		key.LongestWaitSeconds = 0
		b, err := json.Marshal(key)
		if err != nil {
			continue
		}
		seen[q.ID] = string(b)
		if e.queueSeen[q.ID] == string(b) {
			continue
		}
		if err := addEvent(&tx, EventQueue, state.Scope{Queue: q.ID, Groups: groups[q.ID]}, v); err != nil {
			continue
		}
	}
	e.qgMu.Lock()
	e.qgCache = groups
	e.qgMu.Unlock()
	if len(tx.Events) > 0 {
		if _, err := e.commit(ctx, tx); err != nil {
			e.log.Warn("queue events", "err", err)
			return
		}
	}
	e.queueSeen = seen
}

// armRing starts the ring timeout of a leg: when it fires the leg is hung
// up and handled as "no answer", whatever the media path does.
func (e *Engine) armRing(callID string, leg media.LegID, d time.Duration) {
	if d <= 0 {
		d = time.Millisecond
	}
	e.timers.set("ring:"+string(leg), e.clock.AfterFunc(d, func() {
		e.submit(callID, func(ctx context.Context) { e.onRingTimeout(ctx, callID, leg) })
	}))
}

// armWrapUp ends an agent's wrap-up when its timer runs out.
func (e *Engine) armWrapUp(agentID string, until time.Time) {
	d := until.Sub(e.now())
	if d < 0 {
		d = 0
	}
	e.timers.set("wrap:"+agentID, e.clock.AfterFunc(d, func() {
		e.submit("agent:"+agentID, func(ctx context.Context) { e.endWrapUpIfDue(ctx, agentID) })
	}))
}

// endWrapUpIfDue returns the agent to available if their wrap-up ran out
// (an early end, a new call or a restart may have got there first).
func (e *Engine) endWrapUpIfDue(ctx context.Context, agentID string) {
	changed := false
	_, err := e.agents.Mutate(ctx, agentID, func(a *presence.Agent, now time.Time) ([]presence.HistoryRow, error) {
		changed = false
		if a.SystemStatus != presence.SysAfterCallWork || a.WrapUpUntil.IsZero() || now.Before(a.WrapUpUntil) {
			return nil, nil
		}
		row, err := presence.ApplySystemStatus(a, presence.SysAvailable, nil, now)
		if err != nil {
			return nil, err
		}
		changed = true
		return []presence.HistoryRow{row}, nil
	})
	if err != nil && !errors.Is(err, presence.ErrNotFound) {
		e.log.Warn("end wrap-up", "agent", agentID, "err", err)
	}
	if changed {
		e.Kick()
	}
}

// expireWrapUps catches wrap-ups whose timer was lost (a restart).
func (e *Engine) expireWrapUps(f *floor) {
	now := e.now()
	for id, a := range f.agents {
		if a.SystemStatus == presence.SysAfterCallWork && !a.WrapUpUntil.IsZero() && !now.Before(a.WrapUpUntil) {
			e.submit("agent:"+id, func(ctx context.Context) { e.endWrapUpIfDue(ctx, id) })
		}
	}
}

// recover rebuilds the leg index and timers from the store at start.
func (e *Engine) recover(ctx context.Context) error {
	calls, err := e.allCalls(ctx)
	if err != nil {
		return err
	}
	now := e.now()
	for _, c := range calls {
		if c.Monitor != nil && c.Monitor.Ringing {
			// Stopped between reserving a monitor and recording its leg:
			// the leg (if any) is an orphan the next resync hangs up.
			if _, err := e.change(ctx, c.ID, func(t *txn) error {
				if t.call != nil && t.call.Monitor != nil && t.call.Monitor.Ringing {
					t.call.Monitor = nil
					t.monReason = "callfloor restarted while ringing the supervisor"
				}
				return nil
			}); err != nil {
				return err
			}
			c.Monitor = nil
		}
		for _, l := range c.legs() {
			e.bindLeg(l, c.ID)
		}
		for _, o := range c.Offers {
			if o.Leg != "" {
				e.armRing(c.ID, o.Leg, o.Deadline.Sub(now))
			}
		}
	}
	agents, err := e.agents.Agents(ctx)
	if err != nil {
		return err
	}
	for _, a := range agents {
		if a.SystemStatus == presence.SysAfterCallWork && !a.WrapUpUntil.IsZero() {
			e.armWrapUp(a.ID, a.WrapUpUntil)
		}
	}
	return nil
}
