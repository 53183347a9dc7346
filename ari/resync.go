package ari

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// resync runs on the dispatcher after every (re)connect. Asterisk does not
// replay events missed while no socket was connected, so the live
// channels and bridges are read back: legs we knew that are gone end,
// channels still in our application are adopted and listed to routing
// (LegsPresent), and our own bridges and snoops left empty or orphaned are
// removed. It also reports the current registration of every endpoint.
func (c *Client) resync(ctx context.Context) {
	var chans []chanInfo
	var bridges []ari.BridgeData
	var eps []ari.EndpointData
	for _, r := range []struct {
		path string
		out  any
	}{{"/channels", &chans}, {"/bridges", &bridges}} {
		if err := c.rest.do(ctx, "GET", r.path, nil, r.out); err != nil {
			c.log.Warn("resync failed; will retry on next connect", "path", r.path, "err", err)
			return
		}
	}
	// Presence is a bonus: without it calls still resynchronise.
	if err := c.rest.do(ctx, "GET", "/endpoints", nil, &eps); err != nil {
		c.log.Warn("listing endpoints failed; device presence waits for events", "err", err)
	}
	base := media.FactBase{At: time.Now()}
	c.mu.Lock()
	c.cleaned = map[string]bool{}
	ended := c.endVanished(base, chans)
	snaps, answered := c.adopt(base, chans)
	c.retryHangups(chans)
	c.rejoinMonitors(bridges)
	c.syncBridges(bridges)
	snap := media.Snapshot{At: base.At, Legs: snaps, Ended: ended, Answered: answered}
	techs := c.techs()
	for _, ep := range eps {
		if slices.Contains(techs, ep.Technology) {
			snap.Devices = append(snap.Devices, c.onDevice(base, ep.Technology+"/"+ep.Resource, ep.State == "online")...)
		}
	}
	facts := snap.Facts() // media.Snapshot decides the order
	c.mu.Unlock()
	for _, f := range facts {
		c.facts.Report(f)
	}
}

// endVanished ends every leg we track whose channel is no longer listed.
func (c *Client) endVanished(base media.FactBase, chans []chanInfo) []media.Fact {
	present := map[string]bool{}
	for _, ch := range chans {
		present[ch.ID] = true
	}
	var facts []media.Fact
	for _, l := range c.sortedLegs() {
		if l.up() {
			if !present[l.live] {
				facts = append(facts, c.endLeg(base, l, media.CauseNormal)...)
			}
			continue
		}
		for ch := range l.pending {
			if !present[ch] {
				delete(l.pending, ch)
				delete(c.chans, ch)
			}
		}
		if len(l.pending) == 0 { // it stopped ringing while we were away; why is unknown
			cause := l.cause
			if cause == "" {
				cause = media.CauseFailed
			}
			facts = append(facts, c.endLeg(base, l, cause)...)
		}
	}
	for id, l := range c.chans {
		switch {
		case l.kind == kindSnoop && (!present[id] || l.owner == nil || l.owner.ended()):
			delete(c.chans, id) // a snoop whose channel or monitor is gone
			if present[id] {
				c.cleanChannel(id)
			}
		case !present[id] && (l.ended() || l.up() && id != l.live):
			delete(c.chans, id) // a cancelled fork member whose end we missed
		}
	}
	return facts
}

// adopt records channels in our application that we do not know (left by
// an earlier controller), reports dialled legs that answered while no
// socket was connected (their StasisStart is lost, but they are Up in our
// application), and lists every live leg.
func (c *Client) adopt(base media.FactBase, chans []chanInfo) (snaps []media.LegSnapshot, facts []media.Fact) {
	for _, ch := range chans { // answers first: a fork's answering device may be listed after one still ringing
		_, inApp := stasisArgs(c.cfg.App, ch)
		if l := c.chans[ch.ID]; l != nil && inApp && ch.State == "Up" && l.pending[ch.ID] && l.kind != kindSnoop && l.kind != kindCustomer {
			facts = append(facts, c.answered(base, l, ch.ID)...)
		}
	}
	listed := map[string]bool{}
	for _, ch := range chans {
		args, inApp := stasisArgs(c.cfg.App, ch)
		l := c.chans[ch.ID]
		if l == nil && !inApp && dialledByUs(ch.ID) && ch.State != "Up" {
			// A device an earlier controller was ringing: routing still
			// waits for it (and times it out); its StasisStart says what
			// kind of leg it is.
			l = &leg{id: ch.ID, kind: kindDialed, pending: map[string]bool{ch.ID: true}, unsure: true}
			if ch.State == "Ringing" {
				l.state = legRinging
			}
			c.chans[ch.ID] = l
			c.legs[ch.ID] = l
		}
		if l == nil {
			if !inApp {
				continue
			}
			kind, hotline := classify(args, ch.Name, ch.Dialplan.Exten)
			if kind == kindSnoop {
				// A snoop of an earlier controller: rejoined to its monitor
				// by rejoinMonitors if that monitor is still here, else
				// hung up.
				sn := &leg{id: ch.ID, kind: kindSnoop, live: ch.ID, state: legUp}
				if len(args) > 2 {
					sn.mode, sn.agentChan = media.MonitorMode(args[1]), args[2]
				}
				c.chans[ch.ID] = sn
				continue
			}
			// An answered caller may be hearing music the earlier
			// controller started on the channel (nothing lists it):
			// Connect stops it, harmlessly if there was none.
			l = &leg{id: ch.ID, kind: kind, live: ch.ID, caller: ch.Caller.Number, hotline: hotline,
				state: legUp, moh: kind == kindCustomer && ch.State == "Up"}
			c.chans[ch.ID] = l
			c.legs[ch.ID] = l
		}
		if l.kind == kindSnoop || l.ended() || listed[l.id] || l.up() && l.live != ch.ID || l.requested != "" {
			// Snoops, cancelled fork members, and legs routing has let go
			// (hung up; retried if that failed): not routing's to adopt.
			continue
		}
		listed[l.id] = true
		snap := media.LegSnapshot{Leg: media.LegID(l.id), Answered: l.up(), Caller: l.caller}
		if l.kind == kindCustomer {
			snap.Answered = ch.State == "Up"
			snap.Hotline = l.hotline
			if snap.Caller == "" {
				snap.Caller = ch.Caller.Number
			}
		}
		snaps = append(snaps, snap)
	}
	return snaps, facts
}

