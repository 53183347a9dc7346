package statetest

import (
	"errors"
	"testing"

	"github.com/callfloor/callfloor/state"
)

func runRecords(t *testing.T, f Factory) {
	t.Run("CreateGetList", func(t *testing.T) {
		s := f.New(t)
		commit(t, s, state.Tx{Puts: []state.Put{
			put(state.KindAgent, "b", `{"id":"b"}`, state.MustNotExist),
			put(state.KindAgent, "a", `{"id":"a"}`, state.MustNotExist),
			put(state.KindAgent, "c", `{"id":"c"}`, state.AnyVersion),
			put(state.KindGroup, "a", `{"group":"a"}`, state.MustNotExist),
		}})
		wantRecord(t, s, state.KindAgent, "a", 1, `{"id":"a"}`)
		wantRecord(t, s, state.KindGroup, "a", 1, `{"group":"a"}`)
		wantNotFound(t, s, state.KindAgent, "zz")
		wantNotFound(t, s, state.KindQueue, "a")
		recs, err := s.List(ctx(t), state.KindAgent)
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 3 || recs[0].ID != "a" || recs[1].ID != "b" || recs[2].ID != "c" {
			t.Fatalf("List(agent) = %+v, want a, b, c", recs)
		}
		for _, r := range recs {
			if r.Kind != state.KindAgent || r.Version != 1 || string(r.Data) != `{"id":"`+r.ID+`"}` {
				t.Fatalf("List record %+v", r)
			}
		}
		empty, err := s.List(ctx(t), state.KindQueue)
		if err != nil || len(empty) != 0 {
			t.Fatalf("List(queue) = %v, %v; want empty", empty, err)
		}
	})
	t.Run("Versions", func(t *testing.T) {
		s := f.New(t)
		commit(t, s, state.Tx{Puts: []state.Put{put(state.KindAgent, "a", "1", state.MustNotExist)}})
		commit(t, s, state.Tx{Puts: []state.Put{put(state.KindAgent, "a", "2", state.AnyVersion)}})
		wantRecord(t, s, state.KindAgent, "a", 2, "2")
		commit(t, s, state.Tx{Puts: []state.Put{put(state.KindAgent, "a", "3", 2)}})
		wantRecord(t, s, state.KindAgent, "a", 3, "3")
		for _, c := range []struct {
			name string
			p    state.Put
		}{
			{"stale version", put(state.KindAgent, "a", "x", 2)},
			{"future version", put(state.KindAgent, "a", "x", 4)},
			{"must not exist", put(state.KindAgent, "a", "x", state.MustNotExist)},
			{"exact version of missing record", put(state.KindAgent, "new", "x", 1)},
		} {
			_, err := s.Commit(ctx(t), state.Tx{Puts: []state.Put{c.p}})
			wantErr(t, err, state.ErrConflict, c.name)
		}
		wantRecord(t, s, state.KindAgent, "a", 3, "3")
		wantNotFound(t, s, state.KindAgent, "new")
	})
	t.Run("Deletes", func(t *testing.T) {
		s := f.New(t)
		commit(t, s, state.Tx{Puts: []state.Put{
			put(state.KindCall, "c1", "1", state.MustNotExist),
			put(state.KindCall, "c2", "2", state.MustNotExist),
		}})
		_, err := s.Commit(ctx(t), state.Tx{Deletes: []state.Delete{{Kind: state.KindCall, ID: "c1", IfVersion: 2}}})
		wantErr(t, err, state.ErrConflict, "delete with wrong version")
		_, err = s.Commit(ctx(t), state.Tx{Deletes: []state.Delete{{Kind: state.KindCall, ID: "gone", IfVersion: 1}}})
		wantErr(t, err, state.ErrConflict, "delete of a missing record with an exact version")
		commit(t, s, state.Tx{Deletes: []state.Delete{
			{Kind: state.KindCall, ID: "c1", IfVersion: 1},
			{Kind: state.KindCall, ID: "gone", IfVersion: state.AnyVersion},
		}})
		wantNotFound(t, s, state.KindCall, "c1")
		recs, err := s.List(ctx(t), state.KindCall)
		if err != nil || len(recs) != 1 || recs[0].ID != "c2" {
			t.Fatalf("List after delete = %+v, %v; want only c2", recs, err)
		}
		commit(t, s, state.Tx{Puts: []state.Put{put(state.KindCall, "c1", "again", state.MustNotExist)}})
		wantRecord(t, s, state.KindCall, "c1", 1, "again")
	})
	t.Run("NoAliasing", func(t *testing.T) {
		s := f.New(t)
		data := []byte("original")
		edata := []byte("event")
		evs := commit(t, s, state.Tx{
			Puts:    []state.Put{{Kind: state.KindAgent, ID: "a", Data: data, IfVersion: state.MustNotExist}},
			Appends: []state.Append{{Series: "h", Entries: []state.Entry{{Score: 1, Data: data}}}},
			Events:  []state.NewEvent{{Type: "agent", Data: edata, Scope: state.Scope{Groups: []string{"g"}}}},
		})
		copy(data, "XXXXXXXX")
		copy(edata, "XXXXX")
		evs[0].Data[0] = 'Y'
		r := mustGet(t, s, state.KindAgent, "a")
		r.Data[0] = 'Z'
		wantRecord(t, s, state.KindAgent, "a", 1, "original")
		es := series(t, s, "h", 0, 10, 0)
		es[0].Data[0] = 'Z'
		wantEntries(t, series(t, s, "h", 0, 10, 0), state.Entry{Score: 1, Data: []byte("original")})
		got := readAll(t, s, "", 0)
		if len(got) != 1 || string(got[0].Data) != "event" {
			t.Fatalf("event data aliased: %+v", got)
		}
	})
	t.Run("InvalidTx", func(t *testing.T) {
		s := f.New(t)
		for name, tx := range map[string]state.Tx{
			"empty id":      {Puts: []state.Put{put(state.KindAgent, "", "x", state.AnyVersion)}},
			"empty kind":    {Puts: []state.Put{put("", "a", "x", state.AnyVersion)}},
			"bad version":   {Puts: []state.Put{put(state.KindAgent, "a", "x", -7)}},
			"empty series":  {Appends: []state.Append{{Entries: []state.Entry{{Score: 1}}}}},
			"empty counter": {Incrs: []state.Incr{{Field: "f", Delta: 1}}},
			"empty type":    {Events: []state.NewEvent{{Data: []byte("{}")}}},
		} {
			tx.Puts = append(tx.Puts, put(state.KindAgent, "valid", "x", state.AnyVersion))
			_, err := s.Commit(ctx(t), tx)
			if err == nil || errors.Is(err, state.ErrConflict) {
				t.Fatalf("%s: Commit error = %v, want a validation error", name, err)
			}
		}
		wantNotFound(t, s, state.KindAgent, "valid")
		if evs := readAll(t, s, "", 0); len(evs) != 0 {
			t.Fatalf("invalid Tx appended events: %+v", evs)
		}
	})
}

