package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callfloor/callfloor/state"
)

// DueIndex is the store's due index (state.Schedule) of agents that time
// alone will change: presence that lapses (heartbeat, device registration)
// and wrap-up that ends. Every agent write files the agent there (Stage),
// so the sweep reads only the agents that are due instead of all of them.
const DueIndex = "presence"

// sweepBatch bounds one read of the due index; sweepBatches bounds how
// many batches one Expire works through, so a sweep that keeps failing on
// some agents still returns.
const (
	sweepBatch   = 500
	sweepBatches = 40
)

// nextChange is when time alone next changes a (presence lapses, wrap-up
// ends), and false when nothing will. A past time means "now".
func nextChange(a *Agent) (time.Time, bool) {
	var next time.Time
	due := false
	if a.Online {
		// Online stays true while any input is live: it lapses when the
		// last one does.
		next = a.DeviceUntil
		if a.LoggedIn && a.HeartbeatUntil.After(next) {
			next = a.HeartbeatUntil
		}
		due = true
	}
	if a.SystemStatus == SysAfterCallWork && !a.WrapUpUntil.IsZero() && (!due || a.WrapUpUntil.Before(next)) {
		next, due = a.WrapUpUntil, true
	}
	return next, due
}

// schedule is a's entry in the due index.
func schedule(a *Agent) state.Schedule {
	next, due := nextChange(a)
	if !due {
		return state.Schedule{Index: DueIndex, Member: a.ID, Remove: true}
	}
	at := int64(0)
	if !next.IsZero() {
		at = next.UnixMilli()
	}
	return state.Schedule{Index: DueIndex, Member: a.ID, At: at}
}

// Expire sweeps lapsed heartbeats and device registrations to offline and
// ends wrap-up timers that ran out: it reads only the agents the due index
// says are due, so its cost follows what changes, not the floor's size.
// Run it periodically on one replica (the floor lease holder); it is
// idempotent and safe on several replicas at once.
func (s *Service) Expire(ctx context.Context) error {
	var errs []error
	for range sweepBatches {
		due, err := s.store.Due(ctx, DueIndex, s.now().UnixMilli(), sweepBatch)
		if err != nil {
			return fmt.Errorf("read due agents: %w", err)
		}
		for _, d := range due {
			if err := s.expireOne(ctx, d.Member); err != nil {
				errs = append(errs, err)
			}
		}
		if len(due) < sweepBatch || len(errs) > 0 {
			break
		}
	}
	return errors.Join(errs...)
}

// expireOne applies what time changed to one due agent. If nothing did
// (its entry was stale), the entry is filed again from the record, guarded
// by the record's version so that a concurrent writer's entry wins.
func (s *Service) expireOne(ctx context.Context, id string) error {
	for attempt := range maxRetries {
		if attempt > 0 {
			if err := state.RetryWait(ctx, attempt); err != nil {
				return err
			}
		}
		a, err := s.Agent(ctx, id)
		if errors.Is(err, ErrNotFound) {
			_, err = s.store.Commit(ctx, state.Tx{Schedules: []state.Schedule{{Index: DueIndex, Member: id, Remove: true}}})
			return err
		}
		if err != nil {
			return err
		}
		now := s.now()
		rows := applyOnline(&a, now, BySystem)
		if a.SystemStatus == SysAfterCallWork && !a.WrapUpUntil.IsZero() && !now.Before(a.WrapUpUntil) {
			row, err := ApplySystemStatus(&a, SysAvailable, nil, now)
			if err != nil {
				return err
			}
			rows = append(rows, row)
		}
		var tx state.Tx
		if len(rows) == 0 {
			data, err := json.Marshal(a)
			if err != nil {
				return fmt.Errorf("encode agent %s: %w", id, err)
			}
			tx.Puts = []state.Put{{Kind: state.KindAgent, ID: id, Data: data, IfVersion: a.Version}}
			tx.Schedules = []state.Schedule{schedule(&a)}
		} else if err := Stage(&tx, &a, rows, now, s.loc); err != nil {
			return err
		}
		_, err = s.store.Commit(ctx, tx)
		switch {
		case errors.Is(err, state.ErrConflict) && len(rows) == 0:
			return nil // the concurrent writer filed it
		case errors.Is(err, state.ErrConflict):
			continue
		case err != nil:
			return fmt.Errorf("expire agent %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("agent %s: too many concurrent writers: %w", id, ErrConflict)
}

// Reindex files every agent in the due index. Agents written before the
// index existed are not in it; the floor's sweeper runs this when it takes
// over. A concurrent agent write may be filed with the time read here; the
// sweep re-reads each agent before acting, so at worst it acts late.
func (s *Service) Reindex(ctx context.Context) error {
	agents, err := s.Agents(ctx)
	if err != nil {
		return err
	}
	for i := 0; i < len(agents); i += sweepBatch {
		var tx state.Tx
		for j := i; j < min(i+sweepBatch, len(agents)); j++ {
			tx.Schedules = append(tx.Schedules, schedule(&agents[j]))
		}
		if _, err := s.store.Commit(ctx, tx); err != nil {
			return fmt.Errorf("reindex agents: %w", err)
		}
	}
	return nil
}
