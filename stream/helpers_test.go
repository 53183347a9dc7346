package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/stream"
)

// startHub runs a hub until the test ends and waits for Run to return.
func startHub(t testing.TB, log state.Log, opts ...stream.HubOption) *stream.Hub {
	t.Helper()
	h := stream.NewHub(log, opts...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := h.Run(ctx); err != nil {
			t.Errorf("hub run: %v", err)
		}
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return h
}

// commit appends one event per call with a sequence number in its data.
func commit(t testing.TB, st state.Store, typ string, sc state.Scope, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i++ {
		data, _ := json.Marshal(map[string]any{"id": fmt.Sprintf("%s-%d", typ, i), "n": i})
		evs, err := st.Commit(context.Background(), state.Tx{Events: []state.NewEvent{{Type: typ, Scope: sc, Data: data}}})
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		ids = append(ids, evs[0].ID)
	}
	return ids
}

// collect reads from sub until it has n events (resets are returned as
// "reset"), failing after a generous timeout.
func collect(t testing.TB, sub *stream.Subscriber, n int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		items, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d of %d items %v: %v", len(got), n, got, err)
		}
		for _, it := range items {
			if it.Reset {
				got = append(got, "reset")
			} else {
				got = append(got, it.Event.ID)
			}
		}
	}
	return got
}

// quiet asserts that sub has nothing more to deliver after the hub has
// fanned out everything up to the log's head.
func quiet(t testing.TB, h *stream.Hub, log state.Log, sub *stream.Subscriber) {
	t.Helper()
	waitPosition(t, h, log)
	for i := 0; i < 3; i++ { // a catch-up may need a read or two to finish
		items, err := sub.Take(context.Background(), nil)
		if err != nil || len(items) != 0 {
			t.Fatalf("expected nothing more, got %d items (%v), err %v", len(items), ids(items), err)
		}
	}
}

func waitPosition(t testing.TB, h *stream.Hub, log state.Log) {
	t.Helper()
	last, err := log.Last(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for h.Position() != last {
		if time.Now().After(deadline) {
			t.Fatalf("hub stuck at %q, log at %q", h.Position(), last)
		}
		time.Sleep(time.Millisecond)
	}
}

func ids(items []stream.Item) []string {
	var out []string
	for _, it := range items {
		if it.Reset {
			out = append(out, "reset")
		} else {
			out = append(out, it.Event.ID)
		}
	}
	return out
}

func equal(t testing.TB, got, want []string) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}
