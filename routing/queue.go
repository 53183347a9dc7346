package routing

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/callfloor/callfloor/internal/jsonv1"
	"regexp"
	"slices"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// Strategy is how a queue picks among routable members.
type Strategy string

// Strategies (API.md, queues).
const (
	RingAll     Strategy = "ring_all"     // ring every routable member; first answer wins
	LongestIdle Strategy = "longest_idle" // the member whose last call ended longest ago
	RoundRobin  Strategy = "round_robin"  // the next member after the last one offered
	FewestCalls Strategy = "fewest_calls" // the member who answered fewest calls today
	Random      Strategy = "random"       // any routable member
)

// Valid reports whether s is a known strategy.
func (s Strategy) Valid() bool {
	switch s {
	case RingAll, LongestIdle, RoundRobin, FewestCalls, Random:
		return true
	}
	return false
}

// DefaultRingTimeout is a queue's ring timeout when none is given.
const DefaultRingTimeout = 18

// Queue is a queue's configuration, as stored.
type Queue struct {
	ID                  string   `json:"id"`
	Name                string   `json:"name"`
	Strategy            Strategy `json:"strategy"`
	RingTimeoutSeconds  int      `json:"ring_timeout_seconds"`
	WrapupSeconds       int      `json:"wrapup_seconds"`
	ServiceLevelSeconds int      `json:"service_level_seconds"`
	Members             []string `json:"members"`
	Hotlines            []string `json:"hotlines"`
	// WaitMode is how a caller waits for an agent: music (answered on
	// entry, music on hold; the default) or ringback (left unanswered
	// with a ringing tone until an agent answers, so the caller is not
	// billed before anyone talks).
	WaitMode media.HoldMode `json:"wait_mode"`
	// MaxWaitSeconds bounds how long a caller waits in this queue for an
	// agent (0: no bound). Past it the call overflows: Overflow says how.
	MaxWaitSeconds int      `json:"max_wait_seconds"`
	Overflow       Overflow `json:"overflow"`
	Thresholds
}

// Overflow is what happens to a call that waited MaxWaitSeconds: it is
// hung up with Cause (default no_answer), or, with Queue set, moved to
// that queue (where it waits from the start again). Either way the call
// counts as abandoned for this queue.
type Overflow struct {
	Queue string      `json:"queue,omitempty"`
	Cause media.Cause `json:"cause,omitempty"`
}

// overflowCauses are the causes an overflow may hang up with.
var overflowCauses = []media.Cause{media.CauseNoAnswer, media.CauseBusy, media.CauseRejected, media.CauseNormal}

// waitMode is WaitMode with the default applied.
func (q *Queue) waitMode() media.HoldMode {
	if q.WaitMode == "" {
		return media.HoldMusic
	}
	return q.WaitMode
}

// Thresholds are a queue's wallboard alerts, set by an admin: a row turns
// amber at the amber value and red at the red one (0 = no alert). They
// only colour screens (README.md, "Supervisor console"); routing ignores them.
type Thresholds struct {
	WaitingAmber            int `json:"waiting_amber"`
	WaitingRed              int `json:"waiting_red"`
	LongestWaitAmberSeconds int `json:"longest_wait_amber_seconds"`
	LongestWaitRedSeconds   int `json:"longest_wait_red_seconds"`
}

func (q *Queue) ringTimeout() time.Duration {
	if q.RingTimeoutSeconds <= 0 {
		return DefaultRingTimeout * time.Second
	}
	return time.Duration(q.RingTimeoutSeconds) * time.Second
}

func (q *Queue) wrapup() time.Duration { return time.Duration(q.WrapupSeconds) * time.Second }

// QueueInput is a create body or (nil fields kept) a patch.
type QueueInput struct {
	ID                  *string         `json:"id"`
	Name                *string         `json:"name"`
	Strategy            *Strategy       `json:"strategy"`
	RingTimeoutSeconds  *int            `json:"ring_timeout_seconds"`
	WrapupSeconds       *int            `json:"wrapup_seconds"`
	ServiceLevelSeconds *int            `json:"service_level_seconds"`
	Members             *[]string       `json:"members"`
	Hotlines            *[]string       `json:"hotlines"`
	WaitMode            *media.HoldMode `json:"wait_mode"`
	MaxWaitSeconds      *int            `json:"max_wait_seconds"`
	Overflow            *Overflow       `json:"overflow"`

	WaitingAmber            *int `json:"waiting_amber"`
	WaitingRed              *int `json:"waiting_red"`
	LongestWaitAmberSeconds *int `json:"longest_wait_amber_seconds"`
	LongestWaitRedSeconds   *int `json:"longest_wait_red_seconds"`
}

var (
	queueIDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)
	hotlinePattern = regexp.MustCompile(`^\+?[0-9*#]{1,32}$`)
)

