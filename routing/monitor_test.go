package routing_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// hookStore is the memory store with a hook run before every Commit; the
// hook may refuse the commit, as a store that fails a write would.
type hookStore struct {
	state.StoreLog
	mu     sync.Mutex
	before func(tx state.Tx) error
}

func (s *hookStore) Commit(ctx context.Context, tx state.Tx) ([]state.Event, error) {
	s.mu.Lock()
	hook := s.before
	s.mu.Unlock()
	if hook != nil {
		if err := hook(tx); err != nil {
			return nil, err
		}
	}
	return s.StoreLog.Commit(ctx, tx)
}

func (s *hookStore) set(h func(tx state.Tx) error) {
	s.mu.Lock()
	s.before = h
	s.mu.Unlock()
}

// storedMonitor is the monitor a commit writes on a call, if any.
func storedMonitor(tx state.Tx) (*routing.Monitor, bool) {
	for _, p := range tx.Puts {
		if p.Kind != state.KindCall {
			continue
		}
		var c routing.Call
		if json.Unmarshal(p.Data, &c) == nil {
			return c.Monitor, true
		}
	}
	return nil, false
}

var errStoreDown = errors.New("store refused the write")

// supervisedFloorOn is supervisedFloor over a hookStore.
func supervisedFloorOn(t *testing.T) (*testFloor, *hookStore, string) {
	hs := &hookStore{StoreLog: store.NewMemory()}
	f := newFloorOn(t, hs, nil, time.Time{})
	f.addAgent("sup1", presence.RoleSupervisor)
	f.setStatus("sup1", presence.StatusUnavailable)
	f.addGroup("sales", "sup1")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addAgent("a2", presence.RoleAgent, "sales")
	f.addQueue("main", routing.LongestIdle, 0, []string{"sales"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.answer(f.legOf("a1"))
	return f, hs, id
}

// The monitor is reserved in the store before the media path rings the
// supervisor, and its leg recorded after (the offer path's order).
func TestMonitorReservedBeforeRinging(t *testing.T) {
	f, _, id := supervisedFloorOn(t)
	var atRing routing.CallView
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "monitor" {
			atRing = f.call(id)
		}
		return nil
	}
	m, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, "")
	if err != nil {
		t.Fatal(err)
	}
	if atRing.Monitor == nil || atRing.Monitor.ID != m.ID {
		t.Fatalf("when the supervisor was rung the call's monitor was %+v; want the reservation %s", atRing.Monitor, m.ID)
	}
	// A second supervisor action while it rings is refused by the
	// reservation, not by a leg that already exists.
	if _, err := f.eng.StartMonitor(f.ctx, f.admin, id, media.MonitorWhisper, ""); !errors.Is(err, presence.ErrConflict) {
		t.Fatalf("second monitor: %v", err)
	}
}

// A record that does not commit leaves no live supervisor leg: the leg
// just rung is hung up, and the reservation stays refusable by restart.
func TestMonitorLegHungUpWhenRecordFails(t *testing.T) {
	f, hs, id := supervisedFloorOn(t)
	hs.set(func(tx state.Tx) error {
		if m, ok := storedMonitor(tx); ok && m != nil && m.Leg != "" {
			return errStoreDown
		}
		return nil
	})
	_, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, "")
	if !errors.Is(err, errStoreDown) {
		t.Fatalf("StartMonitor = %v, want the store's error", err)
	}
	mons := f.media.Ops("monitor")
	if len(mons) != 1 {
		t.Fatalf("monitor commands = %+v", mons)
	}
	if !f.media.HungUp(mons[0].Result) {
		t.Fatalf("the supervisor's leg %s was left up with no record; commands %+v", mons[0].Result, f.media.Commands())
	}
	// A restart clears the reservation left behind, with a reason.
	hs.set(nil)
	f.restart()
	if c := f.call(id); c.Monitor != nil {
		t.Fatalf("reservation survived a restart: %+v", c.Monitor)
	}
	evs := f.events(routing.EventMonitor)
	if last := evs[len(evs)-1]; last["ended"] != true || !strings.Contains(last["reason"].(string), "restarted") {
		t.Fatalf("final monitor event = %v", last)
	}
	if _, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, ""); err != nil {
		t.Fatalf("monitor after the restart: %v", err)
	}
}

