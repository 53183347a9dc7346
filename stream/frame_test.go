package stream_test

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"

	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

// A live event's frame is encoded once however many subscribers send it;
// a catch-up read (no shared entry) encodes for itself.
func TestFrameEncodedOncePerEvent(t *testing.T) {
	st := store.NewMemory()
	defer st.Close()
	h := startHub(t, st)
	subs := []*stream.Subscriber{
		subscribe(t, h, stream.Subscription{Actor: admin}),
		subscribe(t, h, stream.Subscription{Actor: admin}),
		subscribe(t, h, stream.Subscription{Actor: admin}),
	}
	ids := commit(t, st, "call", state.Scope{}, 2)
	var encodes atomic.Int64
	encode := func(e *state.Event) []byte {
		encodes.Add(1)
		return []byte(e.ID + "\n")
	}
	var frames [][]byte
	for _, s := range subs {
		got := 0
		for got < len(ids) {
			items, err := s.Next(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			for i := range items {
				frames = append(frames, items[i].Frame(encode))
			}
			got += len(items)
		}
	}
	if n := encodes.Load(); n != int64(len(ids)) {
		t.Fatalf("encoded %d times for %d events and %d subscribers, want once per event", n, len(ids), len(subs))
	}
	for i, f := range frames {
		if want := ids[i%len(ids)] + "\n"; !bytes.Equal(f, []byte(want)) {
			t.Fatalf("frame %d = %q, want %q", i, f, want)
		}
	}

	// Resuming from the log: the catch-up items carry no shared entry.
	late := subscribe(t, startHub(t, st, stream.WithWindow(0)), stream.Subscription{Actor: admin, After: ids[0]})
	items, err := late.Next(context.Background())
	if err != nil || len(items) != 1 {
		t.Fatalf("catch-up: %v %v", items, err)
	}
	before := encodes.Load()
	if f := items[0].Frame(encode); string(f) != ids[1]+"\n" || encodes.Load() != before+1 {
		t.Fatalf("catch-up frame %q, encodes %d → %d", f, before, encodes.Load())
	}
}
