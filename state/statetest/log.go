package statetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/state"
)

func runLog(t *testing.T, f Factory) {
	t.Run("Empty", func(t *testing.T) {
		s := f.New(t)
		last, err := s.Last(ctx(t))
		if err != nil || last != "" {
			t.Fatalf("Last of an empty log = %q, %v; want \"\"", last, err)
		}
		evs, err := s.ReadAfter(ctx(t), "", 10, 0)
		if err != nil || len(evs) != 0 {
			t.Fatalf("ReadAfter on an empty log = %v, %v", evs, err)
		}
	})
	t.Run("OrderAndFields", func(t *testing.T) {
		s := f.New(t)
		before := time.Now()
		scope := state.Scope{Agent: "a1", Queue: "sales", Groups: []string{"sales", "vip"}}
		got := commit(t, s, state.Tx{Events: []state.NewEvent{
			{Type: "agent", Scope: scope, Data: []byte(`{"id":"a1"}`)},
			ev("call", `{"id":"c1"}`),
			ev("stats", `{}`),
		}})
		got = append(got, commit(t, s, state.Tx{Events: []state.NewEvent{ev("queue", `{"id":"q"}`)}})...)
		after := time.Now()
		types := []string{"agent", "call", "stats", "queue"}
		seen := map[string]bool{}
		for i, e := range got {
			if e.Type != types[i] || e.ID == "" || seen[e.ID] {
				t.Fatalf("event %d = %+v (duplicate or empty id?)", i, e)
			}
			seen[e.ID] = true
			// The store clock may be another process's (Redis); allow skew.
			if e.At.Before(before.Add(-5*time.Second)) || e.At.After(after.Add(5*time.Second)) {
				t.Fatalf("event %d At = %v, want about now (%v)", i, e.At, before)
			}
		}
		if !sameScope(got[0].Scope, scope) {
			t.Fatalf("scope = %+v, want %+v", got[0].Scope, scope)
		}
		wantEvents(t, readAll(t, s, "", 0), got)
		last, err := s.Last(ctx(t))
		if err != nil || last != got[3].ID {
			t.Fatalf("Last = %q, %v; want %q", last, err, got[3].ID)
		}
	})
	t.Run("ResumeExactlyOnce", func(t *testing.T) {
		s := f.New(t)
		var all []state.Event
		for i := 0; len(all) < 25; i++ {
			n := i%3 + 1 // Txs of 1, 2 and 3 events
			tx := state.Tx{}
			for j := 0; j < n; j++ {
				tx.Events = append(tx.Events, ev("agent", fmt.Sprintf(`{"n":%d}`, len(all)+j)))
			}
			all = append(all, commit(t, s, tx)...)
		}
		for k := 0; k <= len(all); k++ {
			after := ""
			if k > 0 {
				after = all[k-1].ID
			}
			evs, err := s.ReadAfter(ctx(t), after, 0, 0)
			if err != nil {
				t.Fatalf("ReadAfter(event %d): %v", k, err)
			}
			wantEvents(t, evs, all[k:])
			for _, limit := range []int{1, 4, 7} {
				wantEvents(t, readAll(t, s, after, limit), all[k:])
			}
		}
	})
	t.Run("PositionPastTheEnd", func(t *testing.T) {
		// A position this log has not reached (left over from a log that
		// was lost or reset) means the reader's view is gone: ErrTrimmed.
		longer := f.New(t)
		var far string
		for i := 0; i < 5; i++ {
			far = commit(t, longer, state.Tx{Events: []state.NewEvent{ev("agent", "x")}})[0].ID
		}
		for _, events := range []int{0, 2} {
			s := f.New(t)
			for i := 0; i < events; i++ {
				commit(t, s, state.Tx{Events: []state.NewEvent{ev("agent", "y")}})
			}
			_, err := s.ReadAfter(ctx(t), far, 10, 0)
			wantErr(t, err, state.ErrTrimmed, fmt.Sprintf("ReadAfter(%q) on a log of %d events", far, events))
			_, err = s.ReadAfter(ctx(t), far, 10, time.Second)
			wantErr(t, err, state.ErrTrimmed, fmt.Sprintf("waiting ReadAfter(%q) on a log of %d events", far, events))
		}
	})
	t.Run("BadPosition", func(t *testing.T) {
		s := f.New(t)
		commit(t, s, state.Tx{Events: []state.NewEvent{ev("agent", "x")}})
		for _, pos := range []string{"garbage", "-1", "1.5", "12x", " 1", "1-2-3", "abc-def", "-", "\x00", "💥", "99999999999999999999999999"} {
			_, err := s.ReadAfter(ctx(t), pos, 10, 0)
			wantErr(t, err, state.ErrBadPosition, fmt.Sprintf("ReadAfter(%q)", pos))
			_, err = s.ReadAfter(ctx(t), pos, 10, time.Second)
			wantErr(t, err, state.ErrBadPosition, fmt.Sprintf("waiting ReadAfter(%q)", pos))
		}
	})
}

