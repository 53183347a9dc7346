package store

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/callfloor/callfloor/state"
)

func TestMemoryChangedSince(t *testing.T) {
	m := NewMemory()
	defer m.Close()
	ctx := context.Background()
	put := func(id, data string) state.Put {
		return state.Put{Kind: state.KindAgent, ID: id, Data: []byte(data), IfVersion: state.AnyVersion}
	}
	commit := func(tx state.Tx) {
		t.Helper()
		if _, err := m.Commit(ctx, tx); err != nil {
			t.Fatal(err)
		}
	}
	since := func(mark uint64) (ids, deleted []string, next uint64, full bool) {
		t.Helper()
		recs, deleted, next, full, err := m.ChangedSince(ctx, state.KindAgent, mark)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			ids = append(ids, r.ID+"="+string(r.Data))
		}
		slices.Sort(ids)
		slices.Sort(deleted)
		return ids, deleted, next, full
	}

	commit(state.Tx{Puts: []state.Put{put("a", "1"), put("b", "1"), {Kind: state.KindCall, ID: "c1", Data: []byte("x"), IfVersion: state.AnyVersion}}})
	ids, del, mark, full := since(0)
	if !full || !slices.Equal(ids, []string{"a=1", "b=1"}) || del != nil {
		t.Fatalf("mark 0: %v deleted %v full %v; want every agent, full", ids, del, full)
	}
	if ids, del, next, full := since(mark); full || ids != nil || del != nil || next != mark {
		t.Fatalf("nothing changed: %v %v next %d (mark %d) full %v", ids, del, next, mark, full)
	}

	// A call written meanwhile is not an agent change.
	commit(state.Tx{Puts: []state.Put{{Kind: state.KindCall, ID: "c2", Data: []byte("x"), IfVersion: state.AnyVersion}}})
	commit(state.Tx{Puts: []state.Put{put("a", "2"), put("c", "1")}, Deletes: []state.Delete{{Kind: state.KindAgent, ID: "b", IfVersion: state.AnyVersion}}})
	ids, del, mark2, full := since(mark)
	if full || !slices.Equal(ids, []string{"a=2", "c=1"}) || !slices.Equal(del, []string{"b"}) {
		t.Fatalf("after changes: %v deleted %v full %v; want a=2 c=1, b deleted", ids, del, full)
	}

	// Deleted and written again: a change, not a deletion.
	commit(state.Tx{Deletes: []state.Delete{{Kind: state.KindAgent, ID: "c", IfVersion: state.AnyVersion}}})
	commit(state.Tx{Puts: []state.Put{put("c", "2")}})
	if ids, del, _, full := since(mark2); full || !slices.Equal(ids, []string{"c=2"}) || del != nil {
		t.Fatalf("re-created: %v deleted %v full %v; want c=2 only", ids, del, full)
	}

	// A mark from another store's numbering (ahead of this one) gets everything.
	if _, _, _, full := since(mark2 + 1000); !full {
		t.Fatal("a mark ahead of the store: not full")
	}

	// More deletions than remembered: an old mark gets every record.
	old := mark2
	for i := range maxDeletions + 10 {
		id := fmt.Sprintf("tmp%d", i)
		commit(state.Tx{Puts: []state.Put{put(id, "1")}})
		commit(state.Tx{Deletes: []state.Delete{{Kind: state.KindAgent, ID: id, IfVersion: state.AnyVersion}}})
	}
	if ids, del, _, full := since(old); !full || !slices.Equal(ids, []string{"a=2", "c=2"}) || del != nil {
		t.Fatalf("forgotten deletions: %v deleted %v full %v; want every agent, full", ids, del, full)
	}
}
