package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/callfloor/callfloor/state"
)

// session is one leadership term of a Dispatcher. All fields below mu are
// guarded by it; the reader, the workers and the flush loop share them.
type session struct {
	d   *Dispatcher
	wg  sync.WaitGroup
	sem chan struct{}

	mu          sync.Mutex
	version     int64 // cursor record version we last wrote
	until       time.Time
	cursor      string // every event up to here is finished
	savedCursor string
	readPos     string
	pending     []*pendingEvent // read, not yet finished, in log order
	space       chan struct{}   // signalled when pending shrinks
	hooks       map[string]record
	logs        map[string]*deliveryLog
	queues      map[queueKey]*queue
}

type pendingEvent struct {
	id        string
	remaining int // deliveries of this event not yet finished
}

// queueKey is one webhook's ordered stream for one resource.
type queueKey struct{ hook, resource string }

type queue struct {
	jobs    []*job
	running bool
}

type job struct {
	hook string
	ev   state.Event
	pe   *pendingEvent
	d    *Delivery
}

func (d *Dispatcher) newSession(ctx context.Context, version int64, cursor string) (*session, error) {
	s := &session{
		d: d, sem: make(chan struct{}, d.concurrency), version: version, until: d.now().Add(d.leaseTTL),
		cursor: cursor, savedCursor: cursor, readPos: cursor, space: make(chan struct{}, 1),
		hooks: map[string]record{}, logs: map[string]*deliveryLog{}, queues: map[queueKey]*queue{},
	}
	recs, err := loadAll(ctx, d.store)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		s.hooks[rec.ID] = rec
		ds, _, err := loadDeliveries(ctx, d.store, rec.ID)
		if err != nil {
			return nil, err
		}
		l := &deliveryLog{}
		for i := range ds {
			l.items = append(l.items, &ds[i])
		}
		s.logs[rec.ID] = l
	}
	return s, nil
}

// read tails the log from readPos and queues deliveries.
func (s *session) read(ctx context.Context) {
	defer s.wg.Done()
	d := s.d
	for ctx.Err() == nil {
		s.mu.Lock()
		full, pos := len(s.pending) >= d.maxPending, s.readPos
		s.mu.Unlock()
		if full {
			select {
			case <-s.space:
			case <-ctx.Done():
			}
			continue
		}
		evs, err := d.log.ReadAfter(ctx, pos, d.batch, d.readWait)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, state.ErrTrimmed) || errors.Is(err, state.ErrBadPosition):
			s.skipGap(ctx, pos, err)
			continue
		case err != nil:
			d.logger.Warn("webhook dispatcher read", "err", err)
			sleepCtx(ctx, d.flushEvery)
			continue
		case len(evs) == 0:
			continue
		}
		// Reload the registrations after the read: a hook created before
		// these events were committed is certain to be seen.
		recs, err := loadAll(ctx, d.store)
		if err != nil {
			d.logger.Warn("webhook dispatcher hooks", "err", err)
			sleepCtx(ctx, d.flushEvery)
			continue
		}
		s.enqueue(ctx, evs, recs)
	}
}

// skipGap handles a cursor the log no longer retains: those events can
// never be delivered, so the dispatcher says so and continues from now.
func (s *session) skipGap(ctx context.Context, pos string, cause error) {
	last, err := s.d.log.Last(ctx)
	if err != nil {
		sleepCtx(ctx, s.d.flushEvery)
		return
	}
	s.d.logger.Error("webhook dispatcher missed events: the log was trimmed past its position", "position", pos, "resume", last, "err", cause)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readPos = last
	// A finished marker keeps the cursor moving in log order.
	s.pending = append(s.pending, &pendingEvent{id: last})
	s.advance()
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

func (s *session) enqueue(ctx context.Context, evs []state.Event, recs []record) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = make(map[string]record, len(recs))
	for _, rec := range recs {
		s.hooks[rec.ID] = rec
	}
	ids := make([]string, 0, len(recs))
	for id := range s.hooks {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	now := s.d.now()
	for i := range evs {
		e := evs[i]
		pe := &pendingEvent{id: e.ID}
		s.pending = append(s.pending, pe)
		s.readPos = e.ID
		res := resourceOf(&e)
		for _, hid := range ids {
			h := s.hooks[hid]
			if !h.Wants(e.Type) {
				continue
			}
			l := s.logs[hid]
			if l == nil {
				l = &deliveryLog{}
				s.logs[hid] = l
			}
			did := hid + "/" + e.ID
			dl := l.find(did)
			if dl != nil && dl.finished() {
				continue // finished under an earlier leader
			}
			if dl == nil {
				dl = &Delivery{ID: did, EventID: e.ID, Type: e.Type, Resource: res, State: StatePending, CreatedAt: now}
				l.add(dl)
			}
			pe.remaining++
			key := queueKey{hid, res}
			q := s.queues[key]
			if q == nil {
				q = &queue{}
				s.queues[key] = q
			}
			q.jobs = append(q.jobs, &job{hook: hid, ev: e, pe: pe, d: dl})
			if !q.running {
				q.running = true
				s.wg.Add(1)
				go s.work(ctx, key, q)
			}
		}
	}
	s.advance()
}

// advance moves the cursor over the finished prefix of pending events.
func (s *session) advance() {
	n := 0
	for n < len(s.pending) && s.pending[n].remaining == 0 {
		s.cursor = s.pending[n].id
		n++
	}
	if n > 0 {
		s.pending = append(s.pending[:0], s.pending[n:]...)
		select {
		case s.space <- struct{}{}:
		default:
		}
	}
}

// work delivers one resource's queue in order, one job at a time.
func (s *session) work(ctx context.Context, key queueKey, q *queue) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(q.jobs) == 0 || ctx.Err() != nil {
			q.running = false
			if len(q.jobs) == 0 {
				delete(s.queues, key)
			}
			s.mu.Unlock()
			return
		}
		j := q.jobs[0]
		s.mu.Unlock()
		if !s.deliver(ctx, j) {
			continue // ctx ended: the loop head stops
		}
		s.mu.Lock()
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		j.pe.remaining--
		s.advance()
		s.mu.Unlock()
	}
}

