package store

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/callfloor/callfloor/state"
)

// Memory is the in-process state.StoreLog: records, series and counters in
// maps, the event log in a bounded ring buffer. One mutex makes every Commit
// atomic. It is safe for concurrent use. Nothing survives the process.
type Memory struct {
	mu       sync.Mutex
	closed   bool
	records  map[state.Kind]map[string]memRecord
	changes  map[state.Kind]*kindChanges
	series   map[string][]state.Entry
	counters map[string]map[string]int64
	due      map[string]*dueIndex
	leases   leaseState
	relay    memRelay
	log      ring
	// changed is closed and replaced whenever events are appended (and on
	// Close), waking every ReadAfter that waits for news.
	changed chan struct{}
	// done is closed on Close.
	done chan struct{}
	now  func() time.Time
	obs  Observer
}

type memRecord struct {
	version int64
	data    []byte
	seq     uint64 // the write of its kind that wrote it (ChangedSince)
}

var _ state.StoreLog = (*Memory)(nil)

// NewMemory returns an empty in-memory store. Options: WithRetention
// (default DefaultMemoryRetention events).
func NewMemory(opts ...MemoryOption) *Memory {
	o := buildOptions(DefaultMemoryRetention, opts)
	return &Memory{
		records:  make(map[state.Kind]map[string]memRecord),
		changes:  make(map[state.Kind]*kindChanges),
		series:   make(map[string][]state.Entry),
		counters: make(map[string]map[string]int64),
		due:      make(map[string]*dueIndex),
		log:      newRing(o.retention),
		changed:  make(chan struct{}),
		done:     make(chan struct{}),
		now:      time.Now,
		obs:      o.observer,
	}
}

// Get implements state.Store.
func (m *Memory) Get(ctx context.Context, kind state.Kind, id string) (state.Record, error) {
	defer m.observe("get", time.Now())
	if err := ctx.Err(); err != nil {
		return state.Record{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return state.Record{}, state.ErrClosed
	}
	r, ok := m.records[kind][id]
	if !ok {
		return state.Record{}, fmt.Errorf("%s %q: %w", kind, id, state.ErrNotFound)
	}
	return state.Record{Kind: kind, ID: id, Version: r.version, Data: cloneBytes(r.data)}, nil
}

// List implements state.Store.
func (m *Memory) List(ctx context.Context, kind state.Kind) ([]state.Record, error) {
	defer m.observe("list", time.Now())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, state.ErrClosed
	}
	recs := make([]state.Record, 0, len(m.records[kind]))
	for id, r := range m.records[kind] {
		recs = append(recs, state.Record{Kind: kind, ID: id, Version: r.version, Data: cloneBytes(r.data)})
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].ID < recs[j].ID })
	return recs, nil
}

