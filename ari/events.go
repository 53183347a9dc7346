package ari

import (
	"context"
	"net/url"
	"strconv"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// handle applies one event to the leg table and reports the facts it
// implies, after releasing the lock (Report may call back into Media).
func (c *Client) handle(ev ari.Event, at time.Time) {
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("ARI event handler panicked; event skipped", "type", ev.GetType(), "panic", r)
		}
	}()
	c.apply(ev, at)
}

// apply is handle without the safety net (the fuzz test calls it directly
// so that a panic is found, not swallowed).
func (c *Client) apply(ev ari.Event, at time.Time) {
	for _, f := range c.update(ev, media.FactBase{At: at}) {
		c.facts.Report(f)
	}
}

// update changes the tables under the lock and returns the facts to report.
func (c *Client) update(ev ari.Event, base media.FactBase) (facts []media.Fact) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch e := ev.(type) {
	case *ari.StasisStart:
		facts = c.onStasisStart(base, e)
	case *ari.StasisEnd:
		facts = c.onStasisEnd(base, e.Channel.ID)
	case *ari.Dial:
		if e.Dialstatus == "RINGING" {
			facts = c.onRinging(base, e.Peer.ID)
		} else {
			c.onDialStatus(e.Peer.ID, e.Dialstatus)
		}
	case *ari.ChannelHangupRequest:
		// A soft hangup (cause 32) is Asterisk carrying out a DELETE,
		// ours or another client's, not the far end's reason.
		if l := c.chans[e.Channel.ID]; l != nil && e.Cause != 0 && !e.Soft && e.Channel.ID == l.live {
			l.hupCause = e.Cause
		}
	case *ari.ChannelDestroyed:
		facts = c.onDestroyed(base, e.Channel.ID, e.Cause)
	case *ari.ChannelEnteredBridge:
		c.onBridgeMembers(e.Bridge.ID, e.Bridge.ChannelIDs)
	case *ari.ChannelLeftBridge:
		c.onBridgeMembers(e.Bridge.ID, e.Bridge.ChannelIDs)
	case *ari.BridgeDestroyed:
		delete(c.bridges, e.Bridge.ID)
	case *ari.ChannelDtmfReceived:
		if l := c.chans[e.Channel.ID]; l != nil && !l.ended() && l.kind != kindSnoop {
			facts = append(facts, media.DTMF{FactBase: base, Leg: media.LegID(l.id), Digit: e.Digit})
		}
	case *ari.ContactStatusChange:
		// Only with endpoint subscriptions (the fallback without a
		// device list): the contacts are read again at the next dial.
		c.forgetContacts(e.Endpoint.Technology + "/" + e.Endpoint.Resource)
	case *ari.EndpointStateChange:
		facts = c.onDevice(base, e.Endpoint.Technology+"/"+e.Endpoint.Resource, e.Endpoint.State == "online")
	case *ari.DeviceStateChanged:
		// chan_pjsip's device state: UNAVAILABLE when the endpoint has
		// no reachable contact, else what its channels are doing.
		switch e.DeviceState.State {
		case "UNAVAILABLE", "INVALID", "UNKNOWN":
			facts = c.onDevice(base, e.DeviceState.Name, false)
		default:
			facts = c.onDevice(base, e.DeviceState.Name, true)
		}
	}
	return facts
}

