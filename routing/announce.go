package routing

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/callfloor/callfloor/media"
)

// WaitAnnouncer is the hook for position announcements to waiting callers
// ("you are caller number 3, the expected wait is 2 minutes"; README.md,
// "Media on the built-in SIP path"). The engine tells it, from its dispatcher
// pass, whenever a waiting caller's position in its queue or its expected
// wait changes, and once when the caller starts waiting. What to play and
// when is the announcer's business: a media path implements it by playing
// prompts to w.Leg between the music. It is called on the dispatcher's
// loop, so it must return quickly (queue the playback, do not wait for
// it). The default (no WithWaitAnnouncer) does nothing.
type WaitAnnouncer interface {
	WaitChanged(ctx context.Context, w WaitPosition)
}

// WaitPosition is where one waiting caller stands.
type WaitPosition struct {
	CallID string
	Queue  string
	// Leg is the caller's leg, where an announcement is played.
	Leg media.LegID
	// Position is 1 for the next caller to be served. Callers count in the
	// order they entered the queue, as the dispatcher serves them (a
	// caller back from an unanswered ring keeps its place), the same
	// callers as the queue's "waiting" figure.
	Position int
	// Waiting is how many callers wait in the queue, this one included.
	Waiting int
	// ExpectedWait is the queue's average wait today (ring start to
	// answer, as in its statistics) less what this caller already waited,
	// rounded up to whole minutes, the unit announcements speak in: 0 when
	// no call was answered in the queue today or the caller already
	// waited longer than the average.
	ExpectedWait time.Duration
}

// WithWaitAnnouncer makes the engine report waiting callers' positions
// to a (position announcements).
func WithWaitAnnouncer(a WaitAnnouncer) Option {
	return func(e *Engine) {
		if a != nil {
			e.announcer = a
		}
	}
}

type nopAnnouncer struct{}

func (nopAnnouncer) WaitChanged(context.Context, WaitPosition) {}

// announceWaits computes every waiting caller's position and tells the
// announcer about the ones that changed since the last pass (dispatcher
// only: it owns waitSeen).
func (e *Engine) announceWaits(ctx context.Context, l *live) {
	if _, none := e.announcer.(nopAnnouncer); none {
		return
	}
	byQueue := map[string][]*Call{}
	for i := range l.calls {
		c := &l.calls[i]
		if c.Queue == "" || c.Direction != DirectionInbound || c.State == StateAnswered || c.CustomerLeg == "" {
			continue
		}
		byQueue[c.Queue] = append(byQueue[c.Queue], c)
	}
	seen := make(map[string]WaitPosition, len(e.waitSeen))
	for q, calls := range byQueue {
		slices.SortFunc(calls, func(a, b *Call) int {
			return cmp.Or(a.EnqueuedAt.Compare(b.EnqueuedAt), strings.Compare(a.ID, b.ID))
		})
		var avg time.Duration
		if n := l.counters[field(mWaitN, "queue="+q)]; n > 0 {
			avg = time.Duration(l.counters[field(mWaitMS, "queue="+q)]/n) * time.Millisecond
		}
		for i, c := range calls {
			w := WaitPosition{CallID: c.ID, Queue: q, Leg: c.CustomerLeg, Position: i + 1, Waiting: len(calls)}
			if left := avg - l.now.Sub(c.EnqueuedAt); avg > 0 && left > 0 {
				w.ExpectedWait = (left + time.Minute - 1).Truncate(time.Minute)
			}
			seen[c.ID] = w
			if prev, ok := e.waitSeen[c.ID]; ok && prev.Queue == w.Queue && prev.Position == w.Position && prev.ExpectedWait == w.ExpectedWait {
				continue
			}
			e.announcer.WaitChanged(ctx, w)
		}
	}
	e.waitSeen = seen
}