// syncBridges replaces our bridge table with what Asterisk lists and
// removes bridges of ours that nothing uses any more.
func (c *Client) syncBridges(bridges []ari.BridgeData) {
	seen := map[string]bool{}
	c.spare = c.spare[:0] // empty ones are deleted below
	for _, b := range bridges {
		role := ownRole(b.Name)
		if role == "" {
			continue
		}
		seen[b.ID] = true
		br := c.bridges[b.ID]
		if br == nil {
			br = &brdg{id: b.ID, role: role}
			c.bridges[b.ID] = br
		}
		br.members, br.spare = map[string]bool{}, false
		useful := false
		for _, m := range b.ChannelIDs {
			br.members[m] = true
			l := c.chans[m]
			if l != nil && l.kind != kindSnoop {
				useful = true
				if role == roleHold && l.live == m {
					l.hold = b.ID
				}
			}
		}
		if !useful {
			for m := range br.members {
				c.cleanChannel(m)
			}
			c.deleteBridge(b.ID)
		}
	}
	for id := range c.bridges {
		if !seen[id] {
			delete(c.bridges, id)
		}
	}
}

// sortedLegs lists tracked legs in id order (deterministic facts).
func (c *Client) sortedLegs() []*leg {
	out := make([]*leg, 0, len(c.legs))
	for _, l := range c.legs {
		out = append(out, l)
	}
	slices.SortFunc(out, func(a, b *leg) int {
		switch {
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	return out
}

// cleanChannel hangs up an orphan channel once per resync.
func (c *Client) cleanChannel(id string) {
	if !c.cleaned[id] {
		c.cleaned[id] = true
		c.hangupChannel(id, media.CauseNormal)
	}
}

// retryHangups hangs up again the channels whose hang-up failed while
// Asterisk was unreachable and that it still lists (in id order).
func (c *Client) retryHangups(chans []chanInfo) {
	present := map[string]bool{}
	for _, ch := range chans {
		present[ch.ID] = true
	}
	ids := make([]string, 0, len(c.unhung))
	for id := range c.unhung {
		if !present[id] {
			delete(c.unhung, id)
			continue
		}
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if c.cleaned[id] {
			continue
		}
		c.cleaned[id] = true
		cause := c.unhung[id]
		c.act("hangup "+id, func(ctx context.Context) {
			err := c.rest.do(ctx, "DELETE", chanPath(id), url.Values{"reason_code": {strconv.Itoa(media.Q850(cause))}}, nil)
			if err != nil && !notFound(err) {
				c.log.Warn("hanging up channel failed again; next resync retries", "channel", id, "err", err)
				return
			}
			c.mu.Lock()
			delete(c.unhung, id)
			c.mu.Unlock()
		})
	}
}

// rejoinMonitors rebuilds what an earlier controller set up for monitor
// legs this client adopted: a supervisor in a spy bridge with a snoop
// listens or whispers (the snoop's arguments say which, and on which
// agent channel); a supervisor in a call bridge barges. Snoops that serve
// no monitor are hung up.
func (c *Client) rejoinMonitors(bridges []ari.BridgeData) {
	for _, b := range bridges {
		role := ownRole(b.Name)
		var mon, snoop *leg
		for _, m := range b.ChannelIDs {
			switch l := c.chans[m]; {
			case l == nil:
			case l.kind == kindMonitor && l.up() && l.live == m && l.applied == "" && l.snoop == "":
				mon = l
			case l.kind == kindSnoop && l.owner == nil && l.mode.Valid():
				snoop = l
			}
		}
		switch {
		case mon == nil:
		case role == roleSpy && snoop != nil:
			snoop.owner = mon
			mon.mode, mon.applied = snoop.mode, snoop.mode
			mon.snoop, mon.spy, mon.agentChan = snoop.id, b.ID, snoop.agentChan
		case role == roleCall:
			mon.mode, mon.applied = media.MonitorBarge, media.MonitorBarge
			for _, m := range b.ChannelIDs {
				if l := c.chans[m]; l != nil && l.kind == kindDialed && l.live == m {
					mon.agentChan = m
				}
			}
		}
	}
	for id, l := range c.chans {
		if l.kind == kindSnoop && l.owner == nil {
			delete(c.chans, id)
			c.cleanChannel(id)
		}
	}
}