func runWait(t *testing.T, f Factory) {
	t.Run("WakesOnCommit", func(t *testing.T) {
		for _, fromStart := range []bool{false, true} {
			s := f.New(t)
			after := ""
			if !fromStart {
				after = commit(t, s, state.Tx{Events: []state.NewEvent{ev("agent", "old")}})[0].ID
			}
			type result struct {
				evs []state.Event
				err error
			}
			done := make(chan result, 1)
			c := ctx(t)
			go func() {
				time.Sleep(100 * time.Millisecond)
				evs, err := s.Commit(c, state.Tx{Events: []state.NewEvent{ev("call", "new")}})
				done <- result{evs, err}
			}()
			evs, err := s.ReadAfter(c, after, 10, 20*time.Second)
			committed := <-done
			if committed.err != nil {
				t.Fatalf("Commit from another goroutine: %v", committed.err)
			}
			if err != nil {
				t.Fatalf("waiting ReadAfter: %v", err)
			}
			wantEvents(t, evs, committed.evs)
		}
	})
	t.Run("TimesOutEmpty", func(t *testing.T) {
		s := f.New(t)
		last := commit(t, s, state.Tx{Events: []state.NewEvent{ev("agent", "x")}})[0].ID
		for _, after := range []string{last, ""} {
			if after == "" {
				s = f.New(t)
			}
			start := time.Now()
			evs, err := s.ReadAfter(ctx(t), after, 10, 200*time.Millisecond)
			if err != nil || len(evs) != 0 {
				t.Fatalf("ReadAfter(%q) with nothing new = %v, %v; want empty", after, evs, err)
			}
			if waited := time.Since(start); waited < 150*time.Millisecond {
				t.Fatalf("ReadAfter returned after %v, before its 200ms wait", waited)
			}
		}
	})
	t.Run("ContextCancel", func(t *testing.T) {
		s := f.New(t)
		last := commit(t, s, state.Tx{Events: []state.NewEvent{ev("agent", "x")}})[0].ID
		c, cancel := context.WithCancel(context.Background())
		time.AfterFunc(100*time.Millisecond, cancel)
		start := time.Now()
		_, err := s.ReadAfter(c, last, 10, time.Minute)
		wantErr(t, err, context.Canceled, "ReadAfter after cancel")
		if waited := time.Since(start); waited > 10*time.Second {
			t.Fatalf("ReadAfter took %v to notice the cancel", waited)
		}
		// The store still works after an abandoned wait.
		commit(t, s, state.Tx{Events: []state.NewEvent{ev("agent", "y")}})
		if evs := readAll(t, s, last, 0); len(evs) != 1 {
			t.Fatalf("after cancel, read %d events, want 1", len(evs))
		}
	})
	t.Run("ContextDeadline", func(t *testing.T) {
		s := f.New(t)
		c, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
		defer cancel()
		_, err := s.ReadAfter(c, "", 10, time.Minute)
		wantErr(t, err, context.DeadlineExceeded, "ReadAfter past the deadline")
	})
}

