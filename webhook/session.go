package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/state"
)

// session is one leadership term of a Dispatcher: one pipe per webhook,
// the shared request limit, and the term whose fence its writes carry.
type session struct {
	d    *Dispatcher
	sem  chan struct{} // bounds simultaneous requests across pipes
	term lease.Term

	// Only the lead loop touches these.
	cursors map[string]string // cursors as of the leadership start
	pipes   map[string]*pipe
	live    map[string]bool   // registered hooks as of the last sync (nil before)
	saved   map[string]string // cursors last persisted
}

func (d *Dispatcher) newSession(term lease.Term, cursors map[string]string) *session {
	return &session{
		d: d, sem: make(chan struct{}, d.concurrency), term: term,
		cursors: cursors, pipes: map[string]*pipe{}, saved: cursors,
	}
}

// sync starts a pipe for every registered hook without one and stops the
// pipes of deleted hooks.
func (s *session) sync(ctx context.Context) error {
	recs, err := loadAll(ctx, s.d.store)
	if err != nil {
		return err
	}
	live := make(map[string]bool, len(recs))
	for _, rec := range recs {
		live[rec.ID] = true
	}
	s.live = live
	for _, rec := range recs {
		if s.pipes[rec.ID] != nil {
			continue
		}
		from, ok := s.cursors[rec.ID]
		if !ok {
			from = rec.StartAfter
		}
		ds, _, err := loadDeliveries(ctx, s.d.store, rec.ID)
		if err != nil {
			return err
		}
		s.pipes[rec.ID] = s.startPipe(ctx, rec, from, ds)
	}
	for id, p := range s.pipes {
		if !live[id] {
			p.stop()
			delete(s.pipes, id)
		}
	}
	return nil
}

func (s *session) stopAll() {
	for _, p := range s.pipes {
		p.stop()
	}
}

// persist writes every pipe's cursor and the changed delivery logs in one
// transaction fenced by the lease term, so a replica that lost the lease
// cannot move a cursor. force writes even when nothing changed.
func (s *session) persist(ctx context.Context, force bool) error {
	d := s.d
	rec := cursorRecord{Cursors: make(map[string]string, len(s.pipes)), Token: s.term.Token}
	// Cursors of live hooks without a pipe yet (before the first sync,
	// or a failed pipe start) are kept as they were.
	for id, c := range s.saved {
		if s.live == nil || s.live[id] {
			rec.Cursors[id] = c
		}
	}
	var puts []state.Put
	var dirty []*pipe
	changed := false
	for id, p := range s.pipes {
		cursor, logData, err := p.snapshot()
		if err != nil {
			return err
		}
		rec.Cursors[id] = cursor
		changed = changed || s.saved[id] != cursor
		if logData != nil {
			dirty = append(dirty, p)
			puts = append(puts, state.Put{Kind: state.KindMeta, ID: deliveriesID(id), Data: logData, IfVersion: state.AnyVersion})
		}
	}
	if !force && !changed && len(puts) == 0 && len(rec.Cursors) == len(s.saved) {
		return nil
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode cursors: %w", err)
	}
	tx := state.Tx{
		Fence: s.term.Fence(),
		Puts:  append([]state.Put{{Kind: state.KindMeta, ID: cursorID, Data: data, IfVersion: state.AnyVersion}}, puts...),
	}
	if _, err := d.store.Commit(ctx, tx); err != nil {
		for _, p := range dirty {
			p.markDirty()
		}
		if errors.Is(err, state.ErrFenced) {
			return fmt.Errorf("%w: %w", errLostLease, err)
		}
		return fmt.Errorf("persist dispatcher state: %w", err)
	}
	s.saved = rec.Cursors
	return nil
}

// resourceOf is what deliveries are ordered by: the event type plus the
// object's "id" (the type alone when the object has none, e.g. stats).
func resourceOf(e *state.Event) string {
	var obj struct {
		ID any `json:"id"`
	}
	if json.Unmarshal(e.Data, &obj) == nil && obj.ID != nil {
		return e.Type + ":" + fmt.Sprint(obj.ID)
	}
	return e.Type
}
