package statetest

import (
	"context"
	"fmt"
	"slices"
	"testing"

	"github.com/callfloor/callfloor/state"
)

// ChangeFeed is the optional change feed of a store (store.Memory and
// store.Redis): what a kind's records did since a mark the feed handed
// out. presence and routing list agents and calls through it, so a
// listing costs what changed (docs/performance.md, Agents list).
type ChangeFeed interface {
	ChangedSince(ctx context.Context, kind state.Kind, mark uint64) (changed []state.Record, deleted []string, next uint64, full bool, err error)
}

// runChanges checks the change feed: changes and deletions since a mark,
// kinds kept apart, re-created records, marks from elsewhere, forgotten
// deletions, and writes made through a second client (another replica).
func runChanges(t *testing.T, f Factory) {
	feedOf := func(t *testing.T, s state.StoreLog) ChangeFeed {
		t.Helper()
		feed, ok := s.(ChangeFeed)
		if !ok {
			t.Skip("the backend has no change feed")
		}
		return feed
	}
	agent := func(id, data string) state.Put { return put(state.KindAgent, id, data, state.AnyVersion) }
	del := func(id string) state.Delete {
		return state.Delete{Kind: state.KindAgent, ID: id, IfVersion: state.AnyVersion}
	}
	type got struct {
		ids, deleted []string
		next         uint64
		full         bool
	}
	since := func(t *testing.T, feed ChangeFeed, mark uint64) got {
		t.Helper()
		recs, deleted, next, full, err := feed.ChangedSince(ctx(t), state.KindAgent, mark)
		if err != nil {
			t.Fatalf("ChangedSince(%d): %v", mark, err)
		}
		var g got
		for _, r := range recs {
			if r.Kind != state.KindAgent {
				t.Fatalf("ChangedSince(agent) returned a %s record", r.Kind)
			}
			g.ids = append(g.ids, fmt.Sprintf("%s=%s@%d", r.ID, r.Data, r.Version))
		}
		slices.Sort(g.ids)
		slices.Sort(deleted)
		g.deleted, g.next, g.full = deleted, next, full
		return g
	}

	t.Run("SinceMark", func(t *testing.T) {
		s := f.New(t)
		feed := feedOf(t, s)
		if g := since(t, feed, 0); !g.full || g.ids != nil || g.deleted != nil {
			t.Fatalf("empty store: %+v; want full and nothing", g)
		}
		commit(t, s, state.Tx{Puts: []state.Put{agent("a", "1"), agent("b", "1"), put(state.KindCall, "c1", "x", state.AnyVersion)}})
		g := since(t, feed, 0)
		if !g.full || !slices.Equal(g.ids, []string{"a=1@1", "b=1@1"}) || g.deleted != nil || g.next == 0 {
			t.Fatalf("mark 0: %+v; want every agent, full", g)
		}
		mark := g.next
		if g := since(t, feed, mark); g.full || g.ids != nil || g.deleted != nil || g.next != mark {
			t.Fatalf("nothing changed: %+v (mark %d)", g, mark)
		}

		// A call written meanwhile is not an agent change; a failed Tx is
		// no change at all.
		commit(t, s, state.Tx{Puts: []state.Put{put(state.KindCall, "c2", "x", state.AnyVersion)}})
		if _, err := s.Commit(ctx(t), state.Tx{Puts: []state.Put{agent("z", "1"), put(state.KindAgent, "a", "x", 7)}}); err == nil {
			t.Fatal("a Tx with a stale version committed")
		}
		if g := since(t, feed, mark); g.full || g.ids != nil || g.deleted != nil || g.next != mark {
			t.Fatalf("after a call write and a failed Tx: %+v (mark %d)", g, mark)
		}

		commit(t, s, state.Tx{Puts: []state.Put{agent("a", "2"), agent("c", "1")}, Deletes: []state.Delete{del("b"), del("never")}})
		g = since(t, feed, mark)
		if g.full || !slices.Equal(g.ids, []string{"a=2@2", "c=1@1"}) || !slices.Equal(g.deleted, []string{"b"}) || g.next <= mark {
			t.Fatalf("after changes: %+v; want a=2 c=1, b deleted", g)
		}
		mark2 := g.next

		// Deleted and written again: a change, not a deletion.
		commit(t, s, state.Tx{Deletes: []state.Delete{del("c")}})
		commit(t, s, state.Tx{Puts: []state.Put{agent("c", "2")}})
		if g := since(t, feed, mark2); g.full || !slices.Equal(g.ids, []string{"c=2@1"}) || g.deleted != nil {
			t.Fatalf("re-created: %+v; want c=2 only", g)
		}
		// Deleted after a mark, whatever happened between.
		commit(t, s, state.Tx{Puts: []state.Put{agent("d", "1")}})
		commit(t, s, state.Tx{Deletes: []state.Delete{del("d"), del("a")}})
		if g := since(t, feed, mark2); g.full || !slices.Equal(g.ids, []string{"c=2@1"}) || !slices.Equal(g.deleted, []string{"a", "d"}) {
			t.Fatalf("deleted since: %+v; want c=2, a and d deleted", g)
		}

		// A mark from another store's numbering (ahead of this one) gets
		// everything.
		if g := since(t, feed, mark2+1_000_000); !g.full || !slices.Equal(g.ids, []string{"c=2@1"}) {
			t.Fatalf("a mark ahead of the store: %+v; want full", g)
		}
	})

	t.Run("ForgottenDeletions", func(t *testing.T) {
		if f.FeedDeletions <= 0 {
			t.Skip("Factory.FeedDeletions not set")
		}
		s := f.New(t)
		feed := feedOf(t, s)
		commit(t, s, state.Tx{Puts: []state.Put{agent("keep", "1")}})
		old := since(t, feed, 0).next
		n := f.FeedDeletions + 10
		var tx state.Tx
		for i := range n {
			tx.Puts = append(tx.Puts, agent(fmt.Sprintf("tmp%05d", i), "1"))
		}
		commit(t, s, tx)
		recent := since(t, feed, old).next
		tx = state.Tx{}
		for i := range n {
			tx.Deletes = append(tx.Deletes, del(fmt.Sprintf("tmp%05d", i)))
		}
		commit(t, s, tx)
		if g := since(t, feed, old); !g.full || !slices.Equal(g.ids, []string{"keep=1@1"}) || g.deleted != nil {
			t.Fatalf("forgotten deletions: %d ids, %d deleted, full %v; want only keep, full", len(g.ids), len(g.deleted), g.full)
		}
		// A mark newer than every forgotten deletion still gets a delta.
		commit(t, s, state.Tx{Deletes: []state.Delete{del("keep")}})
		g := since(t, feed, recent)
		if !g.full {
			// The newest deletions are remembered: keep is among them.
			if g.ids != nil || !slices.Contains(g.deleted, "keep") {
				t.Fatalf("after trimming: %d ids, deleted has keep %v", len(g.ids), slices.Contains(g.deleted, "keep"))
			}
		}
		last := since(t, feed, 0).next
		commit(t, s, state.Tx{Puts: []state.Put{agent("new", "1")}})
		if g := since(t, feed, last); g.full || !slices.Equal(g.ids, []string{"new=1@1"}) || g.deleted != nil {
			t.Fatalf("after trimming, a fresh mark: %+v; want new only", g)
		}
	})

	t.Run("SecondClient", func(t *testing.T) {
		if f.Second == nil {
			t.Skip("Factory.Second not set")
		}
		s := f.New(t)
		feed := feedOf(t, s)
		other := f.Second(t, s)
		commit(t, s, state.Tx{Puts: []state.Put{agent("a", "1"), agent("b", "1")}})
		mark := since(t, feed, 0).next
		// The other replica writes with compare-and-set, as presence does.
		commit(t, other, state.Tx{Puts: []state.Put{put(state.KindAgent, "a", "2", 1), agent("c", "1")}, Deletes: []state.Delete{del("b")}})
		g := since(t, feed, mark)
		if g.full || !slices.Equal(g.ids, []string{"a=2@2", "c=1@1"}) || !slices.Equal(g.deleted, []string{"b"}) {
			t.Fatalf("first client after the second's writes: %+v; want a=2 c=1, b deleted", g)
		}
		// And the other way round, on the second client's own feed.
		otherFeed := feedOf(t, other)
		mark2 := since(t, otherFeed, 0).next
		commit(t, s, state.Tx{Puts: []state.Put{put(state.KindAgent, "c", "2", 1)}})
		if g := since(t, otherFeed, mark2); g.full || !slices.Equal(g.ids, []string{"c=2@2"}) || g.deleted != nil {
			t.Fatalf("second client after the first's write: %+v; want c=2", g)
		}
	})
}