func runTrim(t *testing.T, f Factory) {
	if f.NewRetaining == nil {
		t.Skip("backend offers no way to set the retention")
	}
	const retention = 5
	s := f.NewRetaining(t, retention)
	var all []state.Event
	for i := 0; i < 4*retention; i++ {
		all = append(all, commit(t, s, state.Tx{Events: []state.NewEvent{ev("agent", fmt.Sprint(i))}})...)
	}
	retained := readAll(t, s, "", 0)
	if len(retained) < retention || len(retained) >= len(all) {
		t.Fatalf("retained %d of %d events, want at least %d and fewer than all", len(retained), len(all), retention)
	}
	oldest := len(all) - len(retained) // index of the oldest retained event
	wantEvents(t, retained, all[oldest:])
	// The event just before the oldest retained one is a fine position:
	// its reader has missed nothing.
	wantEvents(t, readAll(t, s, all[oldest-1].ID, 2), all[oldest:])
	for _, k := range []int{oldest - 2, 0} {
		_, err := s.ReadAfter(ctx(t), all[k].ID, 10, 0)
		wantErr(t, err, state.ErrTrimmed, fmt.Sprintf("ReadAfter(event %d, oldest retained %d)", k, oldest))
		_, err = s.ReadAfter(ctx(t), all[k].ID, 10, time.Second)
		wantErr(t, err, state.ErrTrimmed, fmt.Sprintf("waiting ReadAfter(event %d)", k))
	}
}

func runConcurrency(t *testing.T, f Factory) {
	s := f.New(t)
	const workers, perWorker = 8, 25
	errs := make(chan error, workers)
	c := ctx(t)
	for w := 0; w < workers; w++ {
		go func() { errs <- casLoop(c, s, w, perWorker) }()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	const total = workers * perWorker
	r := mustGet(t, s, state.KindMeta, "counter")
	if string(r.Data) != fmt.Sprint(total) || r.Version != total {
		t.Fatalf("record = v%d %q, want v%d %d: an update was lost", r.Version, r.Data, total, total)
	}
	if c := counters(t, s, "stats"); c["n"] != total {
		t.Fatalf("counter = %d, want %d", c["n"], total)
	}
	evs := readAll(t, s, "", 0)
	if len(evs) != total {
		t.Fatalf("log has %d events, want %d", len(evs), total)
	}
	for i, e := range evs { // each commit saw the value before it
		if string(e.Data) != fmt.Sprint(i+1) {
			t.Fatalf("event %d = %q, want %d", i, e.Data, i+1)
		}
	}
}

// casLoop increments a shared record n times by compare-and-set, retrying
// on ErrConflict, with a counter and an event in the same Tx.
func casLoop(c context.Context, s state.StoreLog, worker, n int) error {
	for i := 0; i < n; {
		var cur int
		version := state.MustNotExist
		r, err := s.Get(c, state.KindMeta, "counter")
		switch {
		case err == nil:
			version = r.Version
			if _, err := fmt.Sscan(string(r.Data), &cur); err != nil {
				return fmt.Errorf("worker %d: bad record %q", worker, r.Data)
			}
		case !errors.Is(err, state.ErrNotFound):
			return fmt.Errorf("worker %d: Get: %w", worker, err)
		}
		next := fmt.Sprint(cur + 1)
		_, err = s.Commit(c, state.Tx{
			Puts:   []state.Put{{Kind: state.KindMeta, ID: "counter", Data: []byte(next), IfVersion: version}},
			Incrs:  []state.Incr{{Counter: "stats", Field: "n", Delta: 1}},
			Events: []state.NewEvent{{Type: "stats", Data: []byte(next)}},
		})
		switch {
		case err == nil:
			i++
		case !errors.Is(err, state.ErrConflict):
			return fmt.Errorf("worker %d: Commit: %w", worker, err)
		}
	}
	return nil
}

func runClosed(t *testing.T, f Factory) {
	s := f.New(t)
	last := commit(t, s, state.Tx{Events: []state.NewEvent{ev("agent", "x")}})[0].ID
	waiting := make(chan error, 1)
	c := ctx(t)
	go func() {
		_, err := s.ReadAfter(c, last, 10, time.Minute)
		waiting <- err
	}()
	time.Sleep(100 * time.Millisecond) // let the reader start waiting
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	select {
	case err := <-waiting:
		wantErr(t, err, state.ErrClosed, "ReadAfter waiting across Close")
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not end a waiting ReadAfter")
	}
	_, err := s.Get(ctx(t), state.KindAgent, "a")
	wantErr(t, err, state.ErrClosed, "Get after Close")
	_, err = s.Commit(ctx(t), state.Tx{Events: []state.NewEvent{ev("agent", "y")}})
	wantErr(t, err, state.ErrClosed, "Commit after Close")
	_, err = s.ReadAfter(ctx(t), "", 10, 0)
	wantErr(t, err, state.ErrClosed, "ReadAfter after Close")
	wantErr(t, s.Ping(ctx(t)), state.ErrClosed, "Ping after Close")
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
