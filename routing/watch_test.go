package routing_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
)

// readCounter counts the log reads that returned events.
type readCounter struct {
	state.Log
	reads atomic.Int64
}

func (c *readCounter) ReadAfter(ctx context.Context, after string, limit int, wait time.Duration) ([]state.Event, error) {
	evs, err := c.Log.ReadAfter(ctx, after, limit, wait)
	if len(evs) > 0 {
		c.reads.Add(1)
	}
	return evs, err
}

// The agent watch waits out its linger after a read, so the events of a
// busy floor wake it once per linger, not once per store commit.
func TestAgentWatchLingers(t *testing.T) {
	const linger = 500 * time.Millisecond
	f := newFloor(t, nil, time.Time{})
	log := &readCounter{Log: f.st}
	f.restartWith(routing.WithAgentEvents(log), routing.WithAgentWatchLinger(linger))
	note := func() {
		t.Helper()
		if _, err := f.st.Commit(f.ctx, state.Tx{Events: []state.NewEvent{{Type: "note", Data: []byte(`{}`)}}}); err != nil {
			t.Fatal(err)
		}
	}
	note()
	deadline := time.Now().Add(10 * time.Second)
	for log.reads.Load() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the watch never read the first event")
		}
		time.Sleep(time.Millisecond)
	}
	// Commits 5 ms apart: without the linger each would be a read of its own.
	start := time.Now()
	for range 20 {
		note()
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); took > linger/2 {
		t.Skipf("the commits took %v, too close to the linger of %v to tell", took, linger)
	}
	for log.reads.Load() < 2 {
		if time.Now().After(deadline) {
			t.Fatal("the watch never read the later events")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(linger / 5) // a third read, if one were coming, comes now
	if n := log.reads.Load(); n != 2 {
		t.Fatalf("the watch read %d times with events, want 2 (one per linger)", n)
	}
}
