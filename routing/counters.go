package routing

import (
	"context"
	"time"

	"github.com/callfloor/callfloor/state"
)

// Today's counters live in the store as counter hashes, one per local day
// of the account's time zone, so they survive restarts and are shared by
// replicas:
//
//	stats:<YYYY-MM-DD>              field "<metric>|<dim>"
//	missed:<YYYY-MM-DD>:<caller>    field "<dim>": that caller's unreached misses
//
// dim is "all", "queue=<id>" or "group=<id>"; agent fields use
// "answered|agent=<id>" (fewest_calls reads them).
const (
	mAccepted  = "accepted"
	mMissed    = "missed"
	mAbandoned = "abandoned"
	mWaitMS    = "wait_ms"
	mWaitN     = "wait_n"
	mSLOK      = "sl_ok"
	mAnswered  = "answered"
)

func dayOf(t time.Time, loc *time.Location) string { return t.In(loc).Format(time.DateOnly) }

func statsKey(day string) string { return "stats:" + day }

func missedKey(day, caller string) string { return "missed:" + day + ":" + caller }

func field(metric, dim string) string { return metric + "|" + dim }

const dimAll = "all"

// dims lists the dimensions a call counts in.
func (c *Call) dims() []string {
	out := []string{dimAll}
	if c.Queue != "" {
		out = append(out, "queue="+c.Queue)
	}
	for _, g := range c.Groups {
		out = append(out, "group="+g)
	}
	return out
}

// countAnswered records an inbound call's first answer: accepted, the wait
// from ring start to answer, the service level, the agent's tally, and
// the caller as reached.
func (t *txn) countAnswered(ctx context.Context, c *Call, agent string, slSeconds int) error {
	day := statsKey(dayOf(t.now, t.e.loc()))
	ringStart := c.RingStartedAt
	if ringStart.IsZero() {
		ringStart = t.now
	}
	wait := t.now.Sub(ringStart).Milliseconds()
	withinSL := slSeconds > 0 && t.now.Sub(c.EnqueuedAt) <= time.Duration(slSeconds)*time.Second
	for _, d := range c.dims() {
		t.incr(day, field(mAccepted, d), 1)
		t.incr(day, field(mWaitMS, d), wait)
		t.incr(day, field(mWaitN, d), 1)
		if withinSL {
			t.incr(day, field(mSLOK, d), 1)
		}
	}
	t.incr(day, field(mAnswered, "agent="+agent), 1)
	return t.reached(ctx, c.CustomerNumber)
}

// countAbandoned counts a call leaving its queue unanswered (an overflow
// to another queue): abandoned for the queue it leaves, not missed — the
// caller is still waiting, in the next queue.
func (t *txn) countAbandoned(c *Call) {
	d := dayOf(t.now, t.e.loc())
	if c.Queue != "" {
		t.incr(statsKey(d), field(mAbandoned, "queue="+c.Queue), 1)
	}
}

// countMissed records an inbound call that ended without reaching an
// agent: abandoned for the queue at once, and missed (UIS rule) on the
// caller's loop.
func (t *txn) countMissed(c *Call) {
	d := dayOf(t.now, t.e.loc())
	dims := c.dims()
	for _, dim := range dims {
		t.incr(statsKey(d), field(mAbandoned, dim), 1)
	}
	caller := c.CustomerNumber
	t.then(func(context.Context) {
		t.e.onCaller(caller, d, func(tx *state.Tx, _ map[string]int64) {
			for _, dim := range dims {
				tx.Incrs = append(tx.Incrs, state.Incr{Counter: statsKey(d), Field: field(mMissed, dim), Delta: 1})
				if caller != "" {
					tx.Incrs = append(tx.Incrs, state.Incr{Counter: missedKey(d, caller), Field: dim, Delta: 1})
				}
			}
		})
	})
}

// reached applies the UIS rule: a caller reached today (answered inbound,
// or an answered outbound call to them) no longer counts as missed today.
// Their misses are subtracted from every dimension they were counted in.
func (t *txn) reached(_ context.Context, caller string) error {
	if caller == "" {
		return nil
	}
	d := dayOf(t.now, t.e.loc())
	t.then(func(context.Context) {
		t.e.onCaller(caller, d, func(tx *state.Tx, per map[string]int64) {
			for dim, n := range per {
				if n > 0 {
					tx.Incrs = append(tx.Incrs,
						state.Incr{Counter: statsKey(d), Field: field(mMissed, dim), Delta: -n},
						state.Incr{Counter: missedKey(d, caller), Field: dim, Delta: -n})
				}
			}
		})
	})
	return nil
}

// onCaller runs a missed-counter change on the caller's own ordered loop:
// reading a caller's misses and subtracting them must not interleave with
// another change for the same caller (two of their calls answered at once
// on different call loops would subtract twice). fn gets the caller's
// current per-dimension misses of day d.
func (e *Engine) onCaller(caller, d string, fn func(tx *state.Tx, per map[string]int64)) {
	e.submit("caller:"+caller, func(ctx context.Context) {
		per := map[string]int64{}
		if caller != "" {
			var err error
			if per, err = e.st.Counters(ctx, missedKey(d, caller)); err != nil {
				e.log.Error("missed counters", "err", err)
				return
			}
		}
		var tx state.Tx
		fn(&tx, per)
		if tx.Empty() {
			return
		}
		if _, err := e.commit(ctx, tx); err != nil {
			e.log.Error("missed counters", "err", err)
		}
	})
}
