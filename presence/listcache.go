package presence

import (
	"bytes"
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
	a.Devices = maps.Clone(a.Devices)
	return a
}