// runTx checks that a Tx whose preconditions fail writes nothing at all.
func runTx(t *testing.T, f Factory) {
	seed := func(t *testing.T) state.StoreLog {
		s := f.New(t)
		commit(t, s, state.Tx{
			Puts:    []state.Put{put(state.KindAgent, "a", "a1", state.MustNotExist), put(state.KindAgent, "b", "b1", state.MustNotExist)},
			Appends: []state.Append{{Series: "history:a", Entries: []state.Entry{{Score: 100, Data: []byte("h1")}}}},
			Incrs:   []state.Incr{{Counter: "stats:today", Field: "calls", Delta: 5}},
			Events:  []state.NewEvent{ev("agent", "e1")},
		})
		return s
	}
	unchanged := func(t *testing.T, s state.StoreLog) {
		t.Helper()
		wantRecord(t, s, state.KindAgent, "a", 1, "a1")
		wantRecord(t, s, state.KindAgent, "b", 1, "b1")
		wantNotFound(t, s, state.KindAgent, "new")
		wantEntries(t, series(t, s, "history:a", 0, 1000, 0), state.Entry{Score: 100, Data: []byte("h1")})
		if n := len(series(t, s, "history:new", 0, 1000, 0)); n != 0 {
			t.Fatalf("series history:new has %d entries after a failed Tx", n)
		}
		if c := counters(t, s, "stats:today"); len(c) != 1 || c["calls"] != 5 {
			t.Fatalf("counters after a failed Tx = %v, want calls=5", c)
		}
		if c := counters(t, s, "stats:new"); len(c) != 0 {
			t.Fatalf("counter stats:new = %v after a failed Tx", c)
		}
		evs := readAll(t, s, "", 0)
		if len(evs) != 1 || string(evs[0].Data) != "e1" {
			t.Fatalf("log after a failed Tx = %+v, want only e1", evs)
		}
		last, err := s.Last(ctx(t))
		if err != nil || last != evs[0].ID {
			t.Fatalf("Last = %q, %v; want %q", last, err, evs[0].ID)
		}
	}
	everything := func() state.Tx {
		return state.Tx{
			Puts: []state.Put{
				put(state.KindAgent, "new", "n", state.MustNotExist),
				put(state.KindAgent, "a", "a2", 1),
			},
			Deletes: []state.Delete{{Kind: state.KindAgent, ID: "b", IfVersion: 1}},
			Appends: []state.Append{
				{Series: "history:a", Entries: []state.Entry{{Score: 50, Data: []byte("h0")}, {Score: 200, Data: []byte("h2")}}},
				{Series: "history:new", Entries: []state.Entry{{Score: 1, Data: []byte("x")}}},
			},
			Incrs:  []state.Incr{{Counter: "stats:today", Field: "calls", Delta: 1}, {Counter: "stats:new", Field: "f", Delta: -1}},
			Events: []state.NewEvent{ev("agent", "e2"), ev("call", "e3")},
		}
	}
	t.Run("FailingPut", func(t *testing.T) {
		s := seed(t)
		tx := everything()
		tx.Puts = append(tx.Puts, put(state.KindAgent, "b", "stale", 7))
		_, err := s.Commit(ctx(t), tx)
		wantErr(t, err, state.ErrConflict, "Tx with a stale put")
		unchanged(t, s)
	})
	t.Run("FailingDelete", func(t *testing.T) {
		s := seed(t)
		tx := everything()
		tx.Deletes = append(tx.Deletes, state.Delete{Kind: state.KindAgent, ID: "a", IfVersion: 3})
		_, err := s.Commit(ctx(t), tx)
		wantErr(t, err, state.ErrConflict, "Tx with a stale delete")
		unchanged(t, s)
	})
	t.Run("FailingMustNotExist", func(t *testing.T) {
		s := seed(t)
		tx := everything()
		tx.Puts = append(tx.Puts, put(state.KindAgent, "a", "dup", state.MustNotExist))
		_, err := s.Commit(ctx(t), tx)
		wantErr(t, err, state.ErrConflict, "Tx creating an existing record")
		unchanged(t, s)
	})
	t.Run("AppliesEverything", func(t *testing.T) {
		s := seed(t)
		evs := commit(t, s, everything())
		wantRecord(t, s, state.KindAgent, "new", 1, "n")
		wantRecord(t, s, state.KindAgent, "a", 2, "a2")
		wantNotFound(t, s, state.KindAgent, "b")
		wantEntries(t, series(t, s, "history:a", 0, 1000, 0),
			state.Entry{Score: 50, Data: []byte("h0")}, state.Entry{Score: 100, Data: []byte("h1")}, state.Entry{Score: 200, Data: []byte("h2")})
		if c := counters(t, s, "stats:today"); c["calls"] != 6 {
			t.Fatalf("calls = %d, want 6", c["calls"])
		}
		if c := counters(t, s, "stats:new"); c["f"] != -1 {
			t.Fatalf("stats:new f = %d, want -1", c["f"])
		}
		if evs[0].Type != "agent" || string(evs[0].Data) != "e2" || evs[1].Type != "call" || string(evs[1].Data) != "e3" {
			t.Fatalf("Commit events = %+v", evs)
		}
	})
	t.Run("EmptyTx", func(t *testing.T) {
		s := f.New(t)
		evs, err := s.Commit(ctx(t), state.Tx{})
		if err != nil || len(evs) != 0 {
			t.Fatalf("empty Commit = %v, %v", evs, err)
		}
	})
}

