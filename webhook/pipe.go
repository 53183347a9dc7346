package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/callfloor/callfloor/internal/pause"
	"github.com/callfloor/callfloor/state"
)

// pipe delivers the log to one webhook: a reader tailing the log from the
// hook's cursor, and one worker per resource with queued events.
type pipe struct {
	s      *session
	hook   record
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	cursor  string          // every event up to here is finished
	readPos string          // last event read
	pending []*pendingEvent // read, not yet finished, in log order
	space   chan struct{}   // signalled when pending shrinks
	queues  map[string]*queue
	log     deliveryLog
}

type pendingEvent struct {
	id       string
	finished bool
}

type queue struct {
	jobs    []*job
	running bool
}

type job struct {
	ev       state.Event
	pe       *pendingEvent
	d        *Delivery // nil until the first attempt
	resource string
}

func (s *session) startPipe(ctx context.Context, hook record, from string, ds []Delivery) *pipe {
	pctx, cancel := context.WithCancel(ctx)
	p := &pipe{s: s, hook: hook, cancel: cancel, cursor: from, readPos: from,
		space: make(chan struct{}, 1), queues: map[string]*queue{}}
	for i := range ds {
		p.log.items = append(p.log.items, &ds[i])
	}
	p.wg.Add(1)
	go p.read(pctx)
	return p
}

// stop cancels the pipe and waits for its goroutines.
func (p *pipe) stop() {
	p.cancel()
	p.wg.Wait()
}

// snapshot returns the cursor and, if it changed, the encoded delivery
// log (marked clean; markDirty undoes that when the write fails).
func (p *pipe) snapshot() (string, []byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.log.dirty {
		return p.cursor, nil, nil
	}
	b, err := p.log.encode()
	if err != nil {
		return "", nil, fmt.Errorf("encode deliveries: %w", err)
	}
	p.log.dirty = false
	return p.cursor, b, nil
}

func (p *pipe) markDirty() {
	p.mu.Lock()
	p.log.dirty = true
	p.mu.Unlock()
}

// read tails the log and queues the events the hook wants.
func (p *pipe) read(ctx context.Context) {
	defer p.wg.Done()
	d := p.s.d
	for ctx.Err() == nil {
		p.mu.Lock()
		full, pos := len(p.pending) >= d.maxPending, p.readPos
		p.mu.Unlock()
		if full {
			select {
			case <-p.space:
			case <-ctx.Done():
			}
			continue
		}
		evs, err := d.log.ReadAfter(ctx, pos, d.batch, d.readWait)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, state.ErrTrimmed) || errors.Is(err, state.ErrBadPosition):
			p.skipGap(ctx, pos, err)
		case err != nil:
			d.logger.Warn("webhook dispatcher read", "webhook", p.hook.ID, "err", err)
			pause.For(ctx, d.flushEvery)
		case len(evs) > 0:
			p.enqueue(ctx, evs)
		}
	}
}

// skipGap handles a cursor the log no longer retains: those events can
// never be delivered, so the dispatcher says so and continues from now.
func (p *pipe) skipGap(ctx context.Context, pos string, cause error) {
	last, err := p.s.d.log.Last(ctx)
	if err != nil {
		pause.For(ctx, p.s.d.flushEvery)
		return
	}
	p.s.d.logger.Error("webhook dispatcher missed events: the log was trimmed past its position",
		"webhook", p.hook.ID, "position", pos, "resume", last, "err", cause)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.readPos = last
	// A finished marker keeps the cursor moving in log order.
	p.pending = append(p.pending, &pendingEvent{id: last, finished: true})
	p.advance()
}

func (p *pipe) enqueue(ctx context.Context, evs []state.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range evs {
		e := evs[i]
		pe := &pendingEvent{id: e.ID, finished: true}
		p.pending = append(p.pending, pe)
		p.readPos = e.ID
		if !p.hook.Wants(e.Type) {
			continue
		}
		// An earlier leader may have finished it, or started it (then its
		// attempts carry on). Otherwise the delivery is recorded when its
		// first attempt starts, so the log holds only deliveries in
		// progress or done, not the backlog queued behind them.
		dl := p.log.find(p.hook.ID + "/" + e.ID)
		if dl != nil && dl.finished() {
			continue
		}
		pe.finished = false
		res := resourceOf(&e)
		q := p.queues[res]
		if q == nil {
			q = &queue{}
			p.queues[res] = q
		}
		q.jobs = append(q.jobs, &job{ev: e, pe: pe, d: dl, resource: res})
		if !q.running {
			q.running = true
			p.wg.Add(1)
			go p.work(ctx, res, q)
		}
	}
	p.advance()
}