// onStasisStart: an inbound call arrived, or a leg we originated was
// answered (Asterisk puts an originated channel in Stasis only on answer).
func (c *Client) onStasisStart(base media.FactBase, e *ari.StasisStart) []media.Fact {
	id := e.Channel.ID
	if id == "" {
		return nil
	}
	l := c.chans[id]
	if l == nil {
		kind, hotline := classify(e.Args, e.Channel.Name, exten(e.Channel))
		l = &leg{id: id, kind: kind, live: id, caller: callerNumber(e.Channel), hotline: hotline, state: legUp}
		c.chans[id] = l
		switch kind {
		case kindSnoop:
			return nil // a snoop from before a restart; resync cleans it up
		case kindCustomer:
			if c.lag.over() {
				return c.refuse(id)
			}
			c.legs[id] = l
			return []media.Fact{media.CallArrived{FactBase: base, Leg: media.LegID(id),
				Caller: l.caller, Hotline: hotline}}
		}
		// A leg some earlier controller originated, answered now.
		c.legs[id] = l
		return []media.Fact{media.LegAnswered{FactBase: base, Leg: media.LegID(id)}}
	}
	if l.kind == kindSnoop && l.started != nil {
		close(l.started)
		l.started = nil
	}
	if l.kind == kindSnoop || l.kind == kindCustomer {
		return nil
	}
	if l.unsure { // adopted while ringing: now the arguments tell
		if kind, _ := classify(e.Args, e.Channel.Name, exten(e.Channel)); kind == kindMonitor {
			l.kind = kindMonitor // its mode is routing's to set again
		}
		l.unsure = false
	}
	return c.answered(base, l, id)
}

// answered: channel id of a dialled leg answered (its StasisStart, or
// found Up in our application by a resync after the StasisStart was lost
// with the socket). The first answer wins; the fork's other devices are
// hung up.
func (c *Client) answered(base media.FactBase, l *leg, id string) []media.Fact {
	if !l.to(legUp) {
		return nil // a fork member answering after the winner: already cancelled
	}
	l.live = id
	delete(l.pending, id)
	for other := range l.pending { // first answer wins: cancel the rest
		// It stays in chans (mapped to this leg, not live) so its late
		// StasisStart or ChannelDestroyed is recognised and ignored.
		delete(l.pending, other)
		c.hangupChannel(other, media.CauseCancelled)
	}
	if l.kind == kindMonitor {
		c.act("monitor set-up", func(ctx context.Context) { c.setupMonitor(ctx, l) })
	}
	return []media.Fact{media.LegAnswered{FactBase: base, Leg: media.LegID(l.id)}}
}

// onRinging reports a dialled leg alerting, once.
func (c *Client) onRinging(base media.FactBase, chanID string) []media.Fact {
	l := c.chans[chanID]
	if l == nil || l.kind == kindCustomer || l.kind == kindSnoop || !l.to(legRinging) {
		return nil
	}
	return []media.Fact{media.LegRinging{FactBase: base, Leg: media.LegID(l.id)}}
}

// onDialStatus keeps the failure a final Dial status tells of an
// originated channel that has not answered. A Local channel device
// (Local/...@context) that is busy ends with ChannelDestroyed cause 0
// ("Unknown") after Dial BUSY, unlike PJSIP's cause 17, so the cause is
// taken from here when the destruction's is less telling (media.MoreTelling).
func (c *Client) onDialStatus(chanID, status string) {
	l := c.chans[chanID]
	if l == nil || l.kind == kindCustomer || l.kind == kindSnoop || l.up() || l.ended() || !l.pending[chanID] {
		return
	}
	if cause, ok := dialStatusCause(status); ok && media.MoreTelling(cause, l.cause) {
		l.cause = cause
	}
}

// dialStatusCause maps a final DIALSTATUS to the cause it means; ok is
// false for progress (RINGING, PROGRESS, "") and for ANSWER and CANCEL.
func dialStatusCause(status string) (media.Cause, bool) {
	switch status {
	case "BUSY":
		return media.CauseBusy, true
	case "NOANSWER":
		return media.CauseNoAnswer, true
	case "CHANUNAVAIL":
		return media.CauseUnreachable, true
	case "CONGESTION":
		return media.CauseFailed, true
	}
	return "", false
}

// onStasisEnd: the live channel left the application. With
// subscribeAll=false a caller's channel that hangs up yields StasisEnd and
// no ChannelDestroyed, so this is where answered legs end.
func (c *Client) onStasisEnd(base media.FactBase, chanID string) []media.Fact {
	l := c.chans[chanID]
	if l == nil {
		return nil
	}
	if l.kind == kindSnoop {
		delete(c.chans, chanID)
		return nil
	}
	if !l.up() || chanID != l.live {
		return nil
	}
	cause := media.CauseFromQ850(l.hupCause)
	return c.endLeg(base, l, cause)
}

