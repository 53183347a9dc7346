package presence

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/callfloor/callfloor/state"
)

// listCache keeps each agent record's decoded form, keyed by the record's
// bytes and version, so listing every agent (each distribution pass, GET
// /v1/agents, stats) decodes only the agents that changed since the last
// listing. Decoding was most of the cost of those listings on a floor of
// 10,000 agents (docs/performance.md, Agents list).
type listCache struct {
	mu sync.Mutex
	m  map[string]cachedAgent
	// With a change feed: the feed's mark and the ids in order (nil when
	// agents came or went since).
	mark uint64
	ids  []string
}

type cachedAgent struct {
	raw     []byte
	version int64
	a       Agent
}

// decodeAll decodes recs, reusing what the previous call decoded, and
// keeps only recs for the next call (deleted agents drop out).
func (c *listCache) decodeAll(recs []state.Record) ([]Agent, error) {
	c.mu.Lock()
	old := c.m
	c.mu.Unlock()
	next := make(map[string]cachedAgent, len(recs))
	out := make([]Agent, 0, len(recs))
	for _, r := range recs {
		if e, ok := old[r.ID]; ok && e.version == r.Version && bytes.Equal(e.raw, r.Data) {
			next[r.ID] = e
			out = append(out, e.a.clone())
			continue
		}
		a, err := DecodeAgent(r)
		if err != nil {
			return nil, err
		}
		// Stores hand out fresh copies of record data: keeping it is safe.
		next[r.ID] = cachedAgent{raw: r.Data, version: r.Version, a: a.clone()}
		out = append(out, a)
	}
	c.mu.Lock()
	c.m = next
	c.mu.Unlock()
	return out, nil
}

// clone copies what an Agent shares by reference, so a caller changing
// the agent it got cannot change the cached one.
func (a Agent) clone() Agent {
	a.Groups = slices.Clone(a.Groups)
	if a.CallID != nil {
		id := *a.CallID
		a.CallID = &id
	}
	a.Devices = slices.Clone(a.Devices)
	return a
}

// changeFeed is a store that tells which records of a kind changed since
// a mark it handed out (store.Memory and store.Redis). With it, listing
// every agent neither copies nor compares the records that did not change.
type changeFeed interface {
	ChangedSince(ctx context.Context, kind state.Kind, mark uint64) (changed []state.Record, deleted []string, next uint64, full bool, err error)
}

// fromFeed lists every agent, ordered by id, from what changed since the
// previous listing. Listings are serialised (each costs what changed
// plus the copies handed out).
func (c *listCache) fromFeed(ctx context.Context, feed changeFeed) ([]Agent, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(ctx, feed); err != nil {
		return nil, err
	}
	out := make([]Agent, len(c.ids))
	for i, id := range c.ids {
		out[i] = c.m[id].a.clone()
	}
	return out, nil
}

// page is fromFeed narrowed to the agents match accepts after cursor, at
// most limit: only those are copied. next is the last id returned when
// more match after it, else "".
func (c *listCache) page(ctx context.Context, feed changeFeed, match func(*Agent) bool, cursor string, limit int) (out []Agent, next string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.refresh(ctx, feed); err != nil {
		return nil, "", err
	}
	i, found := slices.BinarySearch(c.ids, cursor)
	if found {
		i++
	}
	for ; i < len(c.ids); i++ {
		e := c.m[c.ids[i]]
		if !match(&e.a) {
			continue
		}
		if len(out) == limit {
			return out, out[limit-1].ID, nil
		}
		out = append(out, e.a.clone())
	}
	return out, "", nil
}

// refresh brings the kept agents up to date with the feed. Callers hold
// c.mu.
func (c *listCache) refresh(ctx context.Context, feed changeFeed) error {
	recs, deleted, next, full, err := feed.ChangedSince(ctx, state.KindAgent, c.mark)
	if err != nil {
		return fmt.Errorf("list agents: %w", err)
	}
	m := c.m
	if full || m == nil {
		m = make(map[string]cachedAgent, len(recs))
		c.ids = nil
	}
	for _, id := range deleted {
		if _, ok := m[id]; ok {
			delete(m, id)
			c.ids = nil
		}
	}
	for _, r := range recs {
		a, err := DecodeAgent(r)
		if err != nil {
			return err
		}
		if _, ok := m[r.ID]; !ok {
			c.ids = nil
		}
		m[r.ID] = cachedAgent{raw: r.Data, version: r.Version, a: a}
	}
	c.m, c.mark = m, next
	if c.ids == nil {
		c.ids = slices.Sorted(maps.Keys(m))
	}
	return nil
}

// agent decodes one agent's record, reusing the kept decoding when the
// record is the one kept (version and bytes). A routing transaction
// reads each agent it touches, several times a call: decoding them was a
// tenth of the engine's CPU. A newer record replaces a kept one, so the
// next listing starts from it; an agent not kept is not added (a listing
// with a change feed adds and removes agents from the feed alone).
func (c *listCache) agent(r state.Record) (Agent, error) {
	c.mu.Lock()
	e, ok := c.m[r.ID]
	c.mu.Unlock()
	if ok && e.version == r.Version && bytes.Equal(e.raw, r.Data) {
		return e.a.clone(), nil
	}
	a, err := DecodeAgent(r)
	if err != nil || !ok {
		return a, err
	}
	c.mu.Lock()
	if e, ok := c.m[r.ID]; ok && e.version < r.Version {
		c.m[r.ID] = cachedAgent{raw: r.Data, version: r.Version, a: a.clone()}
	}
	c.mu.Unlock()
	return a, nil
}
