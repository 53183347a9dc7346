package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callfloor/callfloor/state"
)

// session is one leadership term of a Dispatcher: one pipe per webhook,
// the shared request limit, and the lease record it keeps renewing.
type session struct {
	d   *Dispatcher
	sem chan struct{} // bounds simultaneous requests across pipes

	// Only the lead loop touches these.
	version int64             // cursor record version we last wrote
	until   time.Time         // lease expiry we last wrote
	cursors map[string]string // cursors as of the leadership start
	pipes   map[string]*pipe
	saved   map[string]string // cursors last persisted
}

func (d *Dispatcher) newSession(version int64, cursors map[string]string) *session {
	return &session{
		d: d, sem: make(chan struct{}, d.concurrency), version: version, until: d.now().Add(d.leaseTTL),
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

// persist writes every pipe's cursor (renewing the lease, fenced by its
// version) and the changed delivery logs in one transaction. release
// hands the lease over (shutdown).
func (s *session) persist(ctx context.Context, release bool) error {
	d := s.d
	now := d.now()
	rec := cursorRecord{Owner: d.owner, Until: now.Add(d.leaseTTL), Cursors: make(map[string]string, len(s.pipes))}
	if release {
		rec.Until = now
	}
	var puts []state.Put
	var dirty []*pipe
	changed := len(s.pipes) != len(s.saved)
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
	if !release && !changed && len(puts) == 0 && now.Before(s.until.Add(-d.leaseTTL/2)) {
		return nil
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encode cursors: %w", err)
	}
	tx := state.Tx{Puts: append([]state.Put{{Kind: state.KindMeta, ID: cursorID, Data: data, IfVersion: s.version}}, puts...)}
	if _, err := d.store.Commit(ctx, tx); err != nil {
		for _, p := range dirty {
			p.markDirty()
		}
		if errors.Is(err, state.ErrConflict) {
			return errLostLease
		}
		return fmt.Errorf("persist dispatcher state: %w", err)
	}
	s.version++
	s.until, s.saved = rec.Until, rec.Cursors
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
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
