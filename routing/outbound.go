package routing

import (
	"context"
	"errors"
	"fmt"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// Originate places an outbound click-to-call: the agent's device rings
// first (agent "ringing"); when they answer the customer's number is
// dialled; when the customer answers both are connected (agent
// "talking"). The agent themself, an admin or a supervisor of the agent's
// group may place it.
func (e *Engine) Originate(ctx context.Context, actor presence.Actor, agentID, number, campaign string) (CallView, error) {
	if agentID == "" {
		return CallView{}, invalid("agent", "is required")
	}
	if err := e.supports(media.ActionClickToCall); err != nil {
		return CallView{}, err // before anything rings: the path could not bridge the two legs
	}
	entered := number
	number, ok := e.agents.NormalizePhone(entered)
	if !ok {
		return CallView{}, unprocessable("number", fmt.Sprintf("%q is not a phone number; %s", entered, e.agents.PhoneFormats()))
	}
	if len(campaign) > 200 {
		return CallView{}, invalid("campaign", "must be at most 200 characters")
	}
	a, err := e.agents.Agent(ctx, agentID)
	if err != nil {
		if errors.Is(err, presence.ErrNotFound) {
			return CallView{}, unprocessable("agent", fmt.Sprintf("no agent %q", agentID))
		}
		return CallView{}, err
	}
	if !actor.CanManage(&a) {
		return CallView{}, fmt.Errorf("agent %s is outside your groups: %w", agentID, presence.ErrForbidden)
	}
	id := e.newID("c")
	hotline, queue := e.outboundLine(ctx, &a)
	var view CallView
	err = e.on(ctx, id, func(ctx context.Context) error {
		var dial pendingDial
		_, err := e.change(ctx, id, func(t *txn) error {
			ag, err := t.agent(ctx, agentID)
			if err != nil {
				return err
			}
			if ag.HasCall() || (ag.SystemStatus != presence.SysAvailable && ag.SystemStatus != presence.SysAfterCallWork) {
				return fmt.Errorf("agent %s is %s; they cannot place a call now: %w", agentID, ag.SystemStatus, presence.ErrConflict)
			}
			if err := t.sys(ctx, agentID, presence.SysRinging, &id); err != nil {
				return err
			}
			t.call = &Call{
				ID: id, CustomerNumber: number, Hotline: hotline, Queue: queue, State: StateRinging, StateSince: t.now, StartedAt: t.now,
				EnqueuedAt: t.now, Agent: agentID, Direction: DirectionOutbound, Campaign: campaign,
				Groups: append([]string(nil), ag.Groups...),
				Offers: []Offer{{Agent: agentID, Kind: OfferAgentOut, Deadline: t.now.Add(outboundAgentTimeout)}},
			}
			dial = pendingDial{agent: *ag, kind: OfferAgentOut, timeout: outboundAgentTimeout, callID: id, caller: number}
			return nil
		})
		if err != nil {
			return err
		}
		if err := e.dialOffers(ctx, id, []pendingDial{dial}); err != nil {
			return fmt.Errorf("outbound call to %s: %w", number, err)
		}
		view, err = e.viewCall(ctx, id)
		return err
	})
	return view, err
}

// dialCustomer rings the customer once the agent answered their outbound
// call. Runs on the call's loop.
func (e *Engine) dialCustomer(ctx context.Context, callID string) {
	var dial pendingDial
	_, err := e.change(ctx, callID, func(t *txn) error {
		c := t.call
		if c == nil || c.AgentLeg == "" {
			return errNotWaiting
		}
		a, err := t.agent(ctx, c.Agent)
		if err != nil {
			return err
		}
		c.Offers = append(c.Offers, Offer{Agent: c.Agent, Kind: OfferCustomer, Deadline: t.now.Add(outboundCustomerTimeout)})
		dial = pendingDial{agent: *a, kind: OfferCustomer, timeout: outboundCustomerTimeout, number: c.CustomerNumber, callID: callID,
			caller: c.Hotline}
		return nil
	})
	if err != nil {
		if !errors.Is(err, errNotWaiting) {
			e.log.Error("outbound: ring the customer", "call", callID, "err", err)
		}
		return
	}
	if err := e.dialOffers(ctx, callID, []pendingDial{dial}); err != nil {
		e.log.Warn("outbound: customer could not be rung", "call", callID, "err", err)
	}
}

// viewCall reads and renders one call.
func (e *Engine) viewCall(ctx context.Context, id string) (CallView, error) {
	c, err := e.getCall(ctx, id)
	if err != nil {
		return CallView{}, err
	}
	return c.View(e.now(), e.loc()), nil
}

// outboundLine is the hotline a customer sees when an agent calls them,
// and the queue it belongs to: the first hotline of the first queue (by
// id) the agent serves, directly or through a group, so call-backs reach
// the floor. The call shows both (README.md, "Floor rules"); "" leaves
// the media path's default caller id and no queue.
func (e *Engine) outboundLine(ctx context.Context, a *presence.Agent) (hotline, queue string) {
	queues, err := e.allQueues(ctx)
	if err != nil {
		e.log.Warn("outbound: read queues for the caller id", "agent", a.ID, "err", err)
		return "", ""
	}
	for _, q := range queues {
		if len(q.Hotlines) == 0 {
			continue
		}
		for _, m := range q.Members {
			if m == a.ID || a.InGroup(m) {
				return q.Hotlines[0], q.ID
			}
		}
	}
	return "", ""
}
