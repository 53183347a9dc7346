package routing

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// changeFeed is a store that tells which records of a kind changed since
// a mark it handed out (the in-memory store). Other stores are listed
// whole on each refresh and compared by version and bytes, which still
// spares decoding the records that did not change.
type changeFeed interface {
	ChangedSince(ctx context.Context, kind state.Kind, mark uint64) (changed []state.Record, deleted []string, next uint64, full bool, err error)
}

// decodedKind keeps every record of one kind decoded, refreshed from what
// changed since the last refresh: the distribution pass runs on every
// call event, and decoding the whole floor and every live call each time
// was most of the routing engine's CPU (docs/performance.md, Routing).
// Only the dispatcher goroutine uses it.
type decodedKind[T any] struct {
	kind   state.Kind
	decode func(state.Record) (T, error)
	mark   uint64
	items  map[string]*decodedRecord[T]
}

type decodedRecord[T any] struct {
	version int64
	raw     []byte // kept only when the store is listed whole (no feed)
	v       *T
}

func newDecodedKind[T any](kind state.Kind, decode func(state.Record) (T, error)) decodedKind[T] {
	return decodedKind[T]{kind: kind, decode: decode, items: map[string]*decodedRecord[T]{}}
}

// refresh brings the decoded records up to date and reports the ids
// written since the last refresh (new or changed) and the ids gone. A
// changed record gets a new value: values handed out before stay as
// they were.
func (d *decodedKind[T]) refresh(ctx context.Context, st state.Store) (changed, removed []string, err error) {
	if feed, ok := st.(changeFeed); ok {
		recs, deleted, next, full, err := feed.ChangedSince(ctx, d.kind, d.mark)
		if err != nil {
			return nil, nil, fmt.Errorf("read changed %s records: %w", d.kind, err)
		}
		if full {
			changed, removed, err = d.replace(recs, false)
		} else {
			for _, id := range deleted {
				if _, ok := d.items[id]; ok {
					delete(d.items, id)
					removed = append(removed, id)
				}
			}
			for _, r := range recs {
				if err := d.set(r, false); err != nil {
					return nil, nil, err
				}
				changed = append(changed, r.ID)
			}
		}
		if err == nil {
			d.mark = next
		}
		return changed, removed, err
	}
	recs, err := st.List(ctx, d.kind)
	if err != nil {
		return nil, nil, fmt.Errorf("list %s records: %w", d.kind, err)
	}
	return d.replace(recs, true)
}

// replace makes recs the whole set, decoding only records whose version
// or bytes differ from what is held.
func (d *decodedKind[T]) replace(recs []state.Record, keepRaw bool) (changed, removed []string, err error) {
	seen := make(map[string]struct{}, len(recs))
	for _, r := range recs {
		seen[r.ID] = struct{}{}
		if old, ok := d.items[r.ID]; ok && keepRaw && old.version == r.Version && bytes.Equal(old.raw, r.Data) {
			continue
		}
		if err := d.set(r, keepRaw); err != nil {
			return nil, nil, err
		}
		changed = append(changed, r.ID)
	}
	for id := range d.items {
		if _, ok := seen[id]; !ok {
			delete(d.items, id)
			removed = append(removed, id)
		}
	}
	return changed, removed, nil
}

func (d *decodedKind[T]) set(r state.Record, keepRaw bool) error {
	v, err := d.decode(r)
	if err != nil {
		return err
	}
	e := &decodedRecord[T]{version: r.Version, v: &v}
	if keepRaw {
		e.raw = r.Data // stores hand out fresh copies of record data
	}
	d.items[r.ID] = e
	return nil
}

// passState is what the distribution pass keeps between passes: the
// decoded agents with the floor built over them, and the decoded live
// calls. Only the dispatcher goroutine touches it.
type passState struct {
	agents decodedKind[presence.Agent]
	calls  decodedKind[Call]
	floor  *floor
	groups []string // the group records the floor was built with
	// callBuf is the pass's list of live calls, reused by the next pass:
	// copying 5,000 calls into a new slice on every pass was half of the
	// dispatcher's allocations (docs/performance.md, issue 15 third round).
	callBuf []Call
}

