package presence

import (
	"errors"
	"testing"
	"time"
)

var allSystem = []SystemStatus{SysAvailable, SysRinging, SysTalking, SysAfterCallWork, SysRONA}

// TestSystemTransitionTable checks every (from, to) pair against the
// table written out here independently of systemTransitions, so an
// accidental edit of either shows up.
func TestSystemTransitionTable(t *testing.T) {
	allowed := map[[2]SystemStatus]bool{
		{SysAvailable, SysRinging}:       true,
		{SysAvailable, SysTalking}:       true,
		{SysRinging, SysTalking}:         true,
		{SysRinging, SysAvailable}:       true,
		{SysRinging, SysRONA}:            true,
		{SysTalking, SysAfterCallWork}:   true,
		{SysTalking, SysAvailable}:       true,
		{SysAfterCallWork, SysAvailable}: true,
		{SysAfterCallWork, SysRinging}:   true,
		{SysRONA, SysAvailable}:          true,
	}
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for _, from := range allSystem {
		for _, to := range allSystem {
			want := allowed[[2]SystemStatus{from, to}]
			if got := CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			a := &Agent{ID: "a1", SystemStatus: from, SystemStatusSince: now.Add(-time.Minute)}
			row, err := ApplySystemStatus(a, to, nil, now)
			if want {
				if err != nil {
					t.Errorf("%s → %s refused: %v", from, to, err)
					continue
				}
				if a.SystemStatus != to || !a.SystemStatusSince.Equal(now) {
					t.Errorf("%s → %s: agent now %s since %v", from, to, a.SystemStatus, a.SystemStatusSince)
				}
				if row.Field != FieldSystemStatus || row.From != string(from) || row.To != string(to) || row.By != BySystem {
					t.Errorf("%s → %s: history row %+v", from, to, row)
				}
			} else {
				if !errors.Is(err, ErrConflict) {
					t.Errorf("%s → %s: err = %v, want ErrConflict", from, to, err)
				}
				if a.SystemStatus != from {
					t.Errorf("%s → %s refused but status changed to %s", from, to, a.SystemStatus)
				}
			}
		}
	}
	if _, err := ApplySystemStatus(&Agent{SystemStatus: SysAvailable}, "on_fire", nil, now); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown system status: err = %v, want ErrInvalid", err)
	}
}

// TestNotAvailableRunningTotal is DESIGN.md's example: 10 min unavailable
// then 20 min lunch_break shows 20:00 / 30:00; choosing available resets.
func TestNotAvailableRunningTotal(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	a := &Agent{ID: "a1", CallStatus: StatusAvailable, StatusSince: t0}
	rows := ApplyCallStatus(a, StatusUnavailable, t0, "a1")
	rows = append(rows, ApplyCallStatus(a, StatusLunchBreak, t0.Add(10*time.Minute), "a1")...)
	now := t0.Add(30 * time.Minute)
	if got := a.StatusSeconds(now); got != 20*60 {
		t.Errorf("status seconds = %d, want 1200 (20:00)", got)
	}
	if got := a.IdleTotalSeconds(now); got != 30*60 {
		t.Errorf("idle total = %d, want 1800 (30:00)", got)
	}
	want := []HistoryRow{
		{At: t0, Field: FieldCallStatus, From: StatusAvailable, To: StatusUnavailable, By: "a1"},
		{At: t0.Add(10 * time.Minute), Field: FieldCallStatus, From: StatusUnavailable, To: StatusLunchBreak, By: "a1"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows = %+v", rows)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
	ApplyCallStatus(a, StatusAvailable, now, "a1")
	if got := a.IdleTotalSeconds(now.Add(time.Hour)); got != 0 {
		t.Errorf("idle total while available = %d, want 0", got)
	}
	// A new not-available run starts from zero.
	ApplyCallStatus(a, StatusShortBreak, now.Add(time.Hour), "a1")
	if got := a.IdleTotalSeconds(now.Add(time.Hour + 5*time.Minute)); got != 5*60 {
		t.Errorf("new run total = %d, want 300", got)
	}
	// Same status again: no row, timer untouched.
	if rows := ApplyCallStatus(a, StatusShortBreak, now.Add(2*time.Hour), "a1"); len(rows) != 0 {
		t.Errorf("no-op change produced rows %+v", rows)
	}
	if got := a.StatusSeconds(now.Add(2 * time.Hour)); got != 60*60 {
		t.Errorf("status seconds after no-op = %d, want 3600", got)
	}
}

// TestChoosingStatusClearsRONA: the agent stays in rona until they pick a
// status; picking any status (even the same one) releases them and
// restarts the status timer.
func TestChoosingStatusClearsRONA(t *testing.T) {
	now := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	a := &Agent{ID: "a1", CallStatus: StatusAvailable, SystemStatus: SysRONA, StatusSince: now.Add(-time.Hour)}
	if a.Routable() {
		t.Fatal("agent in rona is routable")
	}
	rows := ApplyCallStatus(a, StatusAvailable, now, "a1")
	if a.SystemStatus != SysAvailable || !a.Routable() {
		t.Fatalf("after choosing available: system %s routable %v", a.SystemStatus, a.Routable())
	}
	if len(rows) != 2 || rows[0].Field != FieldSystemStatus || rows[0].From != "rona" || rows[0].To != "available" || rows[0].By != "a1" ||
		rows[1].Field != FieldCallStatus || rows[1].From != "available" || rows[1].To != "available" {
		t.Errorf("rows = %+v", rows)
	}
	if !a.StatusSince.Equal(now) {
		t.Errorf("status_since = %v, want %v", a.StatusSince, now)
	}
}

func TestActorScoping(t *testing.T) {
	sales := &Agent{ID: "a1", Groups: []string{"sales"}}
	support := &Agent{ID: "a5", Groups: []string{"support"}}
	cases := []struct {
		name        string
		actor       Actor
		target      *Agent
		manage, see bool
	}{
		{"admin any", Actor{ID: "admin", Role: RoleAdmin}, support, true, true},
		{"self", Actor{ID: "a1", Role: RoleAgent, Groups: []string{"sales"}}, sales, true, true},
		{"agent same group", Actor{ID: "a2", Role: RoleAgent, Groups: []string{"sales"}}, sales, false, true},
		{"agent other group", Actor{ID: "a2", Role: RoleAgent, Groups: []string{"sales"}}, support, false, false},
		{"supervisor own group", Actor{ID: "sup-sales", Role: RoleSupervisor, Supervises: []string{"sales"}}, sales, true, true},
		{"supervisor other group", Actor{ID: "sup-sales", Role: RoleSupervisor, Supervises: []string{"sales"}}, support, false, false},
		{"supervisor role without groups", Actor{ID: "x", Role: RoleSupervisor}, sales, false, false},
	}
	for _, c := range cases {
		if got := c.actor.CanManage(c.target); got != c.manage {
			t.Errorf("%s: CanManage = %v, want %v", c.name, got, c.manage)
		}
		if got := c.actor.CanSee(c.target); got != c.see {
			t.Errorf("%s: CanSee = %v, want %v", c.name, got, c.see)
		}
	}
}

func TestValidE164(t *testing.T) {
	for s, want := range map[string]bool{
		"+842873000001": true, "+84901000011": true, "+14155552671": true,
		"842873000001": false, "+84 28 7300 0001": false, "+1": false, "": false,
		"+999999999999": false, "+8428730000011234": false, "tel:+842873000001": false,
	} {
		if got := ValidE164(s); got != want {
			t.Errorf("ValidE164(%q) = %v, want %v", s, got, want)
		}
	}
}
