package stream_test

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

// countingStats reports how many times it was asked, as the stats body.
type countingStats struct{ n atomic.Int64 }

func (c *countingStats) Snapshot(context.Context) ([]state.NewEvent, error) {
	n := c.n.Add(1)
	data, _ := json.Marshal(map[string]int64{"snapshot": n})
	return []state.NewEvent{
		{Type: stream.TypeStats, Data: data},
		{Type: stream.TypeStats, Scope: state.Scope{Groups: []string{"g1"}}, Data: data},
	}, nil
}

func TestStatsCoalesced(t *testing.T) {
	st := store.NewMemory()
	h := startHub(t, st)
	src := &countingStats{}
	const interval = 100 * time.Millisecond
	pub := stream.NewStatsPublisher(h, src, st, stream.WithInterval(interval))
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = pub.Run(ctx) }()
	defer func() { cancel(); wg.Wait() }()

	watch := subscribe(t, h, stream.Subscription{Actor: admin})
	const calls = 200
	lastCall := commit(t, st, "call", state.Scope{Queue: "q"}, calls)[calls-1]

	// Read until a stats publication follows the last call event: the
	// final state is always published.
	var stats []state.Event
	seenLast, statsAfterLast := false, 0
	deadline, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	for statsAfterLast < 2 {
		items, err := watch.Next(deadline)
		if err != nil {
			t.Fatalf("waiting for final stats: %v (stats so far %d)", err, len(stats))
		}
		for _, it := range items {
			if it.Event.ID == lastCall {
				seenLast = true
			}
			if it.Event.Type == stream.TypeStats {
				stats = append(stats, it.Event)
				if seenLast {
					statsAfterLast++
				}
			}
		}
	}
	if n := src.n.Load(); n >= calls/2 {
		t.Fatalf("%d snapshots for %d call events: not coalesced", n, calls)
	}
	// One publication = one commit of two events with the same At; distinct
	// publications are at least interval apart.
	for i := 2; i < len(stats); i += 2 {
		if gap := stats[i].At.Sub(stats[i-2].At); gap < interval {
			t.Fatalf("stats publications %s apart, want >= %s", gap, interval)
		}
	}
}
