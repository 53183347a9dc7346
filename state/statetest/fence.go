package statetest

import (
	"errors"
	"testing"
	"time"

	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/state"
)

// runFence: a Tx fenced by a lease token commits while that token is the
// lease's newest, and is refused whole (ErrFenced, nothing written) once a
// newer owner has been granted the lease — even after that owner released
// it. An expired lease nobody took does not fence its last owner.
func runFence(t *testing.T, f Factory) {
	s := f.New(t)
	b, ok := s.(lease.Backend)
	if !ok {
		t.Fatalf("%T does not implement lease.Backend: fenced commits cannot be checked", s)
	}
	ga, err := b.TryAcquire(ctx(t), "media:x", "A", 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	fa := state.Fence{Lease: "media:x", Token: ga.Token}
	commit(t, s, state.Tx{Fence: fa, Puts: []state.Put{put(state.KindCall, "c1", "A1", state.MustNotExist)}, Events: []state.NewEvent{ev("call", "A1")}})

	// Expired, nobody took it: A's writes still go through.
	time.Sleep(200 * time.Millisecond)
	commit(t, s, state.Tx{Fence: fa, Puts: []state.Put{put(state.KindCall, "c1", "A2", 1)}})

	gb, err := b.TryAcquire(ctx(t), "media:x", "B", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	last, _ := s.Last(ctx(t))
	stale := state.Tx{
		Fence:     fa,
		Puts:      []state.Put{put(state.KindCall, "c1", "stale", state.AnyVersion)},
		Deletes:   []state.Delete{{Kind: state.KindAgent, ID: "x", IfVersion: state.AnyVersion}},
		Appends:   []state.Append{{Series: "history:x", Entries: []state.Entry{{Score: 1, Data: []byte("stale")}}}},
		Incrs:     []state.Incr{{Counter: "stats:x", Field: "f", Delta: 1}},
		Schedules: []state.Schedule{{Index: "presence", Member: "x", At: 1}},
		Events:    []state.NewEvent{ev("call", "stale")},
	}
	_, err = s.Commit(ctx(t), stale)
	wantErr(t, err, state.ErrFenced, "stale owner's commit")
	if errors.Is(err, state.ErrConflict) {
		t.Fatalf("fenced commit also reports a version conflict: %v", err)
	}
	wantRecord(t, s, state.KindCall, "c1", 2, "A2")
	if es := series(t, s, "history:x", 0, 10, 0); len(es) != 0 {
		t.Fatalf("fenced commit appended %v", es)
	}
	if c, _ := s.Counters(ctx(t), "stats:x"); len(c) != 0 {
		t.Fatalf("fenced commit counted %v", c)
	}
	if d, _ := s.Due(ctx(t), "presence", 10, 0); len(d) != 0 {
		t.Fatalf("fenced commit scheduled %v", d)
	}
	if now, _ := s.Last(ctx(t)); now != last {
		t.Fatalf("fenced commit appended events: last %q, was %q", now, last)
	}
	// An empty fenced Tx is a cheap "am I still the owner?".
	_, err = s.Commit(ctx(t), state.Tx{Fence: fa})
	wantErr(t, err, state.ErrFenced, "stale owner's empty commit")

	fb := state.Fence{Lease: "media:x", Token: gb.Token}
	commit(t, s, state.Tx{Fence: fb, Puts: []state.Put{put(state.KindCall, "c1", "B1", 2)}})
	// B hands over; A is still fenced (a newer owner existed), B too once
	// C holds it; an unfenced Tx is never affected.
	if err := b.Release(ctx(t), "media:x", "B", gb.Token); err != nil {
		t.Fatal(err)
	}
	_, err = s.Commit(ctx(t), state.Tx{Fence: fa, Puts: []state.Put{put(state.KindCall, "c1", "stale", state.AnyVersion)}})
	wantErr(t, err, state.ErrFenced, "first owner after the second released")
	if _, err := b.TryAcquire(ctx(t), "media:x", "C", time.Minute); err != nil {
		t.Fatal(err)
	}
	_, err = s.Commit(ctx(t), state.Tx{Fence: fb, Puts: []state.Put{put(state.KindCall, "c1", "stale", state.AnyVersion)}})
	wantErr(t, err, state.ErrFenced, "second owner after the third took over")
	commit(t, s, state.Tx{Puts: []state.Put{put(state.KindCall, "c1", "free", 3)}})
	// A fence on a lease never granted refuses too (no owner issued it).
	_, err = s.Commit(ctx(t), state.Tx{Fence: state.Fence{Lease: "never", Token: 1}, Puts: []state.Put{put(state.KindCall, "c9", "x", state.AnyVersion)}})
	wantErr(t, err, state.ErrFenced, "fence of a never granted lease")
	// A fence with a version conflict: the fence is checked, the
	// conflict reported when the fence admits it.
	gc, _ := b.TryAcquire(ctx(t), "media:x", "C", time.Minute)
	_, err = s.Commit(ctx(t), state.Tx{Fence: state.Fence{Lease: "media:x", Token: gc.Token}, Puts: []state.Put{put(state.KindCall, "c1", "x", 1)}})
	wantErr(t, err, state.ErrConflict, "current owner's stale version")
}

// runDue: the due index keeps one time per member, Due returns what is
// due by then in time order (members break ties), a later schedule moves a
// member, Remove takes it out, and indexes are independent.
func runDue(t *testing.T, f Factory) {
	s := f.New(t)
	due := func(index string, until int64, limit int) []state.Due {
		t.Helper()
		d, err := s.Due(ctx(t), index, until, limit)
		if err != nil {
			t.Fatalf("Due(%s): %v", index, err)
		}
		return d
	}
	want := func(what string, got []state.Due, want ...state.Due) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: Due = %v, want %v", what, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: Due = %v, want %v", what, got, want)
			}
		}
	}
	want("empty index", due("presence", 1<<60, 0))
	commit(t, s, state.Tx{Schedules: []state.Schedule{
		{Index: "presence", Member: "b", At: 2000},
		{Index: "presence", Member: "a", At: 2000},
		{Index: "presence", Member: "c", At: 1000},
		{Index: "presence", Member: "d", At: 5000},
		{Index: "other", Member: "a", At: 1},
	}})
	want("by 2000", due("presence", 2000, 0), state.Due{Member: "c", At: 1000}, state.Due{Member: "a", At: 2000}, state.Due{Member: "b", At: 2000})
	want("limit", due("presence", 1<<60, 2), state.Due{Member: "c", At: 1000}, state.Due{Member: "a", At: 2000})
	want("nothing due yet", due("presence", 999, 0))
	want("other index", due("other", 1<<60, 0), state.Due{Member: "a", At: 1})
	// Move c later, remove a, remove something never scheduled: one Tx,
	// with a record change, as presence writes it.
	commit(t, s, state.Tx{
		Puts: []state.Put{put(state.KindAgent, "c", "{}", state.MustNotExist)},
		Schedules: []state.Schedule{
			{Index: "presence", Member: "c", At: 9000},
			{Index: "presence", Member: "a", Remove: true},
			{Index: "presence", Member: "zz", Remove: true},
		},
	})
	want("after moves", due("presence", 1<<60, 0), state.Due{Member: "b", At: 2000}, state.Due{Member: "d", At: 5000}, state.Due{Member: "c", At: 9000})
	// A failed Tx schedules nothing.
	_, err := s.Commit(ctx(t), state.Tx{
		Puts:      []state.Put{put(state.KindAgent, "c", "{}", state.MustNotExist)},
		Schedules: []state.Schedule{{Index: "presence", Member: "e", At: 1}},
	})
	wantErr(t, err, state.ErrConflict, "conflicting Tx")
	want("after a failed Tx", due("presence", 3000, 0), state.Due{Member: "b", At: 2000})
	// Empty index or member names are refused.
	for _, sc := range []state.Schedule{{Index: "", Member: "a", At: 1}, {Index: "presence", Member: "", At: 1}} {
		if _, err := s.Commit(ctx(t), state.Tx{Schedules: []state.Schedule{sc}}); err == nil || errors.Is(err, state.ErrConflict) {
			t.Fatalf("schedule %+v: %v, want an invalid Tx error", sc, err)
		}
	}
}