func runSeries(t *testing.T, f Factory) {
	s := f.New(t)
	e := func(score int64, data string) state.Entry { return state.Entry{Score: score, Data: []byte(data)} }
	const base = 1763700000000 // Unix milliseconds, as callers use them
	commit(t, s, state.Tx{Appends: []state.Append{{Series: "history:a1", Entries: []state.Entry{
		e(base+30, "d"), e(base+10, "a"), e(base+20, "b1"),
	}}}})
	commit(t, s, state.Tx{Appends: []state.Append{{Series: "history:a1", Entries: []state.Entry{
		e(base+20, "b2"), e(base+20, "b3"), e(base-5, "first"),
	}}}, Events: []state.NewEvent{ev("agent", "x")}})
	commit(t, s, state.Tx{Appends: []state.Append{{Series: "history:a2", Entries: []state.Entry{e(-3, "neg"), e(0, "zero")}}}})

	all := []state.Entry{e(base-5, "first"), e(base+10, "a"), e(base+20, "b1"), e(base+20, "b2"), e(base+20, "b3"), e(base+30, "d")}
	wantEntries(t, series(t, s, "history:a1", 0, base+1000, 0), all...)
	wantEntries(t, series(t, s, "history:a1", base+20, base+20, 0), all[2:5]...)
	wantEntries(t, series(t, s, "history:a1", base+11, base+1000, 2), all[2:4]...)
	wantEntries(t, series(t, s, "history:a1", base, base+25, -1), all[1:5]...)
	wantEntries(t, series(t, s, "history:a1", base+31, base+1000, 0))
	wantEntries(t, series(t, s, "history:a1", base, base-1, 0))
	wantEntries(t, series(t, s, "history:a1", base+30, base+30, 1), all[5])
	wantEntries(t, series(t, s, "history:a2", -10, 10, 0), e(-3, "neg"), e(0, "zero"))
	wantEntries(t, series(t, s, "history:none", 0, base, 0))
}

func runCounters(t *testing.T, f Factory) {
	s := f.New(t)
	commit(t, s, state.Tx{Incrs: []state.Incr{
		{Counter: "stats:2026-11-21", Field: "answered|queue=sales", Delta: 5},
		{Counter: "stats:2026-11-21", Field: "missed|queue=sales", Delta: -3},
		{Counter: "stats:2026-11-22", Field: "answered|queue=sales", Delta: 1},
	}})
	commit(t, s, state.Tx{Incrs: []state.Incr{
		{Counter: "stats:2026-11-21", Field: "answered|queue=sales", Delta: -2},
		{Counter: "stats:2026-11-21", Field: "answered|queue=sales", Delta: 10},
	}})
	c := counters(t, s, "stats:2026-11-21")
	if len(c) != 2 || c["answered|queue=sales"] != 13 || c["missed|queue=sales"] != -3 {
		t.Fatalf("counters = %v, want answered=13 missed=-3", c)
	}
	if c := counters(t, s, "stats:2026-11-22"); len(c) != 1 || c["answered|queue=sales"] != 1 {
		t.Fatalf("other day = %v", c)
	}
	if c := counters(t, s, "stats:none"); len(c) != 0 {
		t.Fatalf("missing counter = %v, want empty", c)
	}
}
