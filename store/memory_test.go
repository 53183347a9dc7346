package store

import (
	"context"
	"errors"
	"testing"

	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/state/statetest"
)

func TestMemoryContract(t *testing.T) {
	statetest.Run(t, statetest.Factory{
		New: func(t *testing.T) state.StoreLog {
			m := NewMemory()
			t.Cleanup(func() { m.Close() })
			return m
		},
		NewRetaining: func(t *testing.T, retention int) state.StoreLog {
			m := NewMemory(WithRetention(retention))
			t.Cleanup(func() { m.Close() })
			return m
		},
		// Reopen is nil: the memory store keeps nothing across instances.
		Second:        func(t *testing.T, s state.StoreLog) state.StoreLog { return s },
		FeedDeletions: FeedDeletions,
	})
}

func TestMemoryPositionsAndDefaultRetention(t *testing.T) {
	m := NewMemory()
	defer m.Close()
	ctx := context.Background()
	tx := state.Tx{Events: []state.NewEvent{{Type: "agent"}, {Type: "agent"}}}
	for i := 0; i < DefaultMemoryRetention/2+1; i++ {
		evs, err := m.Commit(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 && (evs[0].ID != "1" || evs[1].ID != "2") {
			t.Fatalf("first positions = %s, %s; want 1, 2", evs[0].ID, evs[1].ID)
		}
	}
	// 10,002 events with room for 10,000: events 1 and 2 are gone.
	evs, err := m.ReadAfter(ctx, "2", 1, 0)
	if err != nil || len(evs) != 1 || evs[0].ID != "3" {
		t.Fatalf("ReadAfter(2) = %v, %v; want event 3", evs, err)
	}
	if _, err := m.ReadAfter(ctx, "1", 1, 0); !errors.Is(err, state.ErrTrimmed) {
		t.Fatalf("ReadAfter(1) error = %v, want ErrTrimmed", err)
	}
	if _, err := m.ReadAfter(ctx, "3-0", 1, 0); !errors.Is(err, state.ErrBadPosition) {
		t.Fatalf("ReadAfter(3-0) error = %v, want ErrBadPosition", err)
	}
}
