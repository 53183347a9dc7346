package routing

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// Outbound legs ring this long (the agent's device, then the customer).
const (
	outboundAgentTimeout    = 30 * time.Second
	outboundCustomerTimeout = 45 * time.Second
)

// onArrived enqueues a new inbound call: the hotline picks the queue (else
// the default queue) and the queue's wait mode how the caller waits —
// answered with music (ringback on a path that cannot answer alone), or
// unanswered with ringback until an agent answers.
func (e *Engine) onArrived(ctx context.Context, id string, f media.CallArrived) {
	// Held for the store: the replay adopts the leg afresh.
	unbind := func() { e.unbindLeg(f.Leg) }
	if e.holdIfWaiting(f, unbind) {
		return
	}
	m := e.mediaPath()
	q, err := e.queueFor(ctx, f.Hotline)
	if e.holdOnOutage(f, err, unbind) {
		return
	}
	if err != nil {
		e.log.Error("inbound call has no queue; rejecting", "hotline", f.Hotline, "err", err)
		e.unbindLeg(f.Leg)
		if err := m.Hangup(ctx, f.Leg, media.CauseFailed); err != nil && !errors.Is(err, media.ErrLegGone) {
			e.log.Warn("hang up unroutable call", "leg", f.Leg, "err", err)
		}
		return
	}
	groups, err := e.queueGroups(ctx, &q)
	if e.holdOnOutage(f, err, unbind) {
		return
	}
	if err != nil {
		e.log.Error("inbound call: queue groups", "err", err)
		return
	}
	_, err = e.change(ctx, id, func(t *txn) error {
		t.call = &Call{
			ID: id, CustomerNumber: f.Caller, Hotline: f.Hotline, Queue: q.ID, State: StateCalling,
			StateSince: t.now, StartedAt: t.now, EnqueuedAt: t.now, Direction: DirectionInbound,
			Groups: groups, CustomerLeg: f.Leg, Offers: []Offer{},
			Unanswered: q.waitMode() == media.HoldRingback,
		}
		return nil
	})
	if e.holdOnOutage(f, err, unbind) {
		return
	}
	if err != nil {
		e.log.Error("store inbound call", "call", id, "err", err)
		return
	}
	hold := q.waitMode()
	if hold == media.HoldMusic {
		if err := m.Answer(ctx, f.Leg); errors.Is(err, media.ErrNotSupported) {
			hold = media.HoldRingback // a path that cannot answer alone: the caller hears ringback
		} else if err != nil {
			e.log.Warn("answer inbound call", "call", id, "err", err)
		}
	}
	if err := m.Hold(ctx, f.Leg, hold); err != nil {
		e.log.Warn("hold inbound call", "call", id, "mode", hold, "err", err)
	}
	e.Kick()
}

