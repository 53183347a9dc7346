package reports

import (
	"maps"
	"sync"
	"time"
)

// memo is what this DB's projector itself last wrote, so that Apply skips
// the statements whose outcome it already knows: the SELECT of a call's
// state before each of its events, the INSERT of a ring attempt a later
// event repeats, the UPSERT of an agent whose name, groups, distribution
// and role did not change, and the SELECT of an attempt's device. Those
// statements were most of the projector's per-event SQL.
//
// It may only ever tell what the database holds, hence:
//   - Only committed writes enter it: a batch's entries are kept aside
//     (memoBatch) and merged after the commit succeeded; any error of
//     Apply drops the whole memo (a failed commit may or may not have
//     landed).
//   - Only this DB's own chain of commits is known: every Apply moves the
//     cursor by compare-and-set, so nobody else wrote between two of its
//     commits if the second starts where the first ended. The memo keeps
//     the position and epoch its last commit left, and an Apply from
//     anywhere else (another replica projected meanwhile, a gap, a new log)
//     starts from an empty memo. Project also empties it when it starts
//     (each lease term), and ErrMoved, being an error, drops it.
//   - Retention (Prune, which every replica runs) deletes calls and ring
//     attempts older than at least a day, outside this chain: such rows
//     are trusted only while they started less than memoMaxAge before
//     Apply's now, so a pruned row is never assumed present.
//   - It stays small: a call is forgotten once its end was written (no
//     event follows it), and everything once it holds memoMaxEntries.
//
// Agent status intervals and monitors are not memoized.
type memo struct {
	// mu is held for a whole Apply: the memo belongs to one transaction
	// at a time.
	mu         sync.Mutex
	pos, epoch string // where the cursor stood after the last merged commit
	calls      map[string]*memoCall
	agents     map[string]memoAgent
	entries    int // calls, their attempts and agents held
}

const (
	// memoMaxAge: the shortest retention is one day (AddDate, so 23 h
	// across a DST change); half a day leaves room for replicas' clocks.
	memoMaxAge = 12 * time.Hour
	// memoMaxEntries bounds the memo: 5,000 live calls with their
	// attempts and 10,000 agents fit.
	memoMaxEntries = 50_000
)

// memoCall is a calls row as last written.
type memoCall struct {
	state     string
	transfers int64
	agent     string
	startedMs int64
	// attempts are the ids of the call's ring_attempts rows inserted.
	attempts map[string]struct{}
}

func (c *memoCall) size() int {
	if c == nil {
		return 0
	}
	return 1 + len(c.attempts)
}

// memoAgent is a report_agents row as last written.
type memoAgent struct {
	name, groups, distribution, role string
}

// reset forgets everything.
func (m *memo) reset() {
	m.pos, m.epoch = "", ""
	m.calls, m.agents, m.entries = nil, nil, 0
}

// forget empties the memo (Project, at the start of each lease term).
func (m *memo) forget() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.reset()
}

// batch starts collecting one Apply's writes; from and epoch are where the
// Apply starts, now its clock.
func (m *memo) batch(from, epoch string, now time.Time) *memoBatch {
	if m.pos != from || m.epoch != epoch {
		m.reset()
	}
	return &memoBatch{m: m, minMs: now.Add(-memoMaxAge).UnixMilli()}
}

// merge records a committed batch's writes, the cursor now at pos.
func (m *memo) merge(b *memoBatch, pos, epoch string) {
	m.pos, m.epoch = pos, epoch
	if m.calls == nil {
		m.calls, m.agents = map[string]*memoCall{}, map[string]memoAgent{}
	}
	for id, c := range b.calls {
		m.entries -= m.calls[id].size()
		if c == nil {
			delete(m.calls, id)
			continue
		}
		m.calls[id] = c
		m.entries += c.size()
	}
	for id, a := range b.agents {
		if _, ok := m.agents[id]; !ok {
			m.entries++
		}
		m.agents[id] = a
	}
	if m.entries > memoMaxEntries {
		m.calls, m.agents, m.entries = nil, nil, 0
	}
}

// memoBatch is one Apply's view of the memo: the committed entries with
// this transaction's own writes over them, kept aside until the commit.
type memoBatch struct {
	m      *memo
	minMs  int64                // rows started before are not trusted (retention)
	calls  map[string]*memoCall // nil: forgotten (the call ended)
	agents map[string]memoAgent
}

// call is the calls row id as last written, nil if not known. The result
// is read-only.
func (b *memoBatch) call(id string) *memoCall {
	c, ok := b.calls[id]
	if !ok {
		c = b.m.calls[id]
	}
	if c == nil || c.startedMs < b.minMs {
		return nil
	}
	return c
}

// attemptKnown says whether the ring attempt id of call c, started at
// startedMs, is already in ring_attempts.
func (b *memoBatch) attemptKnown(c *memoCall, id string, startedMs int64) bool {
	_, ok := c.attempts[id]
	return ok && startedMs >= b.minMs
}

// attemptsOf returns a set of c's known attempt ids this batch may add
// to: c's own if the batch already owns it, else a copy.
func (b *memoBatch) attemptsOf(id string, c *memoCall) map[string]struct{} {
	if c == nil {
		return map[string]struct{}{}
	}
	if own, ok := b.calls[id]; ok && own == c {
		return c.attempts
	}
	return maps.Clone(c.attempts)
}

func (b *memoBatch) putCall(id string, c *memoCall) {
	if b.calls == nil {
		b.calls = map[string]*memoCall{}
	}
	b.calls[id] = c
}

func (b *memoBatch) agent(id string) (memoAgent, bool) {
	if a, ok := b.agents[id]; ok {
		return a, true
	}
	a, ok := b.m.agents[id]
	return a, ok
}

func (b *memoBatch) putAgent(id string, a memoAgent) {
	if b.agents == nil {
		b.agents = map[string]memoAgent{}
	}
	b.agents[id] = a
}
