package ari

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/callfloor/callfloor/presence"
)

// Device subscriptions. Presence comes from the agents' devices'
// states: the application subscribes to "deviceState:PJSIP/<user>" for
// every device of every agent (Config.Devices), and a periodic sync
// follows agents and devices being added and removed. chan_pjsip reports
// a device UNAVAILABLE while its endpoint has no reachable contact, so
// these carry registrations; Asterisk delivers them from its device-state
// subscription pool, not through the application's own queue. The
// earlier endpoint subscriptions ("endpoint:PJSIP/<user>") brought
// registrations and contacts too, but an endpoint subscription forwards
// every message of every channel on the endpoint through that one queue
// — 126 messages a call instead of 81, and the queue is what bounds a
// floor on Asterisk at 200 calls/s (docs/performance.md, "Asterisk side
// by side with app_queue"). Contacts are read at dial time instead
// (contacts.go). Without Config.Devices (or when listing them fails) the
// application falls back to the whole technology, "endpoint:PJSIP".

// AgentDirectory lists the floor's agents (presence.Service does).
type AgentDirectory interface {
	Agents(ctx context.Context) ([]presence.Agent, error)
}

// AgentDevices is a Config.Devices over the floor's agents: the SIP users
// of every agent's app device and IP phone (README.md, "Devices").
func AgentDevices(d AgentDirectory) func(ctx context.Context) ([]string, error) {
	return func(ctx context.Context) ([]string, error) {
		agents, err := d.Agents(ctx)
		if err != nil {
			return nil, fmt.Errorf("ari: listing agents: %w", err)
		}
		out := make([]string, 0, 2*len(agents))
		for i := range agents {
			out = append(out, agents[i].AppUser(), agents[i].DeskUser())
		}
		return out, nil
	}
}

// DefaultDeviceSync is how often the device list is re-read.
const DefaultDeviceSync = 30 * time.Second

// WithDeviceSync sets how often Config.Devices is re-read to follow
// agents and devices added or removed (default DefaultDeviceSync).
func WithDeviceSync(d time.Duration) Option { return func(c *Client) { c.deviceSync = d } }

// Asterisk parses at most 127 comma-separated event sources per request
// (res_ari_applications.c, MAX_VALS) and reads a request line of at most
// 4096 bytes (main/http.c), so subscriptions go in batches.
const (
	maxSourcesPerRequest = 100
	maxSourceQueryBytes  = 3000
	// maxUnsubscribeRounds bounds the DELETEs of one sync for a source
	// subscribed several times.
	maxUnsubscribeRounds = 64
)

// subscribe narrows the application's events to those callfloor uses and
// subscribes to the agents' devices (or, without Config.Devices or when
// it fails, to every endpoint of the technology). Asterisk keeps an
// application's subscriptions after its socket closes (an endpoint
// subscription keeps the deactivated application alive, and a new socket
// reactivates it: res_stasis app.c), so each connection starts from what
// Asterisk lists (GET /applications/{app}) — which also drops endpoint
// subscriptions an earlier version of callfloor left.
func (c *Client) subscribe(ctx context.Context) {
	if err := c.rest.send(ctx, "PUT", "/applications/"+c.cfg.App+"/eventFilter", nil, eventFilter(), nil); err != nil {
		c.log.Warn("narrowing the application's events failed; receiving all of them", "err", err)
	}
	c.subMu.Lock()
	defer c.subMu.Unlock()
	c.subs, c.synced = map[string]bool{}, ""
	var app application
	if err := c.rest.do(ctx, "GET", "/applications/"+c.cfg.App, nil, &app); err != nil {
		c.log.Warn("reading the application's subscriptions failed", "err", err)
	} else {
		c.subs = app.sources()
	}
	c.syncSubscriptions(ctx)
}

// application is the part of ARI's Application model we read.
type application struct {
	EndpointIDs []string `json:"endpoint_ids"`
	DeviceNames []string `json:"device_names"`
}

// sources are the endpoint and device event sources it is subscribed to.
func (a application) sources() map[string]bool {
	out := make(map[string]bool, len(a.EndpointIDs)+len(a.DeviceNames))
	for _, id := range a.EndpointIDs {
		out["endpoint:"+id] = true
	}
	for _, name := range a.DeviceNames {
		out["deviceState:"+name] = true
	}
	return out
}