// queueGroups is floor.groupsOf without reading every agent: a call's
// scope costs one read per queue member, not one per agent on the floor.
// The dispatcher refreshes a cache of every queue's groups on each pass;
// a queue created since is computed here.
func (e *Engine) queueGroups(ctx context.Context, q *Queue) ([]string, error) {
	e.qgMu.Lock()
	cached, ok := e.qgCache[q.ID]
	e.qgMu.Unlock()
	if ok {
		return cached, nil
	}
	var out []string
	for _, m := range q.Members {
		if _, _, err := e.agents.Group(ctx, m); err == nil {
			out = append(out, m)
			continue
		} else if !errors.Is(err, presence.ErrNotFound) {
			return nil, err
		}
		a, err := e.agents.Agent(ctx, m)
		if errors.Is(err, presence.ErrNotFound) {
			continue // deleted since the queue was saved
		}
		if err != nil {
			return nil, err
		}
		out = append(out, a.Groups...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// onLegFact handles a fact about one leg of a call.
func (e *Engine) onLegFact(ctx context.Context, callID string, f media.Fact) {
	if e.holdIfWaiting(f, nil) {
		return
	}
	var err error
	switch f := f.(type) {
	case media.LegRinging:
		return // the call is already "ringing" from the moment we dialled
	case media.LegAnswered:
		err = e.onAnswered(ctx, callID, f.Leg)
	case media.LegEnded:
		err = e.onEnded(ctx, callID, f.Leg, f.Cause)
	}
	if e.holdOnOutage(f, err, nil) {
		return
	}
	if err != nil {
		e.log.Error("handle leg fact", "call", callID, "fact", fmt.Sprintf("%T", f), "err", err)
	}
}

// onRingTimeout: a dialled leg rang for the whole ring timeout.
func (e *Engine) onRingTimeout(ctx context.Context, callID string, leg media.LegID) {
	if err := e.onEnded(ctx, callID, leg, media.CauseNoAnswer); err != nil {
		e.log.Error("ring timeout", "call", callID, "leg", leg, "err", err)
	}
}

// onAnswered: a leg answered. For offers the first answer wins.
func (e *Engine) onAnswered(ctx context.Context, callID string, leg media.LegID) error {
	m := e.mediaPath()
	_, err := e.change(ctx, callID, func(t *txn) error {
		c := t.call
		if c == nil {
			t.then(func(ctx context.Context) { e.hangup(ctx, m, leg, media.CauseNormal) })
			return nil
		}
		if c.Monitor != nil && c.Monitor.Leg == leg {
			c.Monitor.Answered = true
			return nil
		}
		i := c.offer(leg)
		if i < 0 {
			return nil // an answer we no longer wait for (cancelled, timed out)
		}
		o := c.removeOffer(i)
		t.then(func(context.Context) { e.timers.cancel("ring:" + string(leg)) })
		switch o.Kind {
		case OfferAgentOut:
			// The agent picked up their outbound call: now ring the customer.
			c.AgentLeg = leg
			t.then(func(ctx context.Context) { e.dialCustomer(ctx, callID) })
			return nil
		case OfferCustomer:
			c.CustomerLeg = leg
			if err := t.sys(ctx, c.Agent, presence.SysTalking, &c.ID); err != nil {
				return err
			}
			if err := c.setState(StateAnswered, t.now); err != nil {
				return err
			}
			c.AnsweredAt = ptr(t.now)
			c.WasAnswered = true
			agentLeg := c.AgentLeg
			t.then(func(ctx context.Context) { e.connect(ctx, m, callID, agentLeg, leg) })
			return t.reached(ctx, c.CustomerNumber)
		}
		// OfferRouted, OfferTakeover: this agent wins; the others stop ringing.
		if err := e.cancelOffers(ctx, t, m); err != nil {
			return err
		}
		c.AgentLeg = leg
		c.Agent = o.Agent
		if err := t.sys(ctx, o.Agent, presence.SysTalking, &c.ID); err != nil {
			return err
		}
		if err := c.setState(StateAnswered, t.now); err != nil {
			return err
		}
		first := !c.WasAnswered
		c.WasAnswered = true
		if c.AnsweredAt == nil {
			c.AnsweredAt = ptr(t.now)
		}
		customer := c.CustomerLeg
		rejoin := c.Monitor != nil && c.Monitor.Leg == ""
		answerFirst := c.Unanswered
		c.Unanswered = false
		t.then(func(ctx context.Context) {
			if answerFirst {
				// The caller waited unanswered (ringback): answer now that
				// an agent has. A path that answers by connecting (the SIP
				// path) says it cannot answer alone.
				if err := m.Answer(ctx, customer); err != nil && !errors.Is(err, media.ErrNotSupported) {
					e.log.Warn("answer the waiting caller", "call", callID, "err", err)
				}
			}
			e.connect(ctx, m, callID, customer, leg)
			if rejoin {
				e.rejoinMonitor(ctx, callID)
			}
			e.Kick() // queue views changed (one fewer waiting)
		})
		if first && c.Direction == DirectionInbound {
			q, _, err := e.queue(ctx, c.Queue)
			if err != nil && !errors.Is(err, presence.ErrNotFound) {
				return err
			}
			return t.countAnswered(ctx, c, o.Agent, q.ServiceLevelSeconds)
		}
		return nil
	})
	return err
}

// cancelOffers stops every other ringing offer (first answer wins).
func (e *Engine) cancelOffers(ctx context.Context, t *txn, m media.Media) error {
	c := t.call
	for _, o := range c.Offers {
		if o.Agent != "" && o.Kind != OfferCustomer {
			if err := t.release(ctx, o.Agent, 0); err != nil {
				return err
			}
		}
		leg := o.Leg
		t.then(func(ctx context.Context) {
			e.unbindLeg(leg)
			e.hangup(ctx, m, leg, media.CauseCancelled)
		})
	}
	c.Offers = []Offer{}
	return nil
}

// onEnded: a leg is gone (or its ring timeout ran out: cause no_answer).
func (e *Engine) onEnded(ctx context.Context, callID string, leg media.LegID, cause media.Cause) error {
	m := e.mediaPath()
	_, err := e.change(ctx, callID, func(t *txn) error {
		c := t.call
		if c == nil {
			t.then(func(context.Context) { e.unbindLeg(leg) })
			return nil
		}
		switch {
		case leg == c.CustomerLeg:
			who := "caller"
			if c.Direction == DirectionOutbound {
				who = "customer"
			}
			return e.finishExcept(ctx, t, leg, who+" hung up")
		case leg == c.AgentLeg:
			return e.finishExcept(ctx, t, leg, "agent hung up")
		case c.Monitor != nil && c.Monitor.Leg == leg:
			c.Monitor = nil
			t.monReason = "the supervisor's leg ended (" + string(cause) + ")"
			t.then(func(context.Context) { e.unbindLeg(leg) })
			return nil
		}
		i := c.offer(leg)
		if i < 0 {
			t.then(func(context.Context) { e.unbindLeg(leg) })
			return nil
		}
		o := c.removeOffer(i)
		t.attemptEnded(o, OutcomeOf(cause))
		t.then(func(ctx context.Context) {
			e.unbindLeg(leg)
			if cause == media.CauseNoAnswer {
				// Our own ring timeout, or the path's: make sure it stops ringing.
				e.hangup(ctx, m, leg, media.CauseNoAnswer)
			}
		})
		switch o.Kind {
		case OfferAgentOut:
			return e.finish(ctx, t, "the agent did not answer ("+string(cause)+")")
		case OfferCustomer:
			return e.finish(ctx, t, "the customer did not answer ("+string(cause)+")")
		case OfferRouted:
			// Whatever ended the offer — no answer, busy, declined, a
			// device not registered or unreachable — the call did not reach
			// the agent: RONA, as for a ring timeout (README.md, "Floor
			// rules"). Only the caller hanging up (the customer leg, above)
			// puts nobody in RONA.
			if err := t.rona(ctx, o.Agent); err != nil {
				return err
			}
		default:
			if err := t.release(ctx, o.Agent, 0); err != nil {
				return err
			}
			if c.Skip == nil {
				c.Skip = map[string]time.Time{}
			}
			c.Skip[o.Agent] = t.now.Add(e.skipFor)
		}
		if len(c.Offers) == 0 && c.AgentLeg == "" {
			return e.unanswered(ctx, t, "nobody answered")
		}
		return nil
	})
	return err
}

// rona: the agent let a routed call ring out. They stay out of routing
// until they (or their supervisor) choose a status.
func (t *txn) rona(ctx context.Context, id string) error {
	a, err := t.agent(ctx, id)
	if errors.Is(err, presence.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if a.SystemStatus != presence.SysRinging || a.CallID == nil || *a.CallID != t.call.ID {
		return nil
	}
	return t.sys(ctx, id, presence.SysRONA, nil)
}

// finish ends the call: every leg hung up, agents released (into wrap-up
// if they talked), monitor ended, missed counted for an inbound call that
// never reached an agent.
func (e *Engine) finish(ctx context.Context, t *txn, reason string) error {
	return e.finishExcept(ctx, t, "", reason)
}

func (e *Engine) finishExcept(ctx context.Context, t *txn, gone media.LegID, reason string) error {
	c := t.call
	m := e.mediaPath()
	var wrapup time.Duration
	// An outbound call shows its hotline's queue but takes no wrap-up
	// from it: after an outbound call the agent's status follows the
	// account's available-after-outdial setting.
	if c.Queue != "" && c.Direction == DirectionInbound {
		q, _, err := e.queue(ctx, c.Queue)
		if err != nil && !errors.Is(err, presence.ErrNotFound) {
			return err
		}
		wrapup = q.wrapup()
	}
	for _, o := range c.Offers {
		if o.Agent != "" && o.Kind != OfferCustomer {
			if err := t.release(ctx, o.Agent, 0); err != nil {
				return err
			}
		}
	}
	if c.Agent != "" {
		if err := e.releaseLast(ctx, t, c, wrapup); err != nil {
			return err
		}
	}
	if c.Monitor != nil {
		t.monReason = "the call ended"
	}
	if c.Direction == DirectionInbound && !c.WasAnswered {
		t.countMissed(c)
	}
	legs := c.legs()
	t.end(reason)
	cause := media.CauseNormal
	if t.endCause != "" {
		cause = t.endCause
	}
	t.then(func(ctx context.Context) {
		for _, l := range legs {
			e.unbindLeg(l)
			if l != gone {
				e.hangup(ctx, m, l, cause)
			}
		}
		e.Kick()
	})
	return nil
}

// releaseLast releases the call's agent as the call ends. After an
// outbound call the agent picked up (whether or not the customer did),
// with the account's "available after outdial" setting,
// the agent is made available even if they dialled from a not-available
// status; without it they keep the status they had (README.md, "Floor
// rules").
func (e *Engine) releaseLast(ctx context.Context, t *txn, c *Call, wrapup time.Duration) error {
	onCall := false
	if a, err := t.agent(ctx, c.Agent); err == nil {
		onCall = a.CallID != nil && *a.CallID == c.ID
	} else if !errors.Is(err, presence.ErrNotFound) {
		return err
	}
	if err := t.release(ctx, c.Agent, wrapup); err != nil {
		return err
	}
	if !onCall || c.Direction != DirectionOutbound || c.AgentLeg == "" {
		return nil // not an outbound call the agent took part in
	}
	set, err := e.agents.Settings(ctx)
	if err != nil {
		return err
	}
	if set.AvailableAfterOutdial {
		return t.callStatus(ctx, c.Agent, presence.StatusAvailable)
	}
	return nil
}

// hangup ends a leg, tolerating one that is already gone.
func (e *Engine) hangup(ctx context.Context, m media.Media, leg media.LegID, cause media.Cause) {
	if leg == "" {
		return
	}
	e.noteHungUp(leg)
	if err := m.Hangup(ctx, leg, cause); err != nil && !errors.Is(err, media.ErrLegGone) {
		e.log.Warn("hang up leg", "leg", leg, "err", err)
	}
}

// connect bridges two legs; if the media path cannot, the call cannot go
// on, so it ends rather than leaving two people in silence.
func (e *Engine) connect(ctx context.Context, m media.Media, callID string, a, b media.LegID) {
	if err := m.Connect(ctx, a, b); err != nil {
		e.log.Error("connect legs; ending the call", "call", callID, "err", err)
		if _, err := e.change(ctx, callID, func(t *txn) error {
			if t.call == nil {
				return nil
			}
			return e.finish(ctx, t, "the media path could not connect the call: "+err.Error())
		}); err != nil {
			e.log.Error("end unconnectable call", "call", callID, "err", err)
		}
	}
}

// resync ends the legs the media path no longer has after a reconnect.
func (e *Engine) resync(ctx context.Context, callID string, present map[media.LegID]bool) {
	r, err := e.st.Get(ctx, state.KindCall, callID)
	if err != nil {
		return
	}
	c, err := decodeCall(r)
	if err != nil {
		return
	}
	for _, l := range c.legs() {
		if !present[l] {
			if err := e.onEnded(ctx, callID, l, media.CauseFailed); err != nil {
				e.log.Error("resync", "call", callID, "leg", l, "err", err)
			}
		}
	}
}

// onDevice records a device (un)registration as presence. The media path
// names the device by its SIP user ("a3", "a3-desk") or endpoint
// ("PJSIP/a3-desk"); the agent owning it is the one whose id it is, else
// the one whose app or desk device it names.
func (e *Engine) onDevice(ctx context.Context, f media.DeviceState) {
	if e.holdIfWaiting(f, nil) {
		return
	}
	id, device := f.AgentID, deviceUser(f.AgentID)
	_, err := e.agents.DeviceState(ctx, id, device, f.Registered, f.Until)
	if errors.Is(err, presence.ErrNotFound) {
		for _, name := range []string{f.AgentID, f.Device} {
			if owner, ok := e.deviceOwner(ctx, name); ok && name != "" {
				id = owner
				_, err = e.agents.DeviceState(ctx, id, device, f.Registered, f.Until)
				break
			}
		}
	}
	if e.holdOnOutage(f, err, nil) {
		return
	}
	if err != nil {
		e.log.Info("device state for unknown agent", "agent", id, "device", f.Device, "err", err)
		return
	}
	if f.Registered {
		e.Kick()
	}
}

// allCalls lists every live call.
func (e *Engine) allCalls(ctx context.Context) ([]Call, error) {
	recs, err := e.st.List(ctx, state.KindCall)
	if err != nil {
		return nil, fmt.Errorf("list calls: %w", err)
	}
	out := make([]Call, 0, len(recs))
	for _, r := range recs {
		c, err := decodeCall(r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// deviceOwner finds the agent whose record names device as theirs.
func (e *Engine) deviceOwner(ctx context.Context, device string) (string, bool) {
	agents, err := e.agents.Agents(ctx)
	if err != nil {
		return "", false
	}
	for _, a := range agents {
		if a.OwnsDevice(device) || a.OwnsDevice(deviceUser(device)) {
			return a.ID, true
		}
	}
	return "", false
}