// onDestroyed: a channel is gone. For an originated leg that never
// answered this is the only news: cause 19 no answer, 17 busy.
func (c *Client) onDestroyed(base media.FactBase, chanID string, q850 int) []media.Fact {
	l := c.chans[chanID]
	if l == nil {
		return nil
	}
	delete(c.chans, chanID)
	if l.ended() || l.kind == kindSnoop {
		return nil
	}
	if l.up() {
		if chanID != l.live {
			return nil
		}
		if q850 == 0 {
			q850 = l.hupCause
		}
		return c.endLeg(base, l, media.CauseFromQ850(q850))
	}
	delete(l.pending, chanID)
	if cause := media.CauseFromQ850(q850); media.MoreTelling(cause, l.cause) {
		l.cause = cause
	}
	if len(l.pending) > 0 {
		return nil // another device of the fork still rings
	}
	return c.endLeg(base, l, l.cause)
}

// endLeg forgets a leg, schedules cleanup of what served it and reports
// LegEnded (with the cause routing asked for, if it hung up itself).
func (c *Client) endLeg(base media.FactBase, l *leg, cause media.Cause) []media.Fact {
	if !l.to(legEnded) {
		return nil
	}
	if l.requested != "" {
		cause = l.requested
	}
	if cause == "" {
		cause = media.CauseNormal
	}
	delete(c.legs, l.id)
	delete(c.chans, l.live)
	for ch := range l.pending {
		delete(c.chans, ch)
	}
	c.dropMonitorMedia(l)
	if l.hold != "" {
		c.deleteBridge(l.hold)
	}
	return []media.Fact{media.LegEnded{FactBase: base, Leg: media.LegID(l.id), Cause: cause}}
}

// onBridgeMembers records a bridge's members from an event and retires a
// bridge of ours that has become empty.
func (c *Client) onBridgeMembers(id string, members []string) {
	b := c.bridges[id]
	if b == nil {
		return
	}
	b.members = map[string]bool{}
	for _, m := range members {
		b.members[m] = true
	}
	if len(members) == 0 {
		c.retireBridge(b)
	}
}

// onDevice reports an endpoint's registration when it changes.
func (c *Client) onDevice(base media.FactBase, endpoint string, registered bool) []media.Fact {
	if !registered {
		c.forgetContacts(endpoint) // whoever registers next is read anew
	}
	agent, ok := c.cfg.AgentForEndpoint(endpoint)
	if !ok {
		return nil
	}
	if was, known := c.devices[endpoint]; known && was == registered {
		return nil
	}
	c.devices[endpoint] = registered
	return []media.Fact{media.DeviceState{FactBase: base, AgentID: agent, Device: endpoint, Registered: registered}}
}

// hangupChannel queues DELETE /channels/{id} (404 is fine: already gone).
func (c *Client) hangupChannel(id string, cause media.Cause) {
	c.act("hangup "+id, func(ctx context.Context) {
		err := c.rest.do(ctx, "DELETE", "/channels/"+url.PathEscape(id), url.Values{"reason_code": {strconv.Itoa(media.Q850(cause))}}, nil)
		if err != nil && !notFound(err) {
			c.log.Warn("hanging up channel failed", "channel", id, "err", err)
		}
	})
}

// deleteBridge forgets and queues DELETE of a bridge of ours.
func (c *Client) deleteBridge(id string) {
	if _, ok := c.bridges[id]; !ok {
		return
	}
	delete(c.bridges, id)
	c.act("delete bridge "+id, func(ctx context.Context) {
		if err := c.rest.do(ctx, "DELETE", "/bridges/"+url.PathEscape(id), nil, nil); err != nil && !notFound(err) {
			c.log.Warn("deleting bridge failed", "bridge", id, "err", err)
		}
	})
}