// syncLoop re-reads the device list every deviceSync while connected, so
// the subscriptions follow the directory of agents; Asterisk is asked
// only when the list changed.
func (c *Client) syncLoop(ctx context.Context) {
	if c.cfg.Devices == nil {
		return
	}
	c.whileConnected(ctx, c.deviceSync, func() bool {
		c.subMu.Lock()
		added := c.syncSubscriptions(ctx)
		c.subMu.Unlock()
		// A device subscribed only now may have registered before:
		// report registrations again, in order with events.
		return !added || c.enqueue(ctx, queued{refresh: true})
	})
}

// syncSubscriptions subscribes to the sources wanted and not yet
// subscribed, then drops those no longer wanted (under subMu). added
// says whether a device endpoint was newly subscribed.
func (c *Client) syncSubscriptions(ctx context.Context) (added bool) {
	want, ok := c.wantedSources(ctx)
	if !ok {
		return false // unchanged since the last complete sync
	}
	var add, drop []string
	for s := range want {
		if !c.subs[s] {
			add = append(add, s)
		}
	}
	for s := range c.subs {
		if !want[s] {
			drop = append(drop, s)
		}
	}
	slices.Sort(add)
	slices.Sort(drop)
	// Each answer lists the application's subscriptions as they now are,
	// and subs follows it. Asterisk counts interest per source: one
	// subscribed n times (an earlier version of callfloor subscribed on
	// every connection) takes n DELETEs, repeated here up to a bound and
	// continued at the next sync.
	for _, batch := range sourceBatches(add) {
		c.changeSubscriptions(ctx, "POST", batch)
	}
	for _, batch := range sourceBatches(drop) {
		for range maxUnsubscribeRounds {
			if !c.changeSubscriptions(ctx, "DELETE", batch) {
				break
			}
			batch = slices.DeleteFunc(batch, func(s string) bool { return !c.subs[s] })
			if len(batch) == 0 {
				break
			}
		}
	}
	for _, s := range add {
		added = added || c.subs[s] && strings.Contains(s, "/")
	}
	if !maps.Equal(c.subs, want) {
		c.synced = "" // not there yet: try again at the next period
	}
	return added
}

// wantedSources lists the event sources the application should be
// subscribed to: "deviceState:<tech>/<resource>" for every agent device
// (Asterisk accepts a device it does not know yet and reports it once it
// exists), else "endpoint:<tech>" for each technology agents use. ok is
// false when the device list is the one the last complete sync used:
// nothing to do.
func (c *Client) wantedSources(ctx context.Context) (want map[string]bool, ok bool) {
	want = map[string]bool{}
	whole := func() (map[string]bool, bool) {
		c.synced = ""
		for _, tech := range c.techs() {
			want["endpoint:"+tech] = true
		}
		return want, true
	}
	if c.cfg.Devices == nil {
		return whole()
	}
	users, err := c.cfg.Devices(ctx)
	if err != nil {
		c.log.Warn("listing agents' devices failed; subscribing to every endpoint", "err", err)
		return whole()
	}
	slices.Sort(users)
	key := strings.Join(users, "\n")
	if key == c.synced {
		return nil, false
	}
	for _, u := range users {
		if u != "" {
			want["deviceState:"+c.cfg.DeviceFor(u)] = true
		}
	}
	c.synced = key
	return want, true
}

// changeSubscriptions subscribes (POST) or unsubscribes (DELETE) a batch
// and takes the application's subscriptions from the answer.
func (c *Client) changeSubscriptions(ctx context.Context, method string, batch []string) bool {
	var app application
	if err := c.rest.do(ctx, method, "/applications/"+c.cfg.App+"/subscription",
		url.Values{"eventSource": {strings.Join(batch, ",")}}, &app); err != nil {
		c.log.Warn("changing subscriptions failed", "method", method, "sources", len(batch), "first", batch[0], "err", err)
		return false
	}
	c.subs = app.sources()
	return true
}

// sourceBatches splits event sources into requests Asterisk accepts.
func sourceBatches(sources []string) [][]string {
	var out [][]string
	var cur []string
	size := 0
	for _, s := range sources {
		n := len(url.QueryEscape(s)) + 3 // and the escaped comma
		if len(cur) > 0 && (len(cur) == maxSourcesPerRequest || size+n > maxSourceQueryBytes) {
			out = append(out, cur)
			cur, size = nil, 0
		}
		cur = append(cur, s)
		size += n
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}