// A ring the media path refuses undoes the reservation: no monitor, an
// ended event saying why, and the supervisor free to monitor again.
func TestMonitorRefusedUndoesReservation(t *testing.T) {
	f, _, id := supervisedFloorOn(t)
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "monitor" {
			return media.ErrUnreachable
		}
		return nil
	}
	if _, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, ""); !errors.Is(err, media.ErrUnreachable) {
		t.Fatalf("StartMonitor = %v", err)
	}
	if c := f.call(id); c.Monitor != nil {
		t.Fatalf("refused monitor still on the call: %+v", c.Monitor)
	}
	evs := f.events(routing.EventMonitor)
	if last := evs[len(evs)-1]; last["ended"] != true || !strings.Contains(last["reason"].(string), "could not ring sup1") {
		t.Fatalf("final monitor event = %v", last)
	}
	f.media.Fail = nil
	if _, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, ""); err != nil {
		t.Fatalf("monitor after an undone reservation: %v", err)
	}
}

// Pause, resume and barge send their command, then record it; a record
// that does not commit undoes the command.
func TestMonitorCommandUndoneWhenRecordFails(t *testing.T) {
	f, hs, id := supervisedFloorOn(t)
	sup1 := f.actor("sup1")
	m, err := f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorListen, "")
	if err != nil {
		t.Fatal(err)
	}
	leg := f.media.Ops("monitor")[0].Result
	hs.set(func(tx state.Tx) error {
		if mon, ok := storedMonitor(tx); ok && mon != nil && (mon.Paused || mon.Mode == media.MonitorBarge) {
			return errStoreDown
		}
		return nil
	})
	if _, err := f.eng.PauseMonitor(f.ctx, sup1, m.ID); !errors.Is(err, errStoreDown) {
		t.Fatalf("pause = %v", err)
	}
	mu := f.media.Ops("mute")
	if len(mu) != 2 || mu[0].Leg != leg || !mu[0].Muted || mu[1].Muted {
		t.Fatalf("mute commands = %+v, want mute then unmute", mu)
	}
	if _, err := f.eng.BargeMonitor(f.ctx, sup1, m.ID); !errors.Is(err, errStoreDown) {
		t.Fatalf("barge = %v", err)
	}
	sm := f.media.Ops("set_monitor_mode")
	if len(sm) != 2 || sm[0].Mode != media.MonitorBarge || sm[1].Mode != media.MonitorListen {
		t.Fatalf("mode commands = %+v, want barge then back to listen", sm)
	}
	if c := f.call(id); c.Monitor.Paused || c.Monitor.Mode != media.MonitorListen {
		t.Fatalf("monitor = %+v", c.Monitor)
	}
	// A refused command records nothing.
	hs.set(nil)
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "mute" {
			return media.ErrMediaUnavailable
		}
		return nil
	}
	if _, err := f.eng.PauseMonitor(f.ctx, sup1, m.ID); !errors.Is(err, media.ErrMediaUnavailable) {
		t.Fatalf("pause = %v", err)
	}
	if c := f.call(id); c.Monitor.Paused {
		t.Fatal("refused pause recorded")
	}
}

// The monitor that follows an in-team transfer is re-joined in the same
// order: reserved, rung, recorded; a record that fails hangs the leg up.
func TestRejoinMonitorRecordFails(t *testing.T) {
	f, hs, id := supervisedFloorOn(t)
	sup1 := f.actor("sup1")
	if _, err := f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorListen, ""); err != nil {
		t.Fatal(err)
	}
	f.setStatus("a2", presence.StatusAvailable)
	if _, err := f.eng.Transfer(f.ctx, sup1, id, "a2"); err != nil {
		t.Fatal(err)
	}
	var atRing routing.CallView
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "monitor" {
			atRing = f.call(id)
		}
		return nil
	}
	hs.set(func(tx state.Tx) error {
		if m, ok := storedMonitor(tx); ok && m != nil && m.Leg != "" {
			return errStoreDown
		}
		return nil
	})
	f.answer(f.legOf("a2"))
	mons := f.media.Ops("monitor")
	if len(mons) != 2 {
		t.Fatalf("monitor commands = %+v", mons)
	}
	if atRing.Monitor == nil || *atRing.Agent != "a2" {
		t.Fatalf("call when the supervisor was rung again = %+v", atRing)
	}
	if !f.media.HungUp(mons[1].Result) {
		t.Fatal("re-joined supervisor leg left up with no record")
	}
}