// deliver attempts j until it is delivered or given up (true), or ctx
// ends (false: it stays pending for the next leader).
func (s *session) deliver(ctx context.Context, j *job) bool {
	d := s.d
	body, encErr := json.Marshal(struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		At   time.Time       `json:"at"`
		Data json.RawMessage `json:"data"`
	}{j.ev.ID, j.ev.Type, j.ev.At, j.ev.Data})
	for {
		s.mu.Lock()
		hook, exists := s.hooks[j.hook]
		next := j.d.NextAttempt
		s.mu.Unlock()
		if !exists {
			return true // deleted: nothing to deliver to, nothing to record
		}
		if next != nil {
			if wait := next.Sub(d.now()); wait > 0 {
				sleepCtx(ctx, wait)
			}
		}
		status, err := 0, encErr
		if err == nil {
			status, err = s.post(ctx, hook, j, body)
		}
		if err != nil && ctx.Err() != nil {
			return false // interrupted by shutdown: not counted
		}
		now := d.now()
		s.mu.Lock()
		dl := j.d
		dl.Attempts++
		dl.LastStatus, dl.LastError, dl.NextAttempt = status, "", nil
		switch {
		case err == nil:
			dl.State, dl.DeliveredAt = StateDelivered, &now
		case dl.Attempts >= d.maxAttempts:
			dl.State, dl.LastError = StateFailed, truncate(err.Error(), 300)
			d.logger.Warn("webhook delivery failed", "webhook", j.hook, "event", j.ev.ID, "attempts", dl.Attempts, "err", dl.LastError)
		default:
			at := now.Add(d.backoff(dl.Attempts))
			dl.LastError, dl.NextAttempt = truncate(err.Error(), 300), &at
		}
		s.logs[j.hook].dirty = true
		finished := dl.finished()
		s.mu.Unlock()
		if finished {
			return true
		}
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// post makes one signed attempt; a non-2xx answer is an error.
func (s *session) post(ctx context.Context, hook record, j *job, body []byte) (int, error) {
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "callfloor-webhook/1")
	req.Header.Set("X-Callfloor-Event", j.ev.Type)
	req.Header.Set("X-Callfloor-Delivery", j.d.ID)
	req.Header.Set("X-Callfloor-Attempt", strconv.Itoa(j.d.Attempts+1))
	req.Header.Set(SignatureHeader, Sign(hook.StoredSecret, s.d.now(), body))
	res, err := s.d.client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post: %w", err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	switch {
	case res.StatusCode >= 200 && res.StatusCode < 300:
		return res.StatusCode, nil
	case res.StatusCode >= 300 && res.StatusCode < 400:
		return res.StatusCode, fmt.Errorf("receiver answered %s; redirects are not followed", res.Status)
	}
	return res.StatusCode, fmt.Errorf("receiver answered %s", res.Status)
}

// persist writes the cursor (renewing the lease, fenced by its version)
// and the changed delivery logs in one transaction. release hands the
// lease over (shutdown).
func (s *session) persist(ctx context.Context, release bool) error {
	d := s.d
	now := d.now()
	s.mu.Lock()
	dirty := []string{}
	for id, l := range s.logs {
		if l.dirty {
			if _, ok := s.hooks[id]; ok {
				dirty = append(dirty, id)
			}
		}
	}
	if !release && len(dirty) == 0 && s.cursor == s.savedCursor && now.Before(s.until.Add(-d.leaseTTL/2)) {
		s.mu.Unlock()
		return nil
	}
	rec := cursorRecord{Owner: d.owner, Until: now.Add(d.leaseTTL), Cursor: s.cursor}
	if release {
		rec.Until = now
	}
	data, _ := json.Marshal(rec)
	tx := state.Tx{Puts: []state.Put{{Kind: state.KindMeta, ID: cursorID, Data: data, IfVersion: s.version}}}
	for _, id := range dirty {
		b, err := s.logs[id].encode()
		if err != nil {
			s.mu.Unlock()
			return fmt.Errorf("encode deliveries: %w", err)
		}
		s.logs[id].dirty = false
		tx.Puts = append(tx.Puts, state.Put{Kind: state.KindMeta, ID: deliveriesID(id), Data: b, IfVersion: state.AnyVersion})
	}
	s.mu.Unlock()

	_, err := d.store.Commit(ctx, tx)
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		for _, id := range dirty {
			s.logs[id].dirty = true
		}
		if errors.Is(err, state.ErrConflict) {
			return errLostLease
		}
		return fmt.Errorf("persist dispatcher state: %w", err)
	}
	s.version++
	s.savedCursor, s.until = rec.Cursor, rec.Until
	return nil
}