func newPassState() *passState {
	return &passState{
		agents: newDecodedKind(state.KindAgent, presence.DecodeAgent),
		calls:  newDecodedKind(state.KindCall, decodeCall),
	}
}

// passFloor is readFloor for the dispatcher: agents that changed since
// the last pass are decoded and swapped into the floor in place; the
// floor's indexes are rebuilt only when agents come or go or change
// groups, or groups are created or deleted.
func (e *Engine) passFloor(ctx context.Context) (*floor, error) {
	p := e.pass
	changed, removed, err := p.agents.refresh(ctx, e.st)
	if err != nil {
		return nil, err
	}
	grecs, err := e.st.List(ctx, state.KindGroup)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	gids := make([]string, len(grecs))
	for i, g := range grecs {
		gids[i] = g.ID
	}
	slices.Sort(gids)
	rebuild := p.floor == nil || len(removed) > 0 || !slices.Equal(gids, p.groups)
	for _, id := range changed {
		if rebuild {
			break
		}
		old, ok := p.floor.agents[id]
		rebuild = !ok || !slices.Equal(old.Groups, p.agents.items[id].v.Groups)
	}
	if rebuild {
		list := make([]*presence.Agent, 0, len(p.agents.items))
		for _, d := range p.agents.items {
			list = append(list, d.v)
		}
		p.floor, p.groups = newFloorOf(list), gids
		for _, g := range gids {
			p.floor.groups[g] = true
		}
		return p.floor, nil
	}
	for _, id := range changed {
		a := p.agents.items[id].v
		p.floor.agents[id], p.floor.list[p.floor.idx[id]] = a, a
	}
	return p.floor, nil
}

// passCalls is allCalls for the dispatcher: only calls written since the
// last pass are decoded. The calls share their slices and maps with the
// held ones, so callers must not change them, and the slice is reused by
// the next pass, so nothing may keep it past this one.
func (e *Engine) passCalls(ctx context.Context) ([]Call, error) {
	p := e.pass
	if _, _, err := p.calls.refresh(ctx, e.st); err != nil {
		return nil, err
	}
	out := p.callBuf[:0]
	for _, d := range p.calls.items {
		out = append(out, *d.v)
	}
	clear(out[len(out):cap(out)]) // drop the last pass's calls beyond this one's
	if out == nil {
		out = []Call{} // as a fresh read answers
	}
	p.callBuf = out
	return out, nil
}

// queueCache keeps the queues decoded by record version and bytes: every
// inbound call looks its hotline up among all queues, and every pass
// lists them, so decoding each queue each time was a sixth of the
// engine's CPU. Safe for concurrent use; callers get copies.
type queueCache struct {
	mu sync.Mutex
	m  map[string]cachedQueue
}

type cachedQueue struct {
	version int64
	raw     []byte
	q       Queue
}

// decodeAll decodes recs, reusing what is held for records that did not
// change, and keeps only recs (deleted queues drop out).
func (c *queueCache) decodeAll(recs []state.Record) ([]Queue, error) {
	c.mu.Lock()
	old := c.m
	c.mu.Unlock()
	next := make(map[string]cachedQueue, len(recs))
	out := make([]Queue, 0, len(recs))
	for _, r := range recs {
		e, ok := old[r.ID]
		if !ok || e.version != r.Version || !bytes.Equal(e.raw, r.Data) {
			var q Queue
			if err := json.Unmarshal(r.Data, &q); err != nil {
				return nil, fmt.Errorf("decode %s %s: %w", r.Kind, r.ID, err)
			}
			e = cachedQueue{version: r.Version, raw: r.Data, q: q}
		}
		next[r.ID] = e
		q := e.q
		q.Members, q.Hotlines = slices.Clone(q.Members), slices.Clone(q.Hotlines)
		out = append(out, q)
	}
	c.mu.Lock()
	c.m = next
	c.mu.Unlock()
	return out, nil
}