func invalid(field, reason string) error {
	return &presence.FieldError{Field: field, Reason: reason, Class: presence.ErrInvalid}
}

func unprocessable(field, reason string) error {
	return &presence.FieldError{Field: field, Reason: reason, Class: presence.ErrUnprocessable}
}

// maxQueueList bounds a queue's members and hotlines (SECURITY.md).
const maxQueueList = 1000

// applyInput validates in onto q. Unknown members and hotlines taken by
// another queue are 422 / 409 naming the field.
func (e *Engine) applyInput(ctx context.Context, q *Queue, in QueueInput) error {
	if in.Name != nil {
		if err := presence.CheckName("name", *in.Name, presence.MaxNameLen); err != nil {
			return err
		}
		q.Name = *in.Name
	}
	if in.Strategy != nil {
		if !in.Strategy.Valid() {
			return invalid("strategy", "must be one of ring_all, longest_idle, round_robin, fewest_calls, random")
		}
		q.Strategy = *in.Strategy
	}
	if in.WaitMode != nil {
		if *in.WaitMode != media.HoldMusic && *in.WaitMode != media.HoldRingback {
			return invalid("wait_mode", "must be music or ringback")
		}
		q.WaitMode = *in.WaitMode
	}
	if in.MaxWaitSeconds != nil {
		if *in.MaxWaitSeconds < 0 || *in.MaxWaitSeconds > 86400 {
			return invalid("max_wait_seconds", "must be between 0 (no bound) and 86400 seconds")
		}
		q.MaxWaitSeconds = *in.MaxWaitSeconds
	}
	if in.Overflow != nil {
		o := *in.Overflow
		if o.Cause != "" && !slices.Contains(overflowCauses, o.Cause) {
			return invalid("overflow", "cause must be no_answer, busy, rejected or normal")
		}
		if o.Queue != "" {
			if o.Queue == q.ID {
				return unprocessable("overflow", "a queue cannot overflow into itself")
			}
			if _, _, err := e.queue(ctx, o.Queue); errors.Is(err, presence.ErrNotFound) {
				return unprocessable("overflow", fmt.Sprintf("no queue %q to overflow into", o.Queue))
			} else if err != nil {
				return err
			}
		}
		q.Overflow = o
	}
	for _, f := range []struct {
		name string
		v    *int
		dst  *int
		min  int
	}{
		{"ring_timeout_seconds", in.RingTimeoutSeconds, &q.RingTimeoutSeconds, 1},
		{"wrapup_seconds", in.WrapupSeconds, &q.WrapupSeconds, 0},
		{"service_level_seconds", in.ServiceLevelSeconds, &q.ServiceLevelSeconds, 0},
		{"longest_wait_amber_seconds", in.LongestWaitAmberSeconds, &q.LongestWaitAmberSeconds, 0},
		{"longest_wait_red_seconds", in.LongestWaitRedSeconds, &q.LongestWaitRedSeconds, 0},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < f.min || *f.v > 3600 {
			return invalid(f.name, fmt.Sprintf("must be between %d and 3600 seconds", f.min))
		}
		*f.dst = *f.v
	}
	for _, f := range []struct {
		name string
		v    *int
		dst  *int
	}{
		{"waiting_amber", in.WaitingAmber, &q.WaitingAmber},
		{"waiting_red", in.WaitingRed, &q.WaitingRed},
	} {
		if f.v == nil {
			continue
		}
		if *f.v < 0 || *f.v > 10000 {
			return invalid(f.name, "must be between 0 and 10000 calls")
		}
		*f.dst = *f.v
	}
	if err := q.Thresholds.check(); err != nil {
		return err
	}
	if in.Members != nil && len(*in.Members) > maxQueueList {
		return invalid("members", fmt.Sprintf("must have at most %d entries", maxQueueList))
	}
	if in.Hotlines != nil && len(*in.Hotlines) > maxQueueList {
		return invalid("hotlines", fmt.Sprintf("must have at most %d entries", maxQueueList))
	}
	if in.Members != nil {
		members := slices.Compact(slices.Sorted(slices.Values(*in.Members)))
		for _, m := range members {
			if _, _, err := e.agents.Group(ctx, m); err == nil {
				continue
			}
			if _, err := e.agents.Agent(ctx, m); err != nil {
				return unprocessable("members", fmt.Sprintf("%q is neither an agent nor a group", m))
			}
		}
		// Keep the given order: round_robin and ties follow it.
		q.Members = dedupe(*in.Members)
	}
	if in.Hotlines != nil {
		for _, h := range *in.Hotlines {
			if !hotlinePattern.MatchString(h) {
				return invalid("hotlines", fmt.Sprintf("%q is not a dialable number", h))
			}
		}
		all, err := e.allQueues(ctx)
		if err != nil {
			return err
		}
		for _, other := range all {
			if other.ID == q.ID {
				continue
			}
			for _, h := range *in.Hotlines {
				if slices.Contains(other.Hotlines, h) {
					return fmt.Errorf("hotline %s already routes to queue %s: %w", h, other.ID, presence.ErrConflict)
				}
			}
		}
		q.Hotlines = dedupe(*in.Hotlines)
	}
	return nil
}

