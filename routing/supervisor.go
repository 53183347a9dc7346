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

// getCall reads one call, 404 if it is not live.
func (e *Engine) getCall(ctx context.Context, id string) (Call, error) {
	r, err := e.st.Get(ctx, state.KindCall, id)
	if errors.Is(err, state.ErrNotFound) {
		return Call{}, fmt.Errorf("call %q is not live: %w", id, presence.ErrNotFound)
	}
	if err != nil {
		return Call{}, fmt.Errorf("get call %s: %w", id, err)
	}
	return decodeCall(r)
}

// authorize: an admin, or a supervisor of the group of the agent on the
// call; while no agent has it (or the agent is in no group, e.g. a
// supervisor who took it over), of a group the call's queue spans.
func (e *Engine) authorize(ctx context.Context, t *txn, actor presence.Actor, c *Call) error {
	if actor.IsAdmin() {
		return nil
	}
	if actor.Role != presence.RoleSupervisor {
		return fmt.Errorf("only admins and supervisors act on calls: %w", presence.ErrForbidden)
	}
	groups := c.Groups
	if c.Agent != "" {
		if a, err := t.agent(ctx, c.Agent); err == nil && len(a.Groups) > 0 {
			groups = a.Groups
		}
	}
	for _, g := range groups {
		if actor.SupervisesGroup(g) {
			return nil
		}
	}
	return fmt.Errorf("call %s is outside the groups you supervise: %w", c.ID, presence.ErrForbidden)
}

// actOn runs fn on the call's loop inside a change, with the call loaded
// and the actor authorised.
func (e *Engine) actOn(ctx context.Context, actor presence.Actor, callID string, fn func(ctx context.Context, t *txn, c *Call) error) error {
	return e.on(ctx, callID, func(ctx context.Context) error {
		_, err := e.change(ctx, callID, func(t *txn) error {
			if t.call == nil {
				return fmt.Errorf("call %q is not live: %w", callID, presence.ErrNotFound)
			}
			if err := e.authorize(ctx, t, actor, t.call); err != nil {
				return err
			}
			return fn(ctx, t, t.call)
		})
		return err
	})
}

func conflict(format string, args ...any) error {
	return fmt.Errorf(format+": %w", append(args, presence.ErrConflict)...)
}

func requireAnswered(c *Call) error {
	if c.State != StateAnswered || c.AgentLeg == "" {
		return conflict("call %s is %s, not answered: there is no conversation to act on yet", c.ID, c.State)
	}
	return nil
}

// supervisorTarget is how the supervisor's device is rung.
func supervisorTarget(a *presence.Agent, device string) media.Target {
	t := media.Target{AgentID: a.ID, Distribution: a.Distribution, Device: a.Device, Phone: a.Phone}
	if device != "" {
		t.Device = device
	}
	return t
}

