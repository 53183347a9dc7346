package routing_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
)

// firstDialHeld holds the first Dial until released; later Dials go
// through at once.
type firstDialHeld struct {
	*routingtest.Media
	once    sync.Once
	entered chan struct{} // closed when the first Dial is waiting
	release chan struct{}
}

func (m *firstDialHeld) Dial(ctx context.Context, req media.DialRequest) (media.LegID, error) {
	first := false
	m.once.Do(func() { first = true })
	if first {
		close(m.entered)
		select {
		case <-m.release:
		case <-ctx.Done():
			return "", fmt.Errorf("dial: %w: %w", media.ErrMediaUnavailable, ctx.Err())
		}
	}
	return m.Media.Dial(ctx, req)
}

// The dispatcher does not wait for one call's Dial (a media round trip)
// before offering the next waiting call: while the first call's Dial is
// held, calls arriving on the other call loops are dialled; when it is
// released every call rings a different agent, none twice.
func TestDispatcherDoesNotWaitForADial(t *testing.T) {
	f := newFloor(t, nil, time.Time{}, routing.WithMediaTimeout(time.Minute))
	f.addGroup("g")
	for i := 1; i <= 6; i++ {
		f.addAgent(fmt.Sprintf("a%d", i), presence.RoleAgent, "g")
	}
	f.addQueue("main", routing.LongestIdle, 0, []string{"g"}, "+842800")
	held := &firstDialHeld{Media: f.media, entered: make(chan struct{}), release: make(chan struct{})}
	f.eng.SetMedia(held)
	released := false
	defer func() {
		if !released {
			close(held.release)
		}
	}()

	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-1", Caller: "+84900000001", Hotline: "+842800"})
	select {
	case <-held.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the first call was never dialled")
	}
	// Five more callers: the call ids are deterministic, and at least one
	// of them hashes to a loop other than the first call's.
	for i := 2; i <= 6; i++ {
		f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: media.LegID(fmt.Sprintf("cust-%d", i)),
			Caller: fmt.Sprintf("+8490000000%d", i), Hotline: "+842800"})
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(f.media.Dials()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no other call was dialled while the first call's Dial was held: the dispatcher waits for each Dial")
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(held.release)
	released = true
	f.flush()

	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(calls) != 6 {
		t.Fatalf("%d live calls, want 6", len(calls))
	}
	rung := map[string]string{}
	for _, c := range calls {
		if c.State != routing.StateRinging || c.Agent == nil {
			t.Fatalf("call %s is %s (agent %v), want ringing", c.ID, c.State, c.Agent)
		}
		if other, ok := rung[*c.Agent]; ok {
			t.Fatalf("agent %s rung for %s and %s", *c.Agent, other, c.ID)
		}
		rung[*c.Agent] = c.ID
	}
	if n := len(f.media.Dials()); n != 6 {
		t.Fatalf("%d dials, want 6 (one per call): %+v", n, f.media.Dials())
	}
}