// check refuses a red threshold below its amber one (either 0 = off).
func (t Thresholds) check() error {
	if t.WaitingRed > 0 && t.WaitingRed < t.WaitingAmber {
		return invalid("waiting_red", "must be at least waiting_amber (or 0 for no red alert)")
	}
	if t.LongestWaitRedSeconds > 0 && t.LongestWaitRedSeconds < t.LongestWaitAmberSeconds {
		return invalid("longest_wait_red_seconds", "must be at least longest_wait_amber_seconds (or 0 for no red alert)")
	}
	return nil
}

func dedupe(xs []string) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// CreateQueue adds a queue (admin only).
func (e *Engine) CreateQueue(ctx context.Context, actor presence.Actor, in QueueInput) (Queue, error) {
	if !actor.IsAdmin() {
		return Queue{}, fmt.Errorf("only admins manage queues: %w", presence.ErrForbidden)
	}
	if in.ID == nil {
		return Queue{}, invalid("id", "is required")
	}
	if !queueIDPattern.MatchString(*in.ID) {
		return Queue{}, invalid("id", "must be 1-64 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit")
	}
	q := Queue{ID: *in.ID, Name: *in.ID, Strategy: LongestIdle, RingTimeoutSeconds: DefaultRingTimeout,
		ServiceLevelSeconds: 20, Members: []string{}, Hotlines: []string{}}
	if err := e.applyInput(ctx, &q, in); err != nil {
		return Queue{}, err
	}
	if err := e.putQueue(ctx, q, state.MustNotExist, nil); err != nil {
		if errors.Is(err, state.ErrConflict) {
			return Queue{}, e.createConflict(ctx, q)
		}
		return Queue{}, err
	}
	e.Kick()
	return q, nil
}

// UpdateQueue patches a queue (admin only).
func (e *Engine) UpdateQueue(ctx context.Context, actor presence.Actor, id string, in QueueInput) (Queue, error) {
	if !actor.IsAdmin() {
		return Queue{}, fmt.Errorf("only admins manage queues: %w", presence.ErrForbidden)
	}
	if in.ID != nil && *in.ID != id {
		return Queue{}, invalid("id", "cannot be changed")
	}
	for attempt := range maxAttempts {
		if attempt > 0 {
			if err := state.RetryWait(ctx, attempt); err != nil {
				return Queue{}, err
			}
		}
		q, ver, err := e.queue(ctx, id)
		if err != nil {
			return Queue{}, err
		}
		claimed := slices.Clone(q.Hotlines)
		if err := e.applyInput(ctx, &q, in); err != nil {
			return Queue{}, err
		}
		// A conflict is the queue changing or a hotline claimed meanwhile;
		// the next round's applyInput names the queue that took it.
		err = e.putQueue(ctx, q, ver, claimed)
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return Queue{}, err
		}
		e.Kick()
		return q, nil
	}
	return Queue{}, fmt.Errorf("queue %s changed concurrently: %w", id, presence.ErrConflict)
}

// DeleteQueue removes a queue (admin only); refused while calls wait in it.
func (e *Engine) DeleteQueue(ctx context.Context, actor presence.Actor, id string) error {
	if !actor.IsAdmin() {
		return fmt.Errorf("only admins manage queues: %w", presence.ErrForbidden)
	}
	q, ver, err := e.queue(ctx, id)
	if err != nil {
		return err
	}
	calls, err := e.allCalls(ctx)
	if err != nil {
		return err
	}
	for _, c := range calls {
		if c.Queue == id {
			return fmt.Errorf("queue %s has live calls (e.g. %s): %w", id, c.ID, presence.ErrConflict)
		}
	}
	data, err := json.Marshal(map[string]any{"id": q.ID, "deleted": true})
	if err != nil {
		return err
	}
	tx := state.Tx{
		Deletes: []state.Delete{{Kind: state.KindQueue, ID: id, IfVersion: ver}},
		Events:  []state.NewEvent{{Type: EventQueue, Scope: state.Scope{Queue: id}, Data: data}},
	}
	releaseHotlines(&tx, q.Hotlines, nil)
	_, err = e.st.Commit(ctx, tx)
	if errors.Is(err, state.ErrConflict) {
		return fmt.Errorf("queue %s changed concurrently, retry: %w", id, presence.ErrConflict)
	}
	e.forgetQueueGroups(id)
	return err
}

