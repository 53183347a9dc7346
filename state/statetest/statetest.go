// Package statetest is the contract suite every state.StoreLog backend
// must pass. A backend's test calls Run with a Factory; the suite then
// checks records and versions, atomicity of a failed Tx, series ordering,
// counters, the event log (ordering, exact resume, waiting, trimming,
// malformed positions), concurrent compare-and-set, due indexes, commits
// fenced by a lease token (the store must also be a lease.Backend), the
// optional change feed (ChangeFeed), and, when the backend persists, that
// a reopened store sees exactly the state it left.
package statetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/state"
)

// Factory builds the stores under test.
type Factory struct {
	// New returns an empty, isolated store. The factory closes it in
	// t.Cleanup (tests may also close it themselves; Close must tolerate
	// being called twice).
	New func(t *testing.T) state.StoreLog
	// NewRetaining returns an empty store whose log retains about the
	// newest retention events. Nil skips the trimming tests.
	NewRetaining func(t *testing.T, retention int) state.StoreLog
	// Reopen returns a new instance over the same backing data as old
	// (e.g. a new client on the same Redis). Nil means the backend has no
	// persistence and the reopen tests are skipped.
	Reopen func(t *testing.T, old state.StoreLog) state.StoreLog
	// Second returns another client over the same data as s, as another
	// replica would hold (it may be s itself for a store with no server).
	// Nil skips the two-client change feed test.
	Second func(t *testing.T, s state.StoreLog) state.StoreLog
	// FeedDeletions is how many deletions per kind the change feed
	// remembers (0 skips the forgotten-deletions test).
	FeedDeletions int
}

// Run runs the whole contract suite against the backend f builds.
func Run(t *testing.T, f Factory) {
	if f.New == nil {
		t.Fatal("statetest: Factory.New is required")
	}
	t.Run("Records", func(t *testing.T) { runRecords(t, f) })
	t.Run("Tx", func(t *testing.T) { runTx(t, f) })
	t.Run("Series", func(t *testing.T) { runSeries(t, f) })
	t.Run("Counters", func(t *testing.T) { runCounters(t, f) })
	t.Run("Log", func(t *testing.T) { runLog(t, f) })
	t.Run("Wait", func(t *testing.T) { runWait(t, f) })
	t.Run("Trim", func(t *testing.T) { runTrim(t, f) })
	t.Run("Concurrency", func(t *testing.T) { runConcurrency(t, f) })
	t.Run("Due", func(t *testing.T) { runDue(t, f) })
	t.Run("Fence", func(t *testing.T) { runFence(t, f) })
	t.Run("Closed", func(t *testing.T) { runClosed(t, f) })
	t.Run("Reopen", func(t *testing.T) { runReopen(t, f) })
	t.Run("Changes", func(t *testing.T) { runChanges(t, f) })
}

// ctx returns a context bounded well beyond any single operation, so a
// hanging backend fails the test instead of hanging it.
func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func commit(t *testing.T, s state.StoreLog, tx state.Tx) []state.Event {
	t.Helper()
	evs, err := s.Commit(ctx(t), tx)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if len(evs) != len(tx.Events) {
		t.Fatalf("Commit returned %d events, want %d", len(evs), len(tx.Events))
	}
	return evs
}

func put(kind state.Kind, id, data string, ifVersion int64) state.Put {
	return state.Put{Kind: kind, ID: id, Data: []byte(data), IfVersion: ifVersion}
}

func ev(typ, data string) state.NewEvent {
	return state.NewEvent{Type: typ, Data: []byte(data)}
}

func mustGet(t *testing.T, s state.StoreLog, kind state.Kind, id string) state.Record {
	t.Helper()
	r, err := s.Get(ctx(t), kind, id)
	if err != nil {
		t.Fatalf("Get(%s, %s): %v", kind, id, err)
	}
	return r
}

func wantRecord(t *testing.T, s state.StoreLog, kind state.Kind, id string, version int64, data string) {
	t.Helper()
	r := mustGet(t, s, kind, id)
	if r.Kind != kind || r.ID != id || r.Version != version || string(r.Data) != data {
		t.Fatalf("Get(%s, %s) = {%s %s v%d %q}, want v%d %q", kind, id, r.Kind, r.ID, r.Version, r.Data, version, data)
	}
}

func wantNotFound(t *testing.T, s state.StoreLog, kind state.Kind, id string) {
	t.Helper()
	_, err := s.Get(ctx(t), kind, id)
	if !errors.Is(err, state.ErrNotFound) {
		t.Fatalf("Get(%s, %s) error = %v, want ErrNotFound", kind, id, err)
	}
}

func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: error = %v, want %v", what, err, want)
	}
}

func series(t *testing.T, s state.StoreLog, name string, min, max int64, limit int) []state.Entry {
	t.Helper()
	es, err := s.Series(ctx(t), name, min, max, limit)
	if err != nil {
		t.Fatalf("Series(%s): %v", name, err)
	}
	return es
}

func wantEntries(t *testing.T, got []state.Entry, want ...state.Entry) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("series = %s, want %s", fmtEntries(got), fmtEntries(want))
	}
	for i := range got {
		if got[i].Score != want[i].Score || !bytes.Equal(got[i].Data, want[i].Data) {
			t.Fatalf("series = %s, want %s", fmtEntries(got), fmtEntries(want))
		}
	}
}

func fmtEntries(es []state.Entry) string {
	var b bytes.Buffer
	for _, e := range es {
		fmt.Fprintf(&b, "[%d %q]", e.Score, e.Data)
	}
	return b.String()
}

func counters(t *testing.T, s state.StoreLog, name string) map[string]int64 {
	t.Helper()
	c, err := s.Counters(ctx(t), name)
	if err != nil {
		t.Fatalf("Counters(%s): %v", name, err)
	}
	if c == nil {
		t.Fatalf("Counters(%s) returned a nil map, want an empty map", name)
	}
	return c
}

// readAll reads the whole retained log in pages of limit.
func readAll(t *testing.T, s state.StoreLog, after string, limit int) []state.Event {
	t.Helper()
	var all []state.Event
	for {
		evs, err := s.ReadAfter(ctx(t), after, limit, 0)
		if err != nil {
			t.Fatalf("ReadAfter(%q): %v", after, err)
		}
		if limit > 0 && len(evs) > limit {
			t.Fatalf("ReadAfter(%q, limit %d) returned %d events", after, limit, len(evs))
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].ID
	}
}

func sameEvent(a, b state.Event) bool {
	return a.ID == b.ID && a.Type == b.Type && bytes.Equal(a.Data, b.Data) &&
		a.At.Equal(b.At) && sameScope(a.Scope, b.Scope)
}

func sameScope(a, b state.Scope) bool {
	if a.Agent != b.Agent || a.Queue != b.Queue || len(a.Groups) != len(b.Groups) {
		return false
	}
	for i := range a.Groups {
		if a.Groups[i] != b.Groups[i] {
			return false
		}
	}
	return true
}

func wantEvents(t *testing.T, got, want []state.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %s, want %d %s", len(got), ids(got), len(want), ids(want))
	}
	for i := range got {
		if !sameEvent(got[i], want[i]) {
			t.Fatalf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func ids(evs []state.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.ID
	}
	return out
}
