package ari

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// createBridge makes a bridge of ours and records it before anything
// enters it, so its events are recognised.
func (c *Client) createBridge(ctx context.Context, typ, role, forChan string) (string, error) {
	var b ari.BridgeData
	q := url.Values{"type": {typ}, "name": {role + "-" + forChan}}
	if err := c.rest.do(ctx, "POST", "/bridges", q, &b); err != nil {
		return "", fmt.Errorf("ari: creating %s bridge: %w", role, err)
	}
	c.mu.Lock()
	c.bridges[b.ID] = &brdg{id: b.ID, role: role, members: map[string]bool{}}
	c.mu.Unlock()
	return b.ID, nil
}

// maxSpareBridges bounds the empty call bridges kept for reuse: enough
// for the calls that end in the time between two arrivals' connects at
// a few hundred calls a second, few enough that the idle bridges (one
// thread each in Asterisk) cost nothing.
const maxSpareBridges = 32

// retireBridge disposes of a bridge of ours that has become empty (under
// c.mu). A call bridge is kept for the next call while fewer than
// maxSpareBridges are: creating and deleting one per call cost two of its
// seven requests, one of its events, and a bridge thread started and
// stopped inside Asterisk (docs/performance.md). Any other is deleted.
func (c *Client) retireBridge(b *brdg) {
	switch {
	case b.spare: // already kept (an event repeating the emptiness)
		return
	case b.role != roleCall || len(c.spare) >= maxSpareBridges:
		c.deleteBridge(b.id)
		return
	}
	b.spare = true
	c.spare = append(c.spare, b.id)
}

// takeSpare returns an empty call bridge kept by retireBridge, or "" (under
// c.mu). Entries Asterisk destroyed meanwhile (BridgeDestroyed) are skipped.
func (c *Client) takeSpare() string {
	for len(c.spare) > 0 {
		id := c.spare[len(c.spare)-1]
		c.spare = c.spare[:len(c.spare)-1]
		if b := c.bridges[id]; b != nil && b.spare && len(b.members) == 0 {
			b.spare = false
			return id
		}
	}
	return ""
}

// bridgeChannels adds (or removes) channels and records the membership.
func (c *Client) bridgeChannels(ctx context.Context, bridge string, add bool, chans ...string) error {
	op := "/addChannel"
	if !add {
		op = "/removeChannel"
	}
	if err := c.call(ctx, "POST", "/bridges/"+url.PathEscape(bridge)+op, url.Values{"channel": {strings.Join(chans, ",")}}, nil); err != nil {
		return fmt.Errorf("ari: bridge %s%s: %w", bridge, op, err)
	}
	c.mu.Lock()
	if b := c.bridges[bridge]; b != nil {
		for _, ch := range chans {
			if add {
				b.members[ch] = true
			} else {
				delete(b.members, ch)
			}
		}
	}
	c.mu.Unlock()
	return nil
}

// bridgeWith returns the id of our bridge of role holding ch, if any.
func (c *Client) bridgeWith(ch, role string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, b := range c.bridges {
		if b.role == role && b.members[ch] {
			return b.id
		}
	}
	return ""
}

// leaveHold stops a leg's music: on the channel, or, for a leg a
// controller of an earlier version held in a holding bridge (found by a
// resync), by taking it out of that bridge (which, empty, is then
// deleted).
func (c *Client) leaveHold(ctx context.Context, id media.LegID) error {
	c.mu.Lock()
	var hold, ch string
	var moh bool
	if l := c.legs[string(id)]; l != nil {
		hold, moh, ch, l.hold, l.moh = l.hold, l.moh, l.live, "", false
	}
	c.mu.Unlock()
	if moh {
		if err := c.call(ctx, "DELETE", chanPath(ch, "/moh"), nil, nil); err != nil {
			if errors.Is(err, media.ErrMediaUnavailable) {
				return err
			}
			c.log.Warn("stopping music on hold failed", "channel", ch, "err", err)
		}
	}
	if hold == "" {
		return nil
	}
	// The holding bridge may be gone already; that is not the leg gone.
	if err := c.rest.do(ctx, "DELETE", "/bridges/"+url.PathEscape(hold)+"/moh", nil, nil); err != nil {
		c.log.Warn("stopping music on hold failed", "bridge", hold, "err", err)
	}
	if err := c.bridgeChannels(ctx, hold, false, ch); err != nil {
		if errors.Is(err, media.ErrMediaUnavailable) {
			return err
		}
		c.log.Warn("leaving the holding bridge failed", "bridge", hold, "err", err)
	}
	return nil
}

