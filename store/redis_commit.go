package store

import (
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/state"
)

//go:embed lua/commit.lua
var commitSource string

// commitScript runs with EVALSHA and falls back to EVAL (loading it) when
// the server does not know it yet, e.g. after a restart.
var commitScript = redis.NewScript(commitSource)

// Commit implements state.Store with one call of lua/commit.lua.
func (r *Redis) Commit(ctx context.Context, tx state.Tx) ([]state.Event, error) {
	if r.isClosed() {
		return nil, state.ErrClosed
	}
	if err := validateTx(&tx); err != nil {
		return nil, err
	}
	if tx.Empty() && tx.Fence.Lease == "" {
		return nil, nil
	}
	keys, args, err := r.commitArgs(&tx)
	if err != nil {
		return nil, err
	}
	res, err := commitScript.Run(ctx, r.client, keys, args...).Slice()
	if err != nil {
		return nil, r.wrap("commit", err)
	}
	evs, err := r.commitResult(&tx, res)
	if err == nil {
		r.opts.observer.Appended(evs)
	}
	return evs, err
}

// commitArgs lays out KEYS and ARGV as lua/commit.lua documents.
func (r *Redis) commitArgs(tx *state.Tx) ([]string, []any, error) {
	keys := []string{r.logKey(), r.leaseTokenKey(tx.Fence.Lease)}
	args := []any{
		r.opts.retention, r.trim,
		len(tx.Puts), len(tx.Deletes), len(tx.Appends), len(tx.Incrs), len(tx.Schedules), len(tx.Events),
		tx.Fence.Token, FeedDeletions,
	}
	for _, p := range tx.Puts {
		keys = append(keys, r.recordKey(p.Kind), r.changesKey(p.Kind))
		args = append(args, p.ID, p.IfVersion, p.Data)
	}
	for _, d := range tx.Deletes {
		keys = append(keys, r.recordKey(d.Kind), r.changesKey(d.Kind), r.deletionsKey(d.Kind))
		args = append(args, d.ID, d.IfVersion)
	}
	for _, a := range tx.Appends {
		keys = append(keys, r.seriesKey(a.Series), r.seriesSeqKey(a.Series))
		args = append(args, len(a.Entries))
		for _, e := range a.Entries {
			args = append(args, e.Score, e.Data)
		}
	}
	for _, in := range tx.Incrs {
		keys = append(keys, r.counterKey(in.Counter))
		args = append(args, in.Field, in.Delta)
	}
	for _, sc := range tx.Schedules {
		remove := 0
		if sc.Remove {
			remove = 1
		}
		keys = append(keys, r.dueKey(sc.Index))
		args = append(args, sc.Member, sc.At, remove)
	}
	for i, e := range tx.Events {
		scope, err := json.Marshal(e.Scope)
		if err != nil {
			return nil, nil, fmt.Errorf("redis store: event %d scope: %w", i, err)
		}
		args = append(args, e.Type, scope, e.Data)
	}
	return keys, args, nil
}

func (r *Redis) commitResult(tx *state.Tx, res []any) ([]state.Event, error) {
	if len(res) < 2 {
		return nil, fmt.Errorf("redis store: commit: short script reply %v", res)
	}
	if ok, _ := res[0].(int64); ok == 0 {
		i, _ := res[1].(int64)
		if i == 0 {
			return nil, fmt.Errorf("lease %q token %d: %w", tx.Fence.Lease, tx.Fence.Token, state.ErrFenced)
		}
		return nil, conflictError(tx, int(i))
	}
	atStr, _ := res[1].(string)
	micros, err := strconv.ParseInt(atStr, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("redis store: commit: bad clock %q", atStr)
	}
	at := time.UnixMicro(micros)
	if len(res)-2 != len(tx.Events) {
		return nil, fmt.Errorf("redis store: commit: %d event ids for %d events", len(res)-2, len(tx.Events))
	}
	out := make([]state.Event, len(tx.Events))
	for i, e := range tx.Events {
		id, _ := res[2+i].(string)
		out[i] = state.Event{ID: id, Type: e.Type, Scope: cloneScope(e.Scope), Data: cloneBytes(e.Data), At: at}
	}
	return out, nil
}

// conflictError names precondition i (1-based over puts, then deletes).
func conflictError(tx *state.Tx, i int) error {
	if i >= 1 && i <= len(tx.Puts) {
		p := tx.Puts[i-1]
		return fmt.Errorf("put %d %s %q: want version %d: %w", i-1, p.Kind, p.ID, p.IfVersion, state.ErrConflict)
	}
	if j := i - len(tx.Puts); j >= 1 && j <= len(tx.Deletes) {
		d := tx.Deletes[j-1]
		return fmt.Errorf("delete %d %s %q: want version %d: %w", j-1, d.Kind, d.ID, d.IfVersion, state.ErrConflict)
	}
	return fmt.Errorf("precondition %d: %w", i, state.ErrConflict)
}