// A supervisor monitors one call at a time: a second listen, whisper or
// barge is a 409 naming the call they monitor; ending it frees them.
func TestSupervisorMonitorsOneCallAtATime(t *testing.T) {
	f, _, x := supervisedFloorOn(t)
	sup1 := f.actor("sup1")
	f.setStatus("a2", presence.StatusAvailable)
	y, _ := f.arrive("+84901000002", "+842800")
	f.answer(f.legOf("a2"))
	f.wantCall(y, routing.StateAnswered, "a2")
	m, err := f.eng.StartMonitor(f.ctx, sup1, x, media.MonitorListen, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []media.MonitorMode{media.MonitorListen, media.MonitorWhisper, media.MonitorBarge} {
		_, err := f.eng.StartMonitor(f.ctx, sup1, y, mode, "")
		wantConflict(t, err, "you already monitor call "+x)
	}
	if n := len(f.media.Ops("monitor")); n != 1 {
		t.Fatalf("refused monitors rang the supervisor: %d monitor commands", n)
	}
	if c := f.call(y); c.Monitor != nil {
		t.Fatalf("refused monitor recorded on %s: %+v", y, c.Monitor)
	}
	if _, err := f.eng.EndMonitor(f.ctx, sup1, m.ID); err != nil {
		t.Fatal(err)
	}
	m2, err := f.eng.StartMonitor(f.ctx, sup1, y, media.MonitorWhisper, "")
	if err != nil {
		t.Fatalf("monitor after ending the first: %v", err)
	}
	// The call ending ends the monitor, and frees the supervisor too.
	f.ended(f.legOf("a2"), media.CauseNormal)
	f.wantGone(y)
	if _, err := f.eng.StartMonitor(f.ctx, sup1, x, media.MonitorListen, ""); err != nil {
		t.Fatalf("monitor after %s (monitor %s) ended: %v", y, m2.ID, err)
	}
}

// Two monitors asked at once by one supervisor on two calls: exactly one
// commits.
func TestSupervisorMonitorsOneCallConcurrently(t *testing.T) {
	f, _, x := supervisedFloorOn(t)
	sup1 := f.actor("sup1")
	f.setStatus("a2", presence.StatusAvailable)
	y, _ := f.arrive("+84901000002", "+842800")
	f.answer(f.legOf("a2"))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, id := range []string{x, y} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.eng.StartMonitor(f.ctx, sup1, id, media.MonitorListen, "")
		}()
	}
	wg.Wait()
	f.flush()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
		} else if !errors.Is(err, presence.ErrConflict) {
			t.Fatalf("StartMonitor: %v", err)
		}
	}
	monitored := 0
	for _, id := range []string{x, y} {
		if f.call(id).Monitor != nil {
			monitored++
		}
	}
	if ok != 1 || monitored != 1 {
		t.Fatalf("%d monitors started, %d calls monitored; want exactly one (errors %v)", ok, monitored, errs)
	}
	if up := len(f.media.Ops("monitor")) - len(f.media.Ops("hangup")); up > 1 {
		t.Fatalf("%d supervisor legs left up", up)
	}
}

// A one-call-at-a-time record left by a replica that crashed mid-change
// (its monitor gone) does not lock the supervisor out.
func TestStaleMonitorRecordIsTakenOver(t *testing.T) {
	f, _, id := supervisedFloorOn(t)
	if _, err := f.st.Commit(f.ctx, state.Tx{Puts: []state.Put{{Kind: state.KindMeta, ID: "monitoring:sup1",
		Data: []byte(`{"monitor":"m-gone","call":"c-gone"}`), IfVersion: state.MustNotExist}}}); err != nil {
		t.Fatal(err)
	}
	m, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, "")
	if err != nil {
		t.Fatalf("monitor with a stale record: %v", err)
	}
	r, err := f.st.Get(f.ctx, state.KindMeta, "monitoring:sup1")
	if err != nil || !strings.Contains(string(r.Data), m.ID) {
		t.Fatalf("record = %s, %v; want it to name %s", r.Data, err, m.ID)
	}
}
