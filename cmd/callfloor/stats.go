package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
)

// statsSource turns today's counters into "stats" events for the stream:
// one floor-wide event (unscoped, so only admins see it) and one per group
// and per queue, scoped so each supervisor's stream carries only theirs.
type statsSource struct {
	engine *routing.Engine
	agents *presence.Service
}

func (s statsSource) Snapshot(ctx context.Context) ([]state.NewEvent, error) {
	floor, err := s.engine.Stats(ctx, presence.System, "", "")
	if err != nil {
		return nil, fmt.Errorf("floor stats: %w", err)
	}
	out := []state.NewEvent{}
	add := func(st routing.Stats, scope state.Scope) error {
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		out = append(out, state.NewEvent{Type: "stats", Scope: scope, Data: b})
		return nil
	}
	if err := add(floor, state.Scope{}); err != nil {
		return nil, err
	}
	groups, err := s.agents.Groups(ctx, presence.System)
	if err != nil {
		return nil, err
	}
	for _, g := range groups {
		st, err := s.engine.Stats(ctx, presence.System, "", g.ID)
		if err != nil {
			return nil, fmt.Errorf("group %s stats: %w", g.ID, err)
		}
		if err := add(st, state.Scope{Groups: []string{g.ID}}); err != nil {
			return nil, err
		}
	}
	queues, err := s.engine.Queues(ctx, presence.System)
	if err != nil {
		return nil, err
	}
	for _, q := range queues {
		st, err := s.engine.Stats(ctx, presence.System, q.ID, "")
		if err != nil {
			return nil, fmt.Errorf("queue %s stats: %w", q.ID, err)
		}
		groups := q.Members // members may name groups; agents' ids never match a group scope
		if err := add(st, state.Scope{Queue: q.ID, Groups: groups}); err != nil {
			return nil, err
		}
	}
	return out, nil
}