// Commit implements state.Store: every precondition is checked against the
// state before the Tx, then everything is applied under the same lock.
func (m *Memory) Commit(ctx context.Context, tx state.Tx) ([]state.Event, error) {
	defer m.observe("commit", time.Now())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := validateTx(&tx); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, state.ErrClosed
	}
	if !m.fenceOK(tx.Fence) {
		return nil, fmt.Errorf("lease %q token %d: %w", tx.Fence.Lease, tx.Fence.Token, state.ErrFenced)
	}
	for i, p := range tx.Puts {
		if cur := m.records[p.Kind][p.ID].version; !versionOK(p.IfVersion, cur) {
			return nil, fmt.Errorf("put %d %s %q: have version %d, want %d: %w", i, p.Kind, p.ID, cur, p.IfVersion, state.ErrConflict)
		}
	}
	for i, d := range tx.Deletes {
		if cur := m.records[d.Kind][d.ID].version; !versionOK(d.IfVersion, cur) {
			return nil, fmt.Errorf("delete %d %s %q: have version %d, want %d: %w", i, d.Kind, d.ID, cur, d.IfVersion, state.ErrConflict)
		}
	}
	for _, p := range tx.Puts {
		byID := m.records[p.Kind]
		if byID == nil {
			byID = make(map[string]memRecord)
			m.records[p.Kind] = byID
		}
		byID[p.ID] = memRecord{version: byID[p.ID].version + 1, data: cloneBytes(p.Data), seq: m.nextSeq(p.Kind)}
	}
	for _, d := range tx.Deletes {
		if _, ok := m.records[d.Kind][d.ID]; ok {
			delete(m.records[d.Kind], d.ID)
			m.noteDelete(d.Kind, d.ID)
		}
	}
	for _, a := range tx.Appends {
		for _, e := range a.Entries {
			m.series[a.Series] = insertEntry(m.series[a.Series], state.Entry{Score: e.Score, Data: cloneBytes(e.Data)})
		}
	}
	for _, in := range tx.Incrs {
		fields := m.counters[in.Counter]
		if fields == nil {
			fields = make(map[string]int64)
			m.counters[in.Counter] = fields
		}
		fields[in.Field] += in.Delta
	}
	for _, sc := range tx.Schedules {
		idx := m.due[sc.Index]
		if idx == nil {
			idx = newDueIndex()
			m.due[sc.Index] = idx
		}
		if sc.Remove {
			idx.remove(sc.Member)
		} else {
			idx.set(sc.Member, sc.At)
		}
	}
	if len(tx.Events) == 0 {
		return nil, nil
	}
	at := m.now()
	out := make([]state.Event, len(tx.Events))
	for i, e := range tx.Events {
		ev := m.log.push(state.Event{Type: e.Type, Scope: cloneScope(e.Scope), Data: cloneBytes(e.Data), At: at})
		out[i] = copyEvent(ev)
	}
	close(m.changed)
	m.changed = make(chan struct{})
	m.obs.Appended(out)
	return out, nil
}

// insertEntry inserts e after every entry with a score <= e.Score, so equal
// scores keep insertion order.
func insertEntry(s []state.Entry, e state.Entry) []state.Entry {
	i := sort.Search(len(s), func(i int) bool { return s[i].Score > e.Score })
	s = append(s, state.Entry{})
	copy(s[i+1:], s[i:])
	s[i] = e
	return s
}

// Series implements state.Store.
func (m *Memory) Series(ctx context.Context, series string, minScore, maxScore int64, limit int) ([]state.Entry, error) {
	defer m.observe("series", time.Now())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, state.ErrClosed
	}
	s := m.series[series]
	i := sort.Search(len(s), func(i int) bool { return s[i].Score >= minScore })
	out := []state.Entry{}
	for ; i < len(s) && s[i].Score <= maxScore; i++ {
		if limit > 0 && len(out) == limit {
			break
		}
		out = append(out, state.Entry{Score: s[i].Score, Data: cloneBytes(s[i].Data)})
	}
	return out, nil
}

// Counters implements state.Store.
func (m *Memory) Counters(ctx context.Context, counter string) (map[string]int64, error) {
	defer m.observe("counters", time.Now())
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, state.ErrClosed
	}
	out := make(map[string]int64, len(m.counters[counter]))
	for f, v := range m.counters[counter] {
		out[f] = v
	}
	return out, nil
}

// Ping implements state.Store; a memory store is reachable until closed.
func (m *Memory) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return state.ErrClosed
	}
	return nil
}

// Close implements state.StoreLog. Waiting readers return state.ErrClosed.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.closed {
		m.closed = true
		close(m.changed)
		close(m.done)
	}
	return nil
}

// cloneScope copies s; an empty Groups becomes nil, as it does after a
// JSON round trip through Redis.
func cloneScope(s state.Scope) state.Scope {
	if len(s.Groups) == 0 {
		s.Groups = nil
	} else {
		s.Groups = append([]string{}, s.Groups...)
	}
	return s
}

func copyEvent(e state.Event) state.Event {
	e.Scope = cloneScope(e.Scope)
	e.Data = cloneBytes(e.Data)
	return e
}
