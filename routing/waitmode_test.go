package routing_test

import (
	"errors"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestWaitModeRingback: a queue whose callers wait with ringback leaves
// the caller unanswered (no Answer, ringback) until an agent answers;
// then the caller is answered before the two are connected. The call
// list and today's counters treat the call as any other.
func TestWaitModeRingback(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"a1"}, "+842800")
	rb := media.HoldRingback
	q, err := f.eng.UpdateQueue(f.ctx, f.admin, "main", routing.QueueInput{WaitMode: &rb})
	if err != nil || q.WaitMode != media.HoldRingback {
		t.Fatalf("set wait_mode: %+v, %v", q, err)
	}
	id, cust := f.arrive("+84901000001", "+842800")
	if n := len(f.media.Ops("answer")); n != 0 {
		t.Fatalf("%d answers while the caller waits with ringback", n)
	}
	if h := f.media.Ops("hold"); len(h) != 1 || h[0].Hold != media.HoldRingback || h[0].Leg != cust {
		t.Fatalf("holds = %+v, want ringback on the caller", h)
	}
	f.wantCall(id, routing.StateRinging, "a1")
	f.advance(3 * time.Second)
	f.answer(f.legOf("a1"))
	f.wantCall(id, routing.StateAnswered, "a1")
	var order []string
	for _, c := range f.media.Commands() {
		if (c.Op == "answer" && c.Leg == cust) || c.Op == "connect" {
			order = append(order, c.Op)
		}
	}
	if len(order) != 2 || order[0] != "answer" || order[1] != "connect" {
		t.Fatalf("after the agent answered: %v, want the caller answered, then connected", order)
	}
	if s := f.stats("main", ""); s.Accepted != 1 || s.AvgWaitSeconds != 3 {
		t.Fatalf("counters = %+v, want 1 accepted after a 3 s wait", s)
	}
}

// TestWaitModeValidated: only music and ringback are wait modes.
func TestWaitModeValidated(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addQueue("main", routing.LongestIdle, 0, []string{})
	bad := media.HoldMode("silence")
	_, err := f.eng.UpdateQueue(f.ctx, f.admin, "main", routing.QueueInput{WaitMode: &bad})
	var fe *presence.FieldError
	if !errors.As(err, &fe) || fe.Field != "wait_mode" {
		t.Fatalf("wait_mode silence: %v", err)
	}
}
