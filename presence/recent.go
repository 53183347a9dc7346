package presence

import "sync"

// recentAgents keeps, per agent, the record this service last read or
// wrote (decoded, with its stored bytes), so a status change can start
// from it instead of reading the store (Service.mutateOnce). It is a
// guess checked by the commit's version precondition, never an answer:
// reads (GET, listings) still go to the store. One entry per agent
// changed through this service: bounded by the floor.
type recentAgents struct {
	mu sync.Mutex
	m  map[string]recentAgent
}

type recentAgent struct {
	a   Agent
	raw []byte
}

// get returns a copy of the kept agent and its stored bytes.
func (c *recentAgents) get(id string) (Agent, []byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[id]
	if !ok {
		return Agent{}, nil, false
	}
	return e.a.clone(), e.raw, true
}

// put keeps a copy of a, stored as raw (which must not change after).
func (c *recentAgents) put(id string, a Agent, raw []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]recentAgent)
	}
	c.m[id] = recentAgent{a: a.clone(), raw: raw}
}

func (c *recentAgents) forget(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, id)
}
