package store

import (
	"context"
	"sort"

	"github.com/callfloor/callfloor/state"
)

// dueIndex is one due index of the memory store: members sorted by (at,
// member), so Due reads only what is due, plus each member's time to find
// it again. Updates shift the slice (memmove), cheap at floor sizes.
type dueIndex struct {
	at     map[string]int64
	sorted []state.Due
}

func newDueIndex() *dueIndex { return &dueIndex{at: map[string]int64{}} }

func dueLess(a, b state.Due) bool { return a.At < b.At || a.At == b.At && a.Member < b.Member }

func (d *dueIndex) search(x state.Due) int {
	return sort.Search(len(d.sorted), func(i int) bool { return !dueLess(d.sorted[i], x) })
}

func (d *dueIndex) remove(member string) {
	at, ok := d.at[member]
	if !ok {
		return
	}
	delete(d.at, member)
	i := d.search(state.Due{Member: member, At: at})
	d.sorted = append(d.sorted[:i], d.sorted[i+1:]...)
}

func (d *dueIndex) set(member string, at int64) {
	d.remove(member)
	d.at[member] = at
	x := state.Due{Member: member, At: at}
	i := d.search(x)
	d.sorted = append(d.sorted, state.Due{})
	copy(d.sorted[i+1:], d.sorted[i:])
	d.sorted[i] = x
}

// Due implements state.Store.
func (m *Memory) Due(ctx context.Context, index string, until int64, limit int) ([]state.Due, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, state.ErrClosed
	}
	out := []state.Due{}
	idx := m.due[index]
	if idx == nil {
		return out, nil
	}
	for _, d := range idx.sorted {
		if d.At > until || limit > 0 && len(out) == limit {
			break
		}
		out = append(out, d)
	}
	return out, nil
}
