package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"

	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
)

// statsSource turns today's counters into "stats" events for the stream:
// one floor-wide event (unscoped, so only admins see it) and one per group
// and per queue, scoped so each supervisor's stream carries only theirs.
type statsSource struct{ engine *routing.Engine }

func (s statsSource) Snapshot(ctx context.Context) ([]state.NewEvent, error) {
	set, err := s.engine.AllStats(ctx)
	if err != nil {
		return nil, fmt.Errorf("stats snapshot: %w", err)
	}
	out := make([]state.NewEvent, 0, 1+len(set.Groups)+len(set.Queues))
	add := func(st routing.Stats, scope state.Scope) error {
		b, err := json.Marshal(st)
		if err != nil {
			return fmt.Errorf("encode stats: %w", err)
		}
		out = append(out, state.NewEvent{Type: "stats", Scope: scope, Data: b})
		return nil
	}
	if err := add(set.Floor, state.Scope{}); err != nil {
		return nil, err
	}
	// Map order is random; publish in a stable order so streams are
	// reproducible.
	for _, g := range slices.Sorted(maps.Keys(set.Groups)) {
		if err := add(set.Groups[g], state.Scope{Groups: []string{g}}); err != nil {
			return nil, err
		}
	}
	for _, q := range slices.Sorted(maps.Keys(set.Queues)) {
		if err := add(set.Queues[q], state.Scope{Queue: q, Groups: set.QueueGroups[q]}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