// Connect puts two legs in the call's mixing bridge (creating it, or
// reusing the one either leg is in). Other non-monitor legs in that bridge
// are removed: connecting the customer to a new agent detaches the old.
func (c *Client) Connect(ctx context.Context, a, b media.LegID) error {
	for _, id := range []media.LegID{a, b} {
		if err := c.leaveHold(ctx, id); err != nil {
			return err
		}
		if err := c.leaveMonitor(ctx, id); err != nil {
			return err
		}
	}
	ca, cb := c.chanOf(a), c.chanOf(b)
	for attempt := 0; ; attempt++ {
		bridge, others, add, origin, err := c.callBridgeFor(ctx, ca, cb)
		if err != nil {
			return err
		}
		if len(others) > 0 {
			// Routing hangs the detached legs up; failing to detach one
			// (already gone) must not fail the connect.
			if err := c.bridgeChannels(ctx, bridge, false, others...); err != nil {
				c.log.Warn("detaching old legs failed", "bridge", bridge, "err", err)
			}
		}
		if len(add) == 0 {
			return nil
		}
		err = c.bridgeChannels(ctx, bridge, true, add...)
		switch {
		case err == nil:
			return nil
		case origin == bridgeReused && notFound(err) && attempt == 0:
			// A spare someone deleted behind our back: forget it and make
			// a new one.
			c.mu.Lock()
			delete(c.bridges, bridge)
			c.mu.Unlock()
			continue
		case origin != bridgeFound:
			// Nothing entered it, so no event will ever empty it: remove
			// the bridge rather than leave it to a resync.
			c.mu.Lock()
			c.deleteBridge(bridge)
			c.mu.Unlock()
		}
		return err
	}
}

// bridgeOrigin says where callBridgeFor's bridge came from.
type bridgeOrigin int

const (
	bridgeFound   bridgeOrigin = iota // one of the two channels is in it
	bridgeReused                      // a spare (retireBridge)
	bridgeCreated                     // made now
)

// callBridgeFor finds the call bridge either channel is in, or takes a
// spare, or creates one, and says which members to detach and which
// channels to add.
func (c *Client) callBridgeFor(ctx context.Context, ca, cb string) (bridge string, others, add []string, origin bridgeOrigin, err error) {
	for attempt := 0; attempt < 2; attempt++ {
		bridge, origin = c.bridgeWith(ca, roleCall), bridgeFound
		if bridge == "" {
			bridge = c.bridgeWith(cb, roleCall)
		}
		if bridge == "" {
			c.mu.Lock()
			bridge, origin = c.takeSpare(), bridgeReused
			c.mu.Unlock()
		}
		if bridge == "" {
			origin = bridgeCreated
			if bridge, err = c.createBridge(ctx, "mixing", roleCall, ca); err != nil {
				return "", nil, nil, origin, err
			}
		}
		c.mu.Lock()
		br := c.bridges[bridge]
		if br == nil { // it emptied and was deleted meanwhile
			c.mu.Unlock()
			continue
		}
		for m := range br.members {
			if m == ca || m == cb {
				continue
			}
			if l := c.chans[m]; l != nil && l.kind == kindMonitor {
				continue
			}
			others = append(others, m)
		}
		for _, ch := range []string{ca, cb} {
			if !br.members[ch] {
				add = append(add, ch)
			}
		}
		c.mu.Unlock()
		return bridge, others, add, origin, nil
	}
	return "", nil, nil, bridgeFound, fmt.Errorf("ari: connect %s and %s: call bridge keeps vanishing", ca, cb)
}

// leaveMonitor turns a supervisor's monitor leg into a plain call leg
// (take over): its snoop and spy bridge go away.
func (c *Client) leaveMonitor(ctx context.Context, id media.LegID) error {
	c.mu.Lock()
	l := c.legs[string(id)]
	if l == nil || l.kind != kindMonitor {
		c.mu.Unlock()
		return nil
	}
	l.kind = kindDialed
	snoop, spy, sup := l.snoop, l.spy, l.live
	l.snoop, l.spy, l.mode, l.applied = "", "", "", ""
	c.mu.Unlock()
	if spy != "" {
		if err := c.bridgeChannels(ctx, spy, false, sup); err != nil {
			return err
		}
	}
	if snoop != "" {
		if err := c.rest.do(ctx, "DELETE", chanPath(snoop), nil, nil); err != nil && !notFound(err) {
			return fmt.Errorf("ari: removing snoop: %w", err)
		}
	}
	return nil
}