// putQueue stores the queue with a "queue" event carrying its full view.
//
// Each hotline is claimed by a record of its own (hotlineKey) written in
// the same commit, created only if absent: two queues committing the same
// hotline concurrently cannot both succeed, whatever their checks read.
// claimed are the hotlines q held before this change.
func (e *Engine) putQueue(ctx context.Context, q Queue, ifVersion int64, claimed []string) error {
	data, err := json.Marshal(q)
	if err != nil {
		return fmt.Errorf("encode queue: %w", err)
	}
	tx := state.Tx{Puts: []state.Put{{Kind: state.KindQueue, ID: q.ID, Data: data, IfVersion: ifVersion}}}
	claim, _ := json.Marshal(map[string]string{"queue": q.ID})
	for _, h := range q.Hotlines {
		if !slices.Contains(claimed, h) {
			tx.Puts = append(tx.Puts, state.Put{Kind: state.KindMeta, ID: hotlineKey(h), Data: claim, IfVersion: state.MustNotExist})
		}
	}
	releaseHotlines(&tx, claimed, q.Hotlines)
	view, groups, err := e.queueView(ctx, q)
	if err != nil {
		return err
	}
	if err := addEvent(&tx, EventQueue, state.Scope{Queue: q.ID, Groups: groups}, view); err != nil {
		return err
	}
	_, err = e.st.Commit(ctx, tx)
	e.forgetQueueGroups(q.ID)
	return err
}

// hotlineKey is the id of the KindMeta record that claims a hotline.
func hotlineKey(h string) string { return "hotline:" + h }

// releaseHotlines deletes the claims of the hotlines in held but not in
// keep. Queues written before claims existed have none: deleting a
// missing record with AnyVersion is a no-op.
func releaseHotlines(tx *state.Tx, held, keep []string) {
	for _, h := range held {
		if !slices.Contains(keep, h) {
			tx.Deletes = append(tx.Deletes, state.Delete{Kind: state.KindMeta, ID: hotlineKey(h), IfVersion: state.AnyVersion})
		}
	}
}

// createConflict says why creating q conflicted: the queue exists, or
// another queue claimed one of its hotlines first.
func (e *Engine) createConflict(ctx context.Context, q Queue) error {
	if _, _, err := e.queue(ctx, q.ID); err == nil {
		return fmt.Errorf("queue %q already exists: %w", q.ID, presence.ErrConflict)
	}
	for _, h := range q.Hotlines {
		if r, err := e.st.Get(ctx, state.KindMeta, hotlineKey(h)); err == nil {
			var c struct{ Queue string }
			_ = json.Unmarshal(r.Data, &c)
			return fmt.Errorf("hotline %s already routes to queue %s: %w", h, c.Queue, presence.ErrConflict)
		}
	}
	return fmt.Errorf("queue %q changed concurrently, retry: %w", q.ID, presence.ErrConflict)
}

// forgetQueueGroups drops a queue's cached groups after its members changed.
func (e *Engine) forgetQueueGroups(id string) {
	e.qgMu.Lock()
	delete(e.qgCache, id)
	e.qgMu.Unlock()
}

// queue reads one queue and its version.
func (e *Engine) queue(ctx context.Context, id string) (Queue, int64, error) {
	r, err := e.st.Get(ctx, state.KindQueue, id)
	if errors.Is(err, state.ErrNotFound) {
		return Queue{}, 0, fmt.Errorf("queue %q: %w", id, presence.ErrNotFound)
	}
	if err != nil {
		return Queue{}, 0, fmt.Errorf("get queue %s: %w", id, err)
	}
	var q Queue
	if err := jsonv1.Unmarshal(r.Data, &q); err != nil {
		return Queue{}, 0, fmt.Errorf("decode queue %s: %w", id, err)
	}
	return q, r.Version, nil
}

func (e *Engine) allQueues(ctx context.Context) ([]Queue, error) {
	recs, err := e.st.List(ctx, state.KindQueue)
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	return e.queues.decodeAll(recs)
}

// queueFor maps a dialled hotline to its queue, else the default queue.
func (e *Engine) queueFor(ctx context.Context, hotline string) (Queue, error) {
	all, err := e.allQueues(ctx)
	if err != nil {
		return Queue{}, err
	}
	for _, q := range all {
		if slices.Contains(q.Hotlines, hotline) {
			return q, nil
		}
	}
	for _, q := range all {
		if q.ID == e.defaultQueue {
			return q, nil
		}
	}
	return Queue{}, fmt.Errorf("hotline %q matches no queue and the default queue %q does not exist: %w", hotline, e.defaultQueue, presence.ErrNotFound)
}
