package ari

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/callfloor/callfloor/media"
)

// Monitor rings a supervisor; on answer the leg joins in req.Mode:
// listen/whisper through a snoop on the agent's channel, barge in the call
// bridge.
func (c *Client) Monitor(ctx context.Context, req media.MonitorRequest) (media.LegID, error) {
	if !req.Mode.Valid() {
		return "", fmt.Errorf("ari: monitor mode %q: %w", req.Mode, media.ErrNotSupported)
	}
	agent := c.chanOf(req.Agent)
	c.mu.Lock()
	callerID := ""
	if cust := c.legs[string(req.Customer)]; cust != nil {
		callerID = cust.caller
	}
	c.mu.Unlock()
	l := &leg{kind: kindMonitor, mode: req.Mode, agentChan: agent}
	args := []string{tagSupervisor, argSafe(req.Supervisor.AgentID), argSafe(req.CallID)}
	return c.originate(ctx, l, req.Supervisor, "", string(req.Customer), args, callerID, req.Timeout.Seconds())
}

// SetMonitorMode switches a monitor between listen, whisper and barge.
func (c *Client) SetMonitorMode(ctx context.Context, supervisor media.LegID, mode media.MonitorMode) error {
	if !mode.Valid() {
		return fmt.Errorf("ari: monitor mode %q: %w", mode, media.ErrNotSupported)
	}
	c.mu.Lock()
	l := c.legs[string(supervisor)]
	if l == nil || l.kind != kindMonitor {
		c.mu.Unlock()
		return fmt.Errorf("ari: no monitor leg %s: %w", supervisor, media.ErrLegGone)
	}
	l.mode = mode
	answered := l.up()
	c.mu.Unlock()
	if !answered {
		return nil // applied on answer
	}
	return c.converge(ctx, l)
}

// setupMonitor runs on the worker when a monitor leg answers.
func (c *Client) setupMonitor(ctx context.Context, l *leg) {
	if err := c.converge(ctx, l); err != nil {
		c.log.Warn("monitor set-up failed", "leg", l.id, "err", err)
	}
}

// converge brings a monitor's Asterisk set-up from the mode applied to
// the mode wanted. Serialised, because set-up on answer (worker) and
// SetMonitorMode (routing) can overlap.
func (c *Client) converge(ctx context.Context, l *leg) error {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	c.mu.Lock()
	from, to, ended := l.applied, l.mode, l.ended()
	c.mu.Unlock()
	if ended {
		return fmt.Errorf("ari: monitor %s: %w", l.id, media.ErrLegGone)
	}
	if from == to || to == "" {
		return nil
	}
	var err error
	if to == media.MonitorBarge {
		err = c.toBarge(ctx, l)
	} else {
		err = c.toSnoop(ctx, l, from, to)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err == nil {
		l.applied = to
	}
	if l.ended() {
		// The supervisor hung up while we set up: endLeg removed what
		// existed then; remove what we made since.
		c.dropMonitorMedia(l)
	}
	return err
}

// dropMonitorMedia hangs up a monitor's snoop and removes its spy bridge
// (which may never have had a member, so no event would empty it).
// Called with c.mu held.
func (c *Client) dropMonitorMedia(l *leg) {
	if l.snoop != "" {
		c.hangupChannel(l.snoop, media.CauseNormal)
		l.snoop = ""
	}
	if l.spy != "" {
		c.deleteBridge(l.spy)
		l.spy = ""
	}
}

// toSnoop: a new snoop on the agent (spy both ways; whisper out toward the
// agent only for whisper) bridged with the supervisor in the spy bridge.
func (c *Client) toSnoop(ctx context.Context, l *leg, from, to media.MonitorMode) error {
	c.mu.Lock()
	sup, agent, old, spy := l.live, l.agentChan, l.snoop, l.spy
	c.mu.Unlock()
	if from == media.MonitorBarge {
		if call := c.bridgeWith(sup, roleCall); call != "" {
			if err := c.bridgeChannels(ctx, call, false, sup); err != nil {
				return err
			}
		}
	}
	if old != "" {
		if err := c.rest.do(ctx, "DELETE", chanPath(old), nil, nil); err != nil && !notFound(err) {
			return fmt.Errorf("ari: removing snoop: %w", err)
		}
	}
	whisper := "none"
	if to == media.MonitorWhisper {
		whisper = "out"
	}
	snoop := newID("snoop")
	c.mu.Lock()
	l.snoop = ""
	started := make(chan struct{})
	c.chans[snoop] = &leg{id: snoop, kind: kindSnoop, live: snoop, owner: l, started: started}
	c.mu.Unlock()
	q := url.Values{"spy": {"both"}, "whisper": {whisper}, "app": {c.cfg.App},
		"appArgs": {tagSnoop + "," + string(to) + "," + agent}, "snoopId": {snoop}}
	if err := c.call(ctx, "POST", chanPath(agent, "/snoop"), q, nil); err != nil {
		c.mu.Lock()
		delete(c.chans, snoop)
		c.mu.Unlock()
		return fmt.Errorf("ari: snoop on agent: %w", err)
	}
	c.mu.Lock()
	l.snoop = snoop
	c.mu.Unlock()
	if err := snoopStarted(ctx, started); err != nil {
		return err
	}
	if spy != "" {
		return c.bridgeChannels(ctx, spy, true, snoop)
	}
	spy, err := c.createBridge(ctx, "mixing", roleSpy, agent)
	if err != nil {
		return err
	}
	c.mu.Lock()
	l.spy = spy
	c.mu.Unlock()
	return c.bridgeChannels(ctx, spy, true, snoop, sup)
}

// snoopWait bounds the wait for a snoop to enter the application.
const snoopWait = 5 * time.Second

// snoopStarted waits for a new snoop's StasisStart: the answer to POST
// …/snoop comes before the snoop is in the application, and bridging it
// then fails with 422 "Channel not in Stasis application" (seen on a real
// Asterisk 22.10.1 in TestAsteriskInboundMonitorHangup).
func snoopStarted(ctx context.Context, started <-chan struct{}) error {
	t := time.NewTimer(snoopWait)
	defer t.Stop()
	select {
	case <-started:
		return nil
	case <-t.C:
		return fmt.Errorf("ari: snoop not in the application after %v: %w", snoopWait, media.ErrLegGone)
	case <-ctx.Done():
		return fmt.Errorf("ari: waiting for the snoop: %w", ctx.Err())
	}
}

// toBarge: the supervisor joins the call bridge; the snoop goes (and the
// spy bridge, once empty, with it).
func (c *Client) toBarge(ctx context.Context, l *leg) error {
	c.mu.Lock()
	sup, agent, snoop, spy := l.live, l.agentChan, l.snoop, l.spy
	c.mu.Unlock()
	call := c.bridgeWith(agent, roleCall)
	if call == "" {
		return fmt.Errorf("ari: barge: agent %s is in no call bridge: %w", agent, media.ErrLegGone)
	}
	if spy != "" {
		if err := c.bridgeChannels(ctx, spy, false, sup); err != nil {
			return err
		}
	}
	if err := c.bridgeChannels(ctx, call, true, sup); err != nil {
		return err
	}
	c.mu.Lock()
	l.spy, l.snoop = "", ""
	c.mu.Unlock()
	if snoop != "" {
		if err := c.rest.do(ctx, "DELETE", chanPath(snoop), nil, nil); err != nil && !notFound(err) {
			return fmt.Errorf("ari: removing snoop: %w", err)
		}
	}
	return nil
}
