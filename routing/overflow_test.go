package routing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestQueueMaxWaitOverflow: with nobody available, a call waits main's
// maximum (30 s), moves to backup (abandoned for main, not missed yet),
// waits backup's maximum (20 s from the move), and is hung up there with
// backup's cause — abandoned for backup and missed for the day.
func TestQueueMaxWaitOverflow(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.setStatus("a1", presence.StatusUnavailable)
	f.addQueue("backup", routing.LongestIdle, 0, []string{"a1"})
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"}, "+842800")
	thirty, twenty := 30, 20
	if _, err := f.eng.UpdateQueue(f.ctx, f.admin, "main", routing.QueueInput{MaxWaitSeconds: &thirty,
		Overflow: &routing.Overflow{Queue: "backup"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.eng.UpdateQueue(f.ctx, f.admin, "backup", routing.QueueInput{MaxWaitSeconds: &twenty,
		Overflow: &routing.Overflow{Cause: media.CauseBusy}}); err != nil {
		t.Fatal(err)
	}
	// Refused configurations.
	self := routing.Overflow{Queue: "main"}
	if _, err := f.eng.UpdateQueue(f.ctx, f.admin, "main", routing.QueueInput{Overflow: &self}); !errors.Is(err, presence.ErrUnprocessable) {
		t.Fatalf("overflow into itself: %v", err)
	}
	bad := routing.Overflow{Cause: "weird"}
	if _, err := f.eng.UpdateQueue(f.ctx, f.admin, "main", routing.QueueInput{Overflow: &bad}); !errors.Is(err, presence.ErrInvalid) {
		t.Fatalf("unknown cause: %v", err)
	}

	id, cust := f.arrive("+84901000001", "+842800")
	f.advance(29 * time.Second)
	if c := f.call(id); c.Queue != "main" {
		t.Fatalf("before main's maximum the call is in %s", c.Queue)
	}
	// Exactly to main's maximum: the dispatcher's pass runs while the
	// clock reads 30 s, so the move (and backup's wait) starts at 30 s.
	// Advancing past it in one step would let the pass read either the
	// tick's time or the end of the step.
	f.advance(time.Second)
	if c := f.call(id); c.Queue != "backup" || c.State != routing.StateCalling {
		t.Fatalf("after main's maximum: queue %s state %s, want waiting in backup", c.Queue, c.State)
	}
	if q, _ := f.eng.Queue(f.ctx, f.admin, "main"); q.AbandonedToday != 1 {
		t.Fatalf("main abandoned_today = %d, want 1", q.AbandonedToday)
	}
	if s := f.stats("", ""); s.Missed != 0 {
		t.Fatalf("missed = %d while the caller still waits", s.Missed)
	}
	f.advance(19 * time.Second) // 19 s in backup (t = 49 s)
	if c := f.call(id); c.Queue != "backup" {
		t.Fatalf("backup's wait did not start at the move: %+v", c)
	}
	f.advance(2 * time.Second)
	if _, err := f.eng.Call(f.ctx, f.admin, id); !errors.Is(err, presence.ErrNotFound) {
		t.Fatalf("call still live after backup's maximum: %v", err)
	}
	hung := false
	for _, op := range f.media.Ops("hangup") {
		if op.Leg == cust && op.Cause == media.CauseBusy {
			hung = true
		}
	}
	if !hung {
		t.Fatalf("customer not hung up with busy: %+v", f.media.Ops("hangup"))
	}
	if q, _ := f.eng.Queue(f.ctx, f.admin, "backup"); q.AbandonedToday != 1 {
		t.Fatalf("backup abandoned_today = %d, want 1", q.AbandonedToday)
	}
	if s := f.stats("", ""); s.Missed != 1 {
		t.Fatalf("missed = %d, want 1", s.Missed)
	}
}
