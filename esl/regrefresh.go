package esl

import (
	"context"
	"time"

	"github.com/callfloor/callfloor/media"
)

// Registration events name one contact, but what FreeSWITCH removes
// depends on the sofia profile's multiple-registrations setting, which we
// cannot see. Without it (the stock internal profile) a user has one
// registration: a REGISTER from a new contact deletes the others, and any
// unregister (Expires: 0) deletes all of them, each with a single event
// naming only the contact in the request. A "Contact: *" unregister
// (RFC 3261 §10.2.2) even arrives as contact `"" <sip:(null)@(null)>`.
// Tracking contacts one by one then kept an agent online with a contact
// FreeSWITCH had dropped (seen on a real FreeSWITCH 1.11.1). So when an
// event leaves an agent with other contacts, we re-read show registrations
// and let FreeSWITCH's table decide.
//
// The table lags the events (by about 200 ms on an idle 1.11.1; a query
// right after the event still listed the dropped contact). So a refresh
// notes the last registration event seen, waits regRefreshDelay, and
// trusts the table only for events up to the one it noted: younger ones
// keep what their events said. A trigger during the wait (its effect
// may not be in the table yet) makes another round after this one.
const regRefreshDelay = 2 * time.Second

// refreshRegistrations starts a refresh if one is due and none is under
// way. It runs show registrations as json from a follow-up goroutine (the
// reader cannot wait for its own command) and applies the reply in the
// reader, in stream order. Only changes are reported: agents that went
// offline, or came online from the table alone.
func (c *Client) refreshRegistrations(sctx context.Context) {
	if sctx == nil { // no session (a unit test feeding events)
		return
	}
	c.mu.Lock()
	start := c.st.regRefresh && !c.st.regRefreshBusy
	c.st.regRefreshBusy = c.st.regRefreshBusy || start
	c.mu.Unlock()
	if !start {
		return
	}
	c.followUps.Add(1)
	go func() {
		defer c.followUps.Done()
		c.mu.Lock()
		regSeq := c.st.regSeq // the table will have caught up with these
		c.st.regRefresh = false
		c.mu.Unlock()
		select {
		case <-time.After(regRefreshDelay):
		case <-sctx.Done():
			c.mu.Lock()
			c.st.regRefreshBusy = false
			c.mu.Unlock()
			return
		}
		ctx, cancel := context.WithTimeout(sctx, 10*time.Second)
		defer cancel()
		var again bool
		_, err := c.api(ctx, "api show registrations as json", func(f *frame) {
			rows, err := parseRows(f.body)
			now := c.now()
			c.mu.Lock()
			var facts []media.Fact
			if err == nil {
				facts = c.applyRegistrationChanges(rows, now, regSeq)
			}
			c.st.regRefreshBusy = false
			again = c.st.regRefresh // a trigger came during the wait
			c.mu.Unlock()
			if err != nil {
				c.log.Warn("esl: registrations refresh", "err", err)
			}
			c.report(facts)
		})
		if err != nil {
			c.mu.Lock()
			c.st.regRefreshBusy = false
			c.mu.Unlock()
			if sctx.Err() == nil {
				c.log.Warn("esl: registrations refresh", "err", err)
			}
			return
		}
		if again {
			c.refreshRegistrations(sctx)
		}
	}()
}

// applyRegistrationChanges applies a refresh (under c.mu) and keeps the
// facts that change an agent's presence.
func (c *Client) applyRegistrationChanges(rows []map[string]string, now time.Time, regSeq uint64) []media.Fact {
	online := make(map[string]bool, len(c.st.devices))
	for agent, contacts := range c.st.devices {
		online[agent] = len(contacts) > 0
	}
	var facts []media.Fact
	for _, f := range c.applyRegistrations(rows, now, regSeq) {
		if d, ok := f.(media.DeviceState); ok && d.Registered && online[d.AgentID] {
			continue // still online: its own events reported it
		}
		facts = append(facts, f)
	}
	return facts
}
