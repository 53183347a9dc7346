package routing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// announcements records what the engine tells its WaitAnnouncer.
type announcements struct {
	mu  sync.Mutex
	all []routing.WaitPosition
}

func (a *announcements) WaitChanged(_ context.Context, w routing.WaitPosition) {
	a.mu.Lock()
	a.all = append(a.all, w)
	a.mu.Unlock()
}

// take returns what was announced since the last take.
func (a *announcements) take() []routing.WaitPosition {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := a.all
	a.all = nil
	return out
}

type pos struct {
	leg          media.LegID
	position     int
	waiting      int
	expectedWait time.Duration
}

func wantAnnounced(t *testing.T, got []routing.WaitPosition, want ...pos) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("announced %+v, want %+v", got, want)
	}
	have := map[media.LegID]routing.WaitPosition{}
	for _, w := range got {
		have[w.Leg] = w
	}
	for _, p := range want {
		w, ok := have[p.leg]
		if !ok || w.Position != p.position || w.Waiting != p.waiting || w.ExpectedWait != p.expectedWait || w.Queue != "main" || w.CallID == "" {
			t.Errorf("announcement for %s = %+v, want position %d of %d, expected wait %v", p.leg, w, p.position, p.waiting, p.expectedWait)
		}
	}
}

// TestWaitAnnouncer: the position hook hears each waiting caller's place
// when it starts waiting and whenever it changes — as callers ahead are
// answered or hang up — and nothing for a caller whose place did not
// change. The expected wait is the queue's average wait today less what
// the caller waited, in whole minutes.
func TestWaitAnnouncer(t *testing.T) {
	ann := &announcements{}
	f := newFloor(t, nil, time.Time{}, routing.WithWaitAnnouncer(ann))
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"}, "+842800")

	// Before any answer today there is no estimate; a1 takes c0 after a
	// 15 s ring (the queue rings for 18 s), so the queue's average wait
	// becomes 15 s.
	_, c0 := f.arrive("+84901000000", "+842800")
	wantAnnounced(t, ann.take(), pos{c0, 1, 1, 0})
	f.advance(15 * time.Second)
	f.answer(f.legOf("a1"))
	ann.take()

	_, c1 := f.arrive("+84901000001", "+842800")
	wantAnnounced(t, ann.take(), pos{c1, 1, 1, time.Minute})
	_, c2 := f.arrive("+84901000002", "+842800")
	wantAnnounced(t, ann.take(), pos{c2, 2, 2, time.Minute})
	_, c3 := f.arrive("+84901000003", "+842800")
	wantAnnounced(t, ann.take(), pos{c3, 3, 3, time.Minute})

	// Passes with nothing changed announce nothing.
	f.advance(time.Second)
	f.advance(time.Second)
	wantAnnounced(t, ann.take())

	// The first caller ahead hangs up: everyone behind moves up.
	f.ended(c1, media.CauseNormal)
	wantAnnounced(t, ann.take(), pos{c2, 1, 2, time.Minute}, pos{c3, 2, 2, time.Minute})

	// Past the average wait there is no estimate left.
	f.advance(20 * time.Second)
	wantAnnounced(t, ann.take(), pos{c2, 1, 2, 0}, pos{c3, 2, 2, 0})

	// a1 is free again and takes c2: c3 is next.
	f.ended(f.legOf("a1"), media.CauseNormal)
	f.advance(time.Second)
	f.answer(f.legOf("a1"))
	got := ann.take()
	if len(got) == 0 || got[len(got)-1].Leg != c3 || got[len(got)-1].Position != 1 || got[len(got)-1].Waiting != 1 {
		t.Fatalf("after c2 was answered: announced %+v, want c3 at position 1 of 1 last", got)
	}
}
