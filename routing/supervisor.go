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
			c, err := e.liveCall(ctx, t, actor, callID)
			if err != nil {
				return err
			}
			return fn(ctx, t, c)
		})
		return err
	})
}

// liveCall is the call a supervisor action changes: live, and the actor
// authorised on it.
func (e *Engine) liveCall(ctx context.Context, t *txn, actor presence.Actor, callID string) (*Call, error) {
	if t.call == nil {
		return nil, fmt.Errorf("call %q is not live: %w", callID, presence.ErrNotFound)
	}
	if err := e.authorize(ctx, t, actor, t.call); err != nil {
		return nil, err
	}
	return t.call, nil
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

// supervisorTarget is how the supervisor's device is rung: their own
// distribution mode, or the one device the request names (rung as an app
// device: every contact registered under it rings).
func supervisorTarget(a *presence.Agent, device string) media.Target {
	t := media.TargetOf(*a)
	if device != "" {
		t.Distribution, t.AppDevice = presence.DistApp, device
	}
	return t
}

// StartMonitor rings the supervisor's device (or device) and, on answer,
// joins them to the call in mode: listen, whisper or barge. Rules
// (DESIGN.md, README.md "Floor rules"): one monitor per call; nobody
// barges a call another supervisor monitors; a supervisor monitors one
// call at a time. Like an offer, the monitor is decided and reserved in
// one change, rung on the media path, and its leg recorded in a second
// change; a refused ring undoes the reservation (ringMonitor).
func (e *Engine) StartMonitor(ctx context.Context, actor presence.Actor, callID string, mode media.MonitorMode, device string) (MonitorView, error) {
	if !mode.Valid() {
		return MonitorView{}, invalid("mode", "must be listen, whisper or barge")
	}
	if device != "" {
		if err := presence.CheckDevice("device", device); err != nil {
			return MonitorView{}, err
		}
	}
	var out MonitorView
	err := e.on(ctx, callID, func(ctx context.Context) error {
		var d monitorDial
		_, err := e.change(ctx, callID, func(t *txn) error {
			c, err := e.liveCall(ctx, t, actor, callID)
			if err != nil {
				return err
			}
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
			if err := e.monitorsNothingElse(ctx, t, actor.ID); err != nil {
				return err
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
			m := &Monitor{ID: e.newID("m"), CallID: c.ID, Supervisor: actor.ID, Mode: mode, Device: device, StartedAt: t.now, Ringing: true}
			c.Monitor = m
			d = monitorDial{monitor: m.ID, req: media.MonitorRequest{
				CallID: c.ID, Customer: c.CustomerLeg, Agent: c.AgentLeg, Supervisor: supervisorTarget(sup, device),
				Mode: mode, Timeout: DefaultRingTimeout * time.Second,
			}}
			return nil
		})
		if err != nil {
			return err
		}
		mon, err := e.ringMonitor(ctx, callID, d, func(err error) string {
			return fmt.Sprintf("could not ring %s: %v", actor.ID, err)
		})
		if err != nil {
			return fmt.Errorf("%s on call %s: %w", mode, callID, err)
		}
		out = mon.View()
		return nil
	})
	return out, err
}

// monitoringKey is the store record that says which monitor a supervisor
// runs: created with the monitor (must not exist), deleted when it ends,
// so two monitors by one supervisor cannot both commit, even on two calls'
// loops at once.
func monitoringKey(supervisor string) string { return "monitoring:" + supervisor }

// monitoring is the monitoringKey record.
type monitoring struct {
	Monitor string `json:"monitor"`
	Call    string `json:"call"`
}

// monitorsNothingElse refuses a second monitor by the same supervisor,
// naming the call they monitor. A record whose monitor is gone (written by
// a replica that crashed mid-change) is taken over.
func (e *Engine) monitorsNothingElse(ctx context.Context, t *txn, supervisor string) error {
	r, err := e.st.Get(ctx, state.KindMeta, monitoringKey(supervisor))
	if errors.Is(err, state.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read %s's monitor: %w", supervisor, err)
	}
	var cur monitoring
	if json.Unmarshal(r.Data, &cur) == nil {
		if m, err := e.monitorRecord(ctx, cur.Monitor); err == nil && m.Supervisor == supervisor {
			return conflict("you already monitor call %s (monitor %s); one call at a time: end it with DELETE /v1/monitors/%s first", cur.Call, cur.Monitor, cur.Monitor)
		} else if err != nil && !errors.Is(err, presence.ErrNotFound) {
			return err
		}
	}
	t.monLockVersion = r.Version
	return nil
}

// monitorDial is a reserved monitor leg to ring.
type monitorDial struct {
	monitor string // the reserved monitor's id
	req     media.MonitorRequest
}

// ringMonitor is the act and record steps of a reserved monitor (the
// offer path's dialOffers, for one supervisor leg): ring the supervisor,
// then record the leg in a second change. If the media path refuses, the
// reservation is undone (the monitor ends, reason from why); if the
// monitor moved on meanwhile or the record does not commit, the new leg
// is hung up, so no live supervisor leg is left in no record.
func (e *Engine) ringMonitor(ctx context.Context, callID string, d monitorDial, why func(error) string) (Monitor, error) {
	m := e.mediaPath()
	leg, ringErr := e.monitorLeg(ctx, m, d.req)
	var out Monitor
	recorded := false
	_, err := e.change(ctx, callID, func(t *txn) error {
		recorded = false
		c := t.call
		if c == nil || c.Monitor == nil || c.Monitor.ID != d.monitor || !c.Monitor.Ringing {
			return nil
		}
		if ringErr != nil {
			c.Monitor = nil
			t.monReason = why(ringErr)
			return nil
		}
		c.Monitor.Leg, c.Monitor.Ringing = leg, false
		out, recorded = *c.Monitor, true
		return nil
	})
	if ringErr != nil {
		if err != nil {
			e.log.Error("undo monitor reservation", "call", callID, "monitor", d.monitor, "err", err)
		}
		return Monitor{}, ringErr
	}
	if err != nil || !recorded {
		e.unbindLeg(leg)
		e.hangup(ctx, m, leg, media.CauseNormal)
		if err != nil {
			return Monitor{}, fmt.Errorf("record monitor leg: %w", err)
		}
		return Monitor{}, fmt.Errorf("monitor %s ended while its supervisor was rung: %w", d.monitor, presence.ErrConflict)
	}
	return out, nil
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

// monitorOf finds a running monitor the actor may act on: its
// supervisor's or, for an admin, anyone's.
func (e *Engine) monitorOf(ctx context.Context, actor presence.Actor, id string) (Monitor, error) {
	rec, err := e.monitorRecord(ctx, id)
	if err != nil {
		return Monitor{}, err
	}
	if rec.Supervisor != actor.ID && !actor.IsAdmin() {
		return Monitor{}, fmt.Errorf("monitor %s belongs to %s: %w", id, rec.Supervisor, presence.ErrForbidden)
	}
	return rec, nil
}

// onMonitor runs fn on a running monitor: its supervisor or an admin.
func (e *Engine) onMonitor(ctx context.Context, actor presence.Actor, id string, fn func(ctx context.Context, t *txn, c *Call, m *Monitor) error) (MonitorView, error) {
	rec, err := e.monitorOf(ctx, actor, id)
	if err != nil {
		return MonitorView{}, err
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

// monitorCommand is what a pause, resume or barge decided: the media
// command to send, the one that undoes it, and the change to record.
type monitorCommand struct {
	do, undo func(ctx context.Context, m media.Media, leg media.LegID) error
	record   func(m *Monitor)
}

// commandMonitor runs a media command on a running monitor in the offer
// path's order: decide on the call as stored (nil command: nothing to
// do), send the command, then record it in a change; if the record does
// not commit (or the monitor moved on), the command is undone.
func (e *Engine) commandMonitor(ctx context.Context, actor presence.Actor, id string, decide func(c *Call, m *Monitor) (*monitorCommand, error)) (MonitorView, error) {
	rec, err := e.monitorOf(ctx, actor, id)
	if err != nil {
		return MonitorView{}, err
	}
	var out MonitorView
	err = e.on(ctx, rec.CallID, func(ctx context.Context) error {
		c, err := e.getCall(ctx, rec.CallID)
		if errors.Is(err, presence.ErrNotFound) || err == nil && (c.Monitor == nil || c.Monitor.ID != id) {
			return fmt.Errorf("monitor %q is not running: %w", id, presence.ErrNotFound)
		}
		if err != nil {
			return err
		}
		cmd, err := decide(&c, c.Monitor)
		if err != nil {
			return err
		}
		out = c.Monitor.View()
		if cmd == nil {
			return nil
		}
		m, leg := e.mediaPath(), c.Monitor.Leg
		if err := cmd.do(ctx, m, leg); err != nil {
			return err
		}
		recorded := false
		_, err = e.change(ctx, rec.CallID, func(t *txn) error {
			recorded = false
			if t.call == nil || t.call.Monitor == nil || t.call.Monitor.ID != id || t.call.Monitor.Leg != leg {
				return nil
			}
			cmd.record(t.call.Monitor)
			out, recorded = t.call.Monitor.View(), true
			return nil
		})
		if err != nil || !recorded {
			if uerr := cmd.undo(ctx, m, leg); uerr != nil && !errors.Is(uerr, media.ErrLegGone) {
				e.log.Warn("undo monitor command", "monitor", id, "err", uerr)
			}
			if err == nil {
				err = fmt.Errorf("monitor %q ended meanwhile: %w", id, presence.ErrNotFound)
			}
			return err
		}
		return err
	})
	return out, err
}

// muteCommand pauses (muted) or resumes a monitor.
func muteCommand(muted bool) *monitorCommand {
	return &monitorCommand{
		do:     func(ctx context.Context, m media.Media, leg media.LegID) error { return m.Mute(ctx, leg, muted) },
		undo:   func(ctx context.Context, m media.Media, leg media.LegID) error { return m.Mute(ctx, leg, !muted) },
		record: func(mon *Monitor) { mon.Paused = muted },
	}
}

// PauseMonitor mutes the supervisor without leaving the call.
func (e *Engine) PauseMonitor(ctx context.Context, actor presence.Actor, id string) (MonitorView, error) {
	return e.commandMonitor(ctx, actor, id, func(c *Call, m *Monitor) (*monitorCommand, error) {
		if err := following(m); err != nil {
			return nil, err
		}
		if m.Paused {
			return nil, nil
		}
		return wrapCommand(muteCommand(true), "pause monitor "+id), nil
	})
}

// ResumeMonitor unmutes a paused monitor.
func (e *Engine) ResumeMonitor(ctx context.Context, actor presence.Actor, id string) (MonitorView, error) {
	return e.commandMonitor(ctx, actor, id, func(c *Call, m *Monitor) (*monitorCommand, error) {
		if err := following(m); err != nil {
			return nil, err
		}
		if !m.Paused {
			return nil, nil
		}
		return wrapCommand(muteCommand(false), "resume monitor "+id), nil
	})
}

// BargeMonitor switches a running monitor to barge. A paused monitor
// cannot barge (resume first), and only the monitor's supervisor barges.
func (e *Engine) BargeMonitor(ctx context.Context, actor presence.Actor, id string) (MonitorView, error) {
	return e.commandMonitor(ctx, actor, id, func(c *Call, m *Monitor) (*monitorCommand, error) {
		if err := following(m); err != nil {
			return nil, err
		}
		if m.Supervisor != actor.ID {
			return nil, conflict("call %s is monitored by %s; nobody else can barge into it", c.ID, m.Supervisor)
		}
		if m.Paused {
			return nil, conflict("monitor %s is paused; resume it before barging", m.ID)
		}
		if m.Mode == media.MonitorBarge {
			return nil, nil
		}
		was := m.Mode
		return wrapCommand(&monitorCommand{
			do: func(ctx context.Context, p media.Media, leg media.LegID) error {
				return p.SetMonitorMode(ctx, leg, media.MonitorBarge)
			},
			undo: func(ctx context.Context, p media.Media, leg media.LegID) error {
				return p.SetMonitorMode(ctx, leg, was)
			},
			record: func(mon *Monitor) { mon.Mode = media.MonitorBarge },
		}, "barge monitor "+id), nil
	})
}

// wrapCommand names the action in the error of a refused command.
func wrapCommand(c *monitorCommand, what string) *monitorCommand {
	do := c.do
	c.do = func(ctx context.Context, m media.Media, leg media.LegID) error {
		if err := do(ctx, m, leg); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	return c
}

// following refuses media changes while the monitor waits to re-join a
// call being transferred within the team.
func following(m *Monitor) error {
	if m.Ringing {
		return conflict("monitor %s is still ringing its supervisor; try again in a moment", m.ID)
	}
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
// if it was): reserved in one change, rung, recorded in a second
// (ringMonitor). If the media path refuses, the monitor ends with the
// reason.
func (e *Engine) rejoinMonitor(ctx context.Context, callID string) {
	var (
		d     monitorDial
		agent string
		ring  bool
	)
	_, err := e.change(ctx, callID, func(t *txn) error {
		ring = false
		c := t.call
		if c == nil || c.Monitor == nil || c.Monitor.Leg != "" || c.Monitor.Ringing || c.AgentLeg == "" {
			return nil
		}
		mon := c.Monitor
		sup, err := t.agent(ctx, mon.Supervisor)
		if err != nil {
			e.endMonitorFor(t, c, "the supervisor's user is gone")
			return nil
		}
		mon.Ringing = true
		d = monitorDial{monitor: mon.ID, req: media.MonitorRequest{CallID: c.ID, Customer: c.CustomerLeg, Agent: c.AgentLeg,
			Supervisor: supervisorTarget(sup, mon.Device), Mode: mon.Mode, Timeout: DefaultRingTimeout * time.Second}}
		agent, ring = c.Agent, true
		return nil
	})
	if err != nil {
		e.log.Error("rejoin monitor", "call", callID, "err", err)
		return
	}
	if !ring {
		return
	}
	mon, err := e.ringMonitor(ctx, callID, d, func(err error) string {
		return fmt.Sprintf("could not follow the call to %s: %v", agent, err)
	})
	if err != nil {
		e.log.Warn("rejoin monitor", "call", callID, "err", err)
		return
	}
	if mon.Paused {
		if err := e.mediaPath().Mute(ctx, mon.Leg, true); err != nil {
			e.log.Warn("keep monitor paused", "call", callID, "err", err)
		}
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
		owns := a.OwnsDevice(device) || a.OwnsDevice(user)
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
