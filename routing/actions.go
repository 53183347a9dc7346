package routing

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// TakeOver drops the agent, holds the customer and rings the supervisor;
// on answer the supervisor talks with the customer.
func (e *Engine) TakeOver(ctx context.Context, actor presence.Actor, callID string) (CallView, error) {
	return e.moveCall(ctx, actor, callID, actor.ID, OfferTakeover)
}

// Transfer moves the customer to another agent without the current
// agent's consent: the current agent is dropped as the new one is rung.
// A monitor ends, with the reason, when the call leaves its queue or team.
func (e *Engine) Transfer(ctx context.Context, actor presence.Actor, callID, agentID string) (CallView, error) {
	if agentID == "" {
		return CallView{}, invalid("agent", "is required")
	}
	return e.moveCall(ctx, actor, callID, agentID, OfferRouted)
}

// moveCall is take over (kind OfferTakeover, target = the supervisor) and
// transfer (OfferRouted, target = the new agent).
func (e *Engine) moveCall(ctx context.Context, actor presence.Actor, callID, target string, kind OfferKind) (CallView, error) {
	action := media.ActionTransfer
	if kind == OfferTakeover {
		action = media.ActionTakeOver
	}
	if err := e.supports(action); err != nil {
		return CallView{}, err
	}
	var view CallView
	err := e.on(ctx, callID, func(ctx context.Context) error {
		var dial pendingDial
		m := e.mediaPath()
		_, err := e.change(ctx, callID, func(t *txn) error {
			c, err := e.liveCall(ctx, t, actor, callID)
			if err != nil {
				return err
			}
			if err := requireAnswered(c); err != nil {
				return err
			}
			if c.Agent == target {
				return conflict("call %s is already with %s", c.ID, target)
			}
			to, err := t.agent(ctx, target)
			if errors.Is(err, presence.ErrNotFound) {
				return unprocessable("agent", fmt.Sprintf("no agent %q", target))
			}
			if err != nil {
				return err
			}
			// The right over the call is not a right over the agent it goes
			// to: a supervisor only rings agents of groups they supervise.
			if !actor.CanManage(to) {
				return fmt.Errorf("agent %s is outside the groups you supervise: %w", target, presence.ErrForbidden)
			}
			if kind == OfferTakeover {
				if to.HasCall() || (to.SystemStatus != presence.SysAvailable && to.SystemStatus != presence.SysAfterCallWork) {
					return conflict("you are %s; finish your call before taking over", to.SystemStatus)
				}
			} else if !to.Routable() {
				return conflict("agent %s is not available (call status %s, system status %s)", target, to.CallStatus, to.SystemStatus)
			}
			timeout := DefaultRingTimeout * time.Second
			var wrapup int
			if c.Queue != "" {
				if q, _, err := e.queue(ctx, c.Queue); err == nil {
					timeout, wrapup = q.ringTimeout(), q.WrapupSeconds
				}
			}
			switch {
			case kind == OfferTakeover:
				e.endMonitorFor(t, c, "the call was taken over by "+actor.ID)
			case c.Monitor != nil:
				same, err := e.inTeam(ctx, t, c, to)
				if err != nil {
					return err
				}
				if !same {
					e.endMonitorFor(t, c, fmt.Sprintf("the call was transferred to %s, outside the queue or team you monitored", target))
				} else {
					e.detachMonitor(t, c)
				}
			}
			old := c.AgentLeg
			if err := t.release(ctx, c.Agent, time.Duration(wrapup)*time.Second); err != nil {
				return err
			}
			if err := t.sys(ctx, target, presence.SysRinging, &c.ID); err != nil {
				return conflict("agent %s cannot be rung now (%v)", target, err)
			}
			c.AgentLeg = ""
			c.Agent = target
			c.Offers = append(c.Offers, Offer{Agent: target, Kind: kind, Deadline: t.now.Add(timeout)})
			if err := c.setState(StateRinging, t.now); err != nil {
				return err
			}
			dial = pendingDial{agent: *to, kind: kind, timeout: timeout, callID: c.ID, caller: c.CustomerNumber, customer: c.CustomerLeg}
			customer := c.CustomerLeg
			t.then(func(ctx context.Context) {
				if err := m.Hold(ctx, customer, media.HoldMusic); err != nil {
					e.log.Warn("hold customer while moving the call", "call", callID, "err", err)
				}
				e.unbindLeg(old)
				e.hangup(ctx, m, old, media.CauseNormal)
			})
			return nil
		})
		if err != nil {
			return err
		}
		if err := e.dialOffers(ctx, callID, []pendingDial{dial}); err != nil {
			return err
		}
		view, err = e.viewCall(ctx, callID)
		if errors.Is(err, presence.ErrNotFound) {
			return fmt.Errorf("call %s ended while being moved: %w", callID, presence.ErrConflict)
		}
		return err
	})
	return view, err
}

// Hangup disconnects both agent and customer.
func (e *Engine) Hangup(ctx context.Context, actor presence.Actor, callID string) (CallView, error) {
	var view CallView
	err := e.actOn(ctx, actor, callID, func(ctx context.Context, t *txn, c *Call) error {
		view = c.View(t.now, e.loc())
		view.Ended = &EndedInfo{At: t.now.In(e.loc()), Reason: "hung up by " + actor.ID}
		return e.finish(ctx, t, "hung up by "+actor.ID)
	})
	return view, err
}

// supports asks the media path's declared capabilities whether it can do
// action at all.
func (e *Engine) supports(action media.Action) error {
	return e.mediaPath().Capabilities().Supports(action)
}