// StartMonitor rings the supervisor's device (or device) and, on answer,
// joins them to the call in mode: listen, whisper or barge. Rules
// (DESIGN.md): one monitor per call; nobody barges a call another
// supervisor monitors.
func (e *Engine) StartMonitor(ctx context.Context, actor presence.Actor, callID string, mode media.MonitorMode, device string) (MonitorView, error) {
	if !mode.Valid() {
		return MonitorView{}, invalid("mode", "must be listen, whisper or barge")
	}
	if len(device) > 256 {
		return MonitorView{}, invalid("device", "must be at most 256 characters")
	}
	var out MonitorView
	err := e.actOn(ctx, actor, callID, func(ctx context.Context, t *txn, c *Call) error {
		if err := requireAnswered(c); err != nil {
			return err
		}
		if c.Agent == actor.ID {
			return conflict("you are the agent on call %s; you cannot monitor it", c.ID)
		}
		if m := c.Monitor; m != nil {
			switch {
			case m.Supervisor == actor.ID && mode == media.MonitorBarge:
				return conflict("you already monitor call %s (monitor %s); switch it with POST /v1/monitors/%s/barge", c.ID, m.ID, m.ID)
			case m.Supervisor == actor.ID:
				return conflict("you already monitor call %s (monitor %s)", c.ID, m.ID)
			case mode == media.MonitorBarge:
				return conflict("call %s is monitored by %s; nobody else can barge into it", c.ID, m.Supervisor)
			default:
				return conflict("call %s is already monitored by %s; one supervisor monitors a call at a time", c.ID, m.Supervisor)
			}
		}
		sup, err := t.agent(ctx, actor.ID)
		if err != nil {
			return fmt.Errorf("your user has no device to ring: %w", err)
		}
		if err := e.checkDevice(ctx, actor, device); err != nil {
			return err
		}
		if sup.HasCall() {
			return conflict("you are on call %s; finish it before monitoring", deref(sup.CallID))
		}
		leg, err := e.monitorLeg(ctx, e.mediaPath(), media.MonitorRequest{
			CallID: c.ID, Customer: c.CustomerLeg, Agent: c.AgentLeg, Supervisor: supervisorTarget(sup, device),
			Mode: mode, Timeout: DefaultRingTimeout * time.Second,
		})
		if err != nil {
			return fmt.Errorf("%s on call %s: %w", mode, c.ID, err)
		}
		m := &Monitor{ID: e.newID("m"), CallID: c.ID, Supervisor: actor.ID, Mode: mode, Leg: leg, Device: device, StartedAt: t.now}
		c.Monitor = m
		out = m.View()
		return nil
	})
	return out, err
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// monitorRecord finds a running monitor by id.
func (e *Engine) monitorRecord(ctx context.Context, id string) (Monitor, error) {
	r, err := e.st.Get(ctx, state.KindMonitor, id)
	if errors.Is(err, state.ErrNotFound) {
		return Monitor{}, fmt.Errorf("monitor %q is not running: %w", id, presence.ErrNotFound)
	}
	if err != nil {
		return Monitor{}, fmt.Errorf("get monitor %s: %w", id, err)
	}
	var m Monitor
	if err := json.Unmarshal(r.Data, &m); err != nil {
		return Monitor{}, fmt.Errorf("decode monitor %s: %w", id, err)
	}
	return m, nil
}

// onMonitor runs fn on a running monitor: its supervisor or an admin.
func (e *Engine) onMonitor(ctx context.Context, actor presence.Actor, id string, fn func(ctx context.Context, t *txn, c *Call, m *Monitor) error) (MonitorView, error) {
	rec, err := e.monitorRecord(ctx, id)
	if err != nil {
		return MonitorView{}, err
	}
	if rec.Supervisor != actor.ID && !actor.IsAdmin() {
		return MonitorView{}, fmt.Errorf("monitor %s belongs to %s: %w", id, rec.Supervisor, presence.ErrForbidden)
	}
	var out MonitorView
	err = e.on(ctx, rec.CallID, func(ctx context.Context) error {
		_, err := e.change(ctx, rec.CallID, func(t *txn) error {
			c := t.call
			if c == nil || c.Monitor == nil || c.Monitor.ID != id {
				return fmt.Errorf("monitor %q is not running: %w", id, presence.ErrNotFound)
			}
			if err := fn(ctx, t, c, c.Monitor); err != nil {
				return err
			}
			out = rec.View()
			if c.Monitor != nil {
				out = c.Monitor.View()
			} else {
				out.Ended, out.Reason = true, t.monReason
			}
			return nil
		})
		return err
	})
	return out, err
}

// PauseMonitor mutes the supervisor without leaving the call.
func (e *Engine) PauseMonitor(ctx context.Context, actor presence.Actor, id string) (MonitorView, error) {
	return e.onMonitor(ctx, actor, id, func(ctx context.Context, t *txn, c *Call, m *Monitor) error {
		if err := following(m); err != nil {
			return err
		}
		if m.Paused {
			return nil
		}
		if err := e.mediaPath().Mute(ctx, m.Leg, true); err != nil {
			return fmt.Errorf("pause monitor %s: %w", id, err)
		}
		m.Paused = true
		return nil
	})
}

// ResumeMonitor unmutes a paused monitor.
func (e *Engine) ResumeMonitor(ctx context.Context, actor presence.Actor, id string) (MonitorView, error) {
	return e.onMonitor(ctx, actor, id, func(ctx context.Context, t *txn, c *Call, m *Monitor) error {
		if err := following(m); err != nil {
			return err
		}
		if !m.Paused {
			return nil
		}
		if err := e.mediaPath().Mute(ctx, m.Leg, false); err != nil {
			return fmt.Errorf("resume monitor %s: %w", id, err)
		}
		m.Paused = false
		return nil
	})
}

// BargeMonitor switches a running monitor to barge. A paused monitor
// cannot barge (resume first), and only the monitor's supervisor barges.
func (e *Engine) BargeMonitor(ctx context.Context, actor presence.Actor, id string) (MonitorView, error) {
	return e.onMonitor(ctx, actor, id, func(ctx context.Context, t *txn, c *Call, m *Monitor) error {
		if err := following(m); err != nil {
			return err
		}
		if m.Supervisor != actor.ID {
			return conflict("call %s is monitored by %s; nobody else can barge into it", c.ID, m.Supervisor)
		}
		if m.Paused {
			return conflict("monitor %s is paused; resume it before barging", m.ID)
		}
		if m.Mode == media.MonitorBarge {
			return nil
		}
		if err := e.mediaPath().SetMonitorMode(ctx, m.Leg, media.MonitorBarge); err != nil {
			return fmt.Errorf("barge monitor %s: %w", id, err)
		}
		m.Mode = media.MonitorBarge
		return nil
	})
}

// following refuses media changes while the monitor waits to re-join a
// call being transferred within the team.
func following(m *Monitor) error {
	if m.Leg == "" {
		return conflict("monitor %s is re-joining the call after a transfer; try again once the new agent answers", m.ID)
	}
	return nil
}

// EndMonitor hangs up the supervisor's leg.
func (e *Engine) EndMonitor(ctx context.Context, actor presence.Actor, id string) (MonitorView, error) {
	m := e.mediaPath()
	return e.onMonitor(ctx, actor, id, func(ctx context.Context, t *txn, c *Call, mon *Monitor) error {
		leg := mon.Leg
		c.Monitor = nil
		t.monReason = "ended by " + actor.ID
		t.then(func(ctx context.Context) {
			e.unbindLeg(leg)
			e.hangup(ctx, m, leg, media.CauseNormal)
		})
		return nil
	})
}

// LogoutGuard refuses logging out a supervisor with a running monitor;
// install it with presence.WithLogoutGuard.
func (e *Engine) LogoutGuard(ctx context.Context, agentID string) error {
	recs, err := e.st.List(ctx, state.KindMonitor)
	if err != nil {
		return fmt.Errorf("list monitors: %w", err)
	}
	for _, r := range recs {
		var m Monitor
		if json.Unmarshal(r.Data, &m) == nil && m.Supervisor == agentID {
			return conflict("%s has a running monitor (%s) on call %s; end it with DELETE /v1/monitors/%s before logging out", agentID, m.ID, m.CallID, m.ID)
		}
	}
	return nil
}

// endMonitorFor ends the call's monitor for reason (the call moved away).
func (e *Engine) endMonitorFor(t *txn, c *Call, reason string) {
	if c.Monitor == nil {
		return
	}
	leg, m := c.Monitor.Leg, e.mediaPath()
	c.Monitor = nil
	t.monReason = reason
	t.then(func(ctx context.Context) {
		e.unbindLeg(leg)
		e.hangup(ctx, m, leg, media.CauseNormal)
	})
}

// detachMonitor drops the supervisor's leg while the call moves to
// another agent of the same team; the monitor stays and re-joins when the
// new agent answers (rejoinMonitor).
func (e *Engine) detachMonitor(t *txn, c *Call) {
	if c.Monitor == nil || c.Monitor.Leg == "" {
		return
	}
	leg, m := c.Monitor.Leg, e.mediaPath()
	c.Monitor.Leg, c.Monitor.Answered = "", false
	t.then(func(ctx context.Context) {
		e.unbindLeg(leg)
		e.hangup(ctx, m, leg, media.CauseNormal)
	})
}

// rejoinMonitor rings the supervisor of a detached monitor again and
// joins them to the call's new conversation, in the same mode (and paused
// if it was). If the media path refuses, the monitor ends with the reason.
func (e *Engine) rejoinMonitor(ctx context.Context, callID string) {
	m := e.mediaPath()
	_, err := e.change(ctx, callID, func(t *txn) error {
		c := t.call
		if c == nil || c.Monitor == nil || c.Monitor.Leg != "" || c.AgentLeg == "" {
			return nil
		}
		mon := c.Monitor
		sup, err := t.agent(ctx, mon.Supervisor)
		if err != nil {
			e.endMonitorFor(t, c, "the supervisor's user is gone")
			return nil
		}
		leg, err := e.monitorLeg(ctx, m, media.MonitorRequest{CallID: c.ID, Customer: c.CustomerLeg, Agent: c.AgentLeg,
			Supervisor: supervisorTarget(sup, mon.Device), Mode: mon.Mode, Timeout: DefaultRingTimeout * time.Second})
		if err != nil {
			c.Monitor = nil
			t.monReason = fmt.Sprintf("could not follow the call to %s: %v", c.Agent, err)
			return nil
		}
		mon.Leg = leg
		paused := mon.Paused
		t.then(func(ctx context.Context) {
			if paused {
				if err := m.Mute(ctx, leg, true); err != nil {
					e.log.Warn("keep monitor paused", "call", callID, "err", err)
				}
			}
		})
		return nil
	})
	if err != nil {
		e.log.Error("rejoin monitor", "call", callID, "err", err)
	}
}

// checkDevice refuses a monitor device that belongs to an agent the actor
// may not manage: naming another agent's phone would ring it into a
// monitor. A device belongs to an agent when it is the agent's recorded
// device, or its SIP user part is the agent's id or "<id>-desk" (README.md,
// the agents' SIP users).
func (e *Engine) checkDevice(ctx context.Context, actor presence.Actor, device string) error {
	if device == "" || actor.IsAdmin() {
		return nil
	}
	f, err := e.readFloor(ctx)
	if err != nil {
		return err
	}
	user := deviceUser(device)
	for _, a := range f.list {
		owns := a.Device != "" && a.Device == device || user == a.ID || user == a.ID+"-desk"
		if owns && !actor.CanManage(a) {
			return fmt.Errorf("device %q belongs to %s, outside the groups you supervise: %w", device, a.ID, presence.ErrForbidden)
		}
	}
	return nil
}

// deviceUser is the user part of a device string: "PJSIP/a1", "user/a1",
// "sip:a1@host:5060", "a1" all give "a1".
func deviceUser(device string) string {
	d := device
	if i := strings.LastIndexByte(d, '/'); i >= 0 {
		d = d[i+1:]
	}
	d = strings.TrimPrefix(strings.TrimPrefix(d, "sips:"), "sip:")
	d, _, _ = strings.Cut(d, "@")
	d, _, _ = strings.Cut(d, ";")
	return d
}

// inTeam reports whether target stays in the call's queue and team: a
// member of the queue (if any) sharing a group with the previous agent.
func (e *Engine) inTeam(ctx context.Context, t *txn, c *Call, target *presence.Agent) (bool, error) {
	if c.Queue != "" {
		q, _, err := e.queue(ctx, c.Queue)
		if err == nil {
			f, err := e.readFloor(ctx)
			if err != nil {
				return false, err
			}
			if !slices.Contains(f.members(&q), target.ID) {
				return false, nil
			}
		}
	}
	prev, err := t.agent(ctx, c.Agent)
	if err != nil {
		return false, nil
	}
	for _, g := range prev.Groups {
		if target.InGroup(g) {
			return true, nil
		}
	}
	return len(prev.Groups) == 0 && len(target.Groups) == 0, nil
}
