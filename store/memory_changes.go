package store

import (
	"context"
	"time"

	"github.com/callfloor/callfloor/state"
)

// FeedDeletions bounds the deletions a kind remembers for ChangedSince (in
// both stores); a mark older than the oldest one kept gets the whole kind
// instead.
const FeedDeletions = 4096

// kindChanges numbers the writes of one kind of record: every put takes
// the next number (kept on the record), every delete too (kept in dels).
type kindChanges struct {
	seq  uint64
	dels []deletion
	// dropped: deletions numbered at or below it were forgotten.
	dropped uint64
}

type deletion struct {
	seq uint64
	id  string
}

// nextSeq numbers one write of kind. Callers hold m.mu.
func (m *Memory) nextSeq(kind state.Kind) uint64 {
	k := m.changes[kind]
	if k == nil {
		k = &kindChanges{}
		m.changes[kind] = k
	}
	k.seq++
	return k.seq
}

// noteDelete remembers a deletion for ChangedSince. Callers hold m.mu.
func (m *Memory) noteDelete(kind state.Kind, id string) {
	seq := m.nextSeq(kind)
	k := m.changes[kind]
	if len(k.dels) >= FeedDeletions {
		half := len(k.dels) / 2
		k.dropped = k.dels[half-1].seq
		k.dels = append(k.dels[:0], k.dels[half:]...)
	}
	k.dels = append(k.dels, deletion{seq: seq, id: id})
}

// ChangedSince lists the records of kind written since mark and the ids
// deleted since then (and not written again), with the mark to pass next
// time. Mark 0, or a mark older than the deletions it remembers, gets
// every record with full set: the caller replaces what it holds. The
// routing engine's distribution pass reads agents and calls this way, so
// a pass costs what changed, not the whole floor (docs/performance.md,
// Routing). Records come unsorted.
func (m *Memory) ChangedSince(ctx context.Context, kind state.Kind, mark uint64) (changed []state.Record, deleted []string, next uint64, full bool, err error) {
	defer m.observe("changed_since", time.Now())
	if err := ctx.Err(); err != nil {
		return nil, nil, 0, false, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, 0, false, state.ErrClosed
	}
	k := m.changes[kind]
	if k == nil {
		k = &kindChanges{}
		m.changes[kind] = k
	}
	next = k.seq
	full = mark == 0 || mark < k.dropped || mark > k.seq
	recs := m.records[kind]
	if !full && mark == k.seq {
		return nil, nil, next, false, nil
	}
	for id, r := range recs {
		if full || r.seq > mark {
			changed = append(changed, state.Record{Kind: kind, ID: id, Version: r.version, Data: cloneBytes(r.data)})
		}
	}
	if full {
		return changed, nil, next, true, nil
	}
	for i := len(k.dels) - 1; i >= 0 && k.dels[i].seq > mark; i-- {
		if _, ok := recs[k.dels[i].id]; !ok {
			deleted = append(deleted, k.dels[i].id)
		}
	}
	return changed, deleted, next, false, nil
}
