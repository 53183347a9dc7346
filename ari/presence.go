package ari

import (
	"context"
	"slices"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// refreshLoop asks the dispatcher, every presenceEvery while connected,
// to report device registrations again (in order with events).
func (c *Client) refreshLoop(ctx context.Context) {
	c.whileConnected(ctx, c.presenceEvery, func() bool { return c.enqueue(ctx, queued{refresh: true}) })
}

// whileConnected runs tick every period while the events socket is up,
// until ctx ends or tick returns false.
func (c *Client) whileConnected(ctx context.Context, period time.Duration, tick func() bool) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if c.Connected() && !tick() {
				return
			}
		}
	}
}

// refreshPresence reads GET /endpoints and reports every registered
// device of our technologies, changed or not (a refresh keeps its
// registration from lapsing in presence), and every device that went
// away unnoticed.
func (c *Client) refreshPresence(ctx context.Context) {
	var eps []ari.EndpointData
	if err := c.rest.do(ctx, "GET", "/endpoints", nil, &eps); err != nil {
		c.log.Warn("refreshing device presence failed", "err", err)
		return
	}
	base := media.FactBase{At: time.Now()}
	techs := c.techs()
	var facts []media.Fact
	c.mu.Lock()
	for _, ep := range eps {
		if !slices.Contains(techs, ep.Technology) {
			continue
		}
		endpoint, registered := ep.Technology+"/"+ep.Resource, ep.State == "online"
		if registered {
			delete(c.devices, endpoint) // report it even if unchanged
		}
		facts = append(facts, c.onDevice(base, endpoint, registered)...)
	}
	c.mu.Unlock()
	for _, f := range facts {
		c.facts.Report(f)
	}
}
