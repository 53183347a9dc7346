package store

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/state"
)

//go:embed lua/changes.lua
var changesSource string

var changesScript = redis.NewScript(changesSource)

// ChangedSince is Memory.ChangedSince on Redis, with the same meaning:
// the records of kind written since mark, the ids deleted since then (and
// not written again), the mark to pass next time, and full when the
// caller must replace what it holds with changed. The commit script
// numbers every write of a kind inside the same atomic step that makes
// it, so a feed read on one replica sees the writes of every replica
// (docs/performance.md, Agents list). Records come unsorted.
func (r *Redis) ChangedSince(ctx context.Context, kind state.Kind, mark uint64) (changed []state.Record, deleted []string, next uint64, full bool, err error) {
	if r.isClosed() {
		return nil, nil, 0, false, state.ErrClosed
	}
	keys := []string{r.recordKey(kind), r.changesKey(kind), r.deletionsKey(kind)}
	res, err := changesScript.Run(ctx, r.client, keys, mark).Slice()
	if err != nil {
		return nil, nil, 0, false, r.wrap("changed since", err)
	}
	if len(res) < 3 {
		return nil, nil, 0, false, fmt.Errorf("redis store: changed since: short script reply %v", res)
	}
	seq, _ := res[0].(int64)
	isFull, _ := res[1].(int64)
	items, _ := res[2].([]any)
	if isFull == 1 {
		changed, err = fullRecords(kind, items)
		return changed, nil, uint64(seq), true, err
	}
	for i := 0; i+2 < len(items); i += 3 {
		id, _ := items[i].(string)
		v, _ := items[i+1].(string)
		data, _ := items[i+2].(string)
		version, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, nil, 0, false, fmt.Errorf("redis store: %s %q: bad version %q", kind, id, v)
		}
		changed = append(changed, state.Record{Kind: kind, ID: id, Version: version, Data: []byte(data)})
	}
	if len(res) > 3 {
		dels, _ := res[3].([]any)
		for _, d := range dels {
			id, _ := d.(string)
			deleted = append(deleted, id)
		}
	}
	return changed, deleted, uint64(seq), false, nil
}

// fullRecords turns a record hash's HGETALL reply (field, value, ...)
// into its records.
func fullRecords(kind state.Kind, flat []any) ([]state.Record, error) {
	data := make(map[string]string, len(flat)/4)
	versions := make(map[string]string, len(flat)/4)
	for i := 0; i+1 < len(flat); i += 2 {
		f, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		if id, ok := strings.CutPrefix(f, "v:"); ok {
			versions[id] = v
		} else if id, ok := strings.CutPrefix(f, "d:"); ok {
			data[id] = v
		}
	}
	recs := make([]state.Record, 0, len(versions))
	for id, v := range versions {
		version, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("redis store: %s %q: bad version %q", kind, id, v)
		}
		recs = append(recs, state.Record{Kind: kind, ID: id, Version: version, Data: []byte(data[id])})
	}
	return recs, nil
}
