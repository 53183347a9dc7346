package statetest

import (
	"testing"

	"github.com/callfloor/callfloor/state"
)

// runReopen writes every kind of state, reopens the backend over the same
// data and checks the new instance sees exactly the same thing, and that
// it goes on from there (versions, series order, log positions).
func runReopen(t *testing.T, f Factory) {
	if f.Reopen == nil {
		t.Skip("backend has no persistence: nothing survives a reopen")
	}
	s := f.New(t)
	commit(t, s, state.Tx{
		Puts: []state.Put{
			put(state.KindAgent, "a1", `{"id":"a1"}`, state.MustNotExist),
			put(state.KindAgent, "a2", `{"id":"a2"}`, state.MustNotExist),
			put(state.KindQueue, "sales", `{"id":"sales"}`, state.MustNotExist),
		},
		Appends: []state.Append{{Series: "history:a1", Entries: []state.Entry{{Score: 10, Data: []byte("x")}, {Score: 10, Data: []byte("y")}}}},
		Incrs:   []state.Incr{{Counter: "stats:d", Field: "answered", Delta: 3}, {Counter: "stats:d", Field: "missed", Delta: -1}},
		Events:  []state.NewEvent{{Type: "agent", Scope: state.Scope{Agent: "a1", Groups: []string{"sales"}}, Data: []byte("e1")}},
	})
	commit(t, s, state.Tx{
		Puts:    []state.Put{put(state.KindAgent, "a1", `{"id":"a1","v":2}`, 1)},
		Deletes: []state.Delete{{Kind: state.KindAgent, ID: "a2", IfVersion: 1}},
		Events:  []state.NewEvent{ev("agent", "e2"), ev("queue", "e3")},
	})
	before := snapshot(t, s)

	r := f.Reopen(t, s)
	after := snapshot(t, r)
	compareSnapshots(t, before, after)

	// The reopened store continues where the old one stopped.
	commit(t, r, state.Tx{
		Puts:    []state.Put{put(state.KindAgent, "a1", "v3", 2)},
		Appends: []state.Append{{Series: "history:a1", Entries: []state.Entry{{Score: 10, Data: []byte("z")}}}},
		Events:  []state.NewEvent{ev("agent", "e4")},
	})
	wantRecord(t, r, state.KindAgent, "a1", 3, "v3")
	wantEntries(t, series(t, r, "history:a1", 0, 100, 0),
		state.Entry{Score: 10, Data: []byte("x")}, state.Entry{Score: 10, Data: []byte("y")}, state.Entry{Score: 10, Data: []byte("z")})
	newer := readAll(t, r, before.last, 0)
	if len(newer) != 1 || string(newer[0].Data) != "e4" {
		t.Fatalf("after reopen, events after %q = %+v, want only e4", before.last, newer)
	}
}

type storeSnapshot struct {
	agents, queues []state.Record
	history        []state.Entry
	stats          map[string]int64
	events         []state.Event
	last           string
}

func snapshot(t *testing.T, s state.StoreLog) storeSnapshot {
	t.Helper()
	var snap storeSnapshot
	var err error
	if snap.agents, err = s.List(ctx(t), state.KindAgent); err != nil {
		t.Fatal(err)
	}
	if snap.queues, err = s.List(ctx(t), state.KindQueue); err != nil {
		t.Fatal(err)
	}
	snap.history = series(t, s, "history:a1", 0, 100, 0)
	snap.stats = counters(t, s, "stats:d")
	snap.events = readAll(t, s, "", 0)
	if snap.last, err = s.Last(ctx(t)); err != nil {
		t.Fatal(err)
	}
	return snap
}

func compareSnapshots(t *testing.T, a, b storeSnapshot) {
	t.Helper()
	sameRecords := func(x, y []state.Record) bool {
		if len(x) != len(y) {
			return false
		}
		for i := range x {
			if x[i].Kind != y[i].Kind || x[i].ID != y[i].ID || x[i].Version != y[i].Version || string(x[i].Data) != string(y[i].Data) {
				return false
			}
		}
		return true
	}
	if !sameRecords(a.agents, b.agents) || !sameRecords(a.queues, b.queues) {
		t.Fatalf("records after reopen = %+v %+v, want %+v %+v", b.agents, b.queues, a.agents, a.queues)
	}
	if len(a.agents) != 1 || a.agents[0].Version != 2 {
		t.Fatalf("unexpected state before reopen: %+v", a.agents)
	}
	wantEntries(t, b.history, a.history...)
	if len(a.stats) != len(b.stats) || a.stats["answered"] != b.stats["answered"] || a.stats["missed"] != b.stats["missed"] {
		t.Fatalf("counters after reopen = %v, want %v", b.stats, a.stats)
	}
	wantEvents(t, b.events, a.events)
	if len(a.events) != 3 || a.last != b.last || a.last != a.events[2].ID {
		t.Fatalf("log after reopen: last %q, want %q (events %v)", b.last, a.last, ids(a.events))
	}
}