// advance moves the cursor over the finished prefix of pending events.
func (p *pipe) advance() {
	n := 0
	for n < len(p.pending) && p.pending[n].finished {
		p.cursor = p.pending[n].id
		n++
	}
	if n > 0 {
		clear(p.pending[:n])
		p.pending = append(p.pending[:0], p.pending[n:]...)
		select {
		case p.space <- struct{}{}:
		default:
		}
	}
}

// work delivers one resource's queue in order, one job at a time.
func (p *pipe) work(ctx context.Context, resource string, q *queue) {
	defer p.wg.Done()
	for {
		p.mu.Lock()
		if len(q.jobs) == 0 || ctx.Err() != nil {
			q.running = false
			if len(q.jobs) == 0 {
				delete(p.queues, resource)
			}
			p.mu.Unlock()
			return
		}
		j := q.jobs[0]
		if j.d == nil {
			j.d = &Delivery{ID: p.hook.ID + "/" + j.ev.ID, EventID: j.ev.ID, Type: j.ev.Type,
				Resource: j.resource, State: StatePending, CreatedAt: p.s.d.now()}
			p.log.add(j.d)
		}
		p.mu.Unlock()
		if !p.deliver(ctx, j) {
			continue // ctx ended: the loop head stops
		}
		p.mu.Lock()
		q.jobs[0] = nil
		q.jobs = q.jobs[1:]
		j.pe.finished = true
		p.advance()
		p.mu.Unlock()
	}
}

// deliver attempts j until it is delivered or given up (true), or ctx
// ends (false: it stays pending for the next leader).
func (p *pipe) deliver(ctx context.Context, j *job) bool {
	d := p.s.d
	body, encErr := json.Marshal(struct {
		ID   string          `json:"id"`
		Type string          `json:"type"`
		At   time.Time       `json:"at"`
		Data json.RawMessage `json:"data"`
	}{j.ev.ID, j.ev.Type, j.ev.At, j.ev.Data})
	for {
		p.mu.Lock()
		next, attempt := j.d.NextAttempt, j.d.Attempts+1
		p.mu.Unlock()
		if next != nil {
			if wait := next.Sub(d.now()); wait > 0 {
				pause.For(ctx, wait)
			}
		}
		status, err := 0, encErr
		if err == nil {
			status, err = p.post(ctx, j, attempt, body)
		}
		if err != nil && ctx.Err() != nil {
			return false // interrupted by shutdown: not counted
		}
		d.obs.Attempted(err)
		now := d.now()
		p.mu.Lock()
		dl := j.d
		dl.Attempts = attempt
		dl.LastStatus, dl.LastError, dl.NextAttempt = status, "", nil
		switch {
		case err == nil:
			dl.State, dl.DeliveredAt = StateDelivered, &now
		case attempt >= d.maxAttempts:
			dl.State, dl.LastError = StateFailed, truncate(err.Error(), 300)
			d.logger.Warn("webhook delivery failed", "webhook", p.hook.ID, "event", j.ev.ID, "attempts", attempt, "err", dl.LastError)
		default:
			at := now.Add(d.backoff(attempt))
			dl.LastError, dl.NextAttempt = truncate(err.Error(), 300), &at
		}
		p.log.dirty = true
		finished, final := dl.finished(), dl.State
		p.mu.Unlock()
		if finished {
			d.obs.Finished(final)
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
func (p *pipe) post(ctx context.Context, j *job, attempt int, body []byte) (int, error) {
	select {
	case p.s.sem <- struct{}{}:
		defer func() { <-p.s.sem }()
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.hook.URL, bytes.NewReader(body))
	if err != nil {
		return 0, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "callfloor-webhook/1")
	req.Header.Set("X-Callfloor-Event", j.ev.Type)
	req.Header.Set("X-Callfloor-Delivery", j.d.ID)
	req.Header.Set("X-Callfloor-Attempt", strconv.Itoa(attempt))
	req.Header.Set(SignatureHeader, Sign(p.hook.StoredSecret, p.s.d.now(), body))
	res, err := p.s.d.client.Do(req)
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
