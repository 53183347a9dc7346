package presence_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// clock is a settable fake clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock        { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

var t0 = time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)

var (
	admin    = presence.Actor{ID: "admin", Role: presence.RoleAdmin}
	supSales = presence.Actor{ID: "sup-sales", Role: presence.RoleSupervisor, Groups: []string{"sales"}, Supervises: []string{"sales"}}
	supSupp  = presence.Actor{ID: "sup-support", Role: presence.RoleSupervisor, Groups: []string{"support"}, Supervises: []string{"support"}}
	agentA1  = presence.Actor{ID: "a1", Role: presence.RoleAgent, Groups: []string{"sales"}}
)

func ptr[T any](v T) *T { return &v }

// floor builds a service over a fresh memory store with two groups, their
// supervisors and agents a1 (sales) and a5 (support).
func floor(t *testing.T, opts ...presence.Option) (*presence.Service, *clock, state.StoreLog) {
	t.Helper()
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	clk := newClock(t0)
	svc := presence.NewService(st, append([]presence.Option{presence.WithClock(clk.Now), presence.WithHeartbeatTTL(time.Minute)}, opts...)...)
	ctx := context.Background()
	for _, g := range []string{"sales", "support"} {
		if _, err := svc.PutGroup(ctx, admin, g, true, presence.GroupPatch{Name: ptr(g)}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(id, group string, role presence.Role) {
		_, err := svc.CreateAgent(ctx, admin, presence.AgentInput{
			ID: ptr(id), Name: ptr("Agent " + id), Email: ptr(id + "@example.com"), Phone: ptr("+84901000011"),
			Role: ptr(role), Groups: ptr([]string{group}), Distribution: ptr(presence.DistApp),
		})
		if err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
	}
	mk("sup-sales", "sales", presence.RoleSupervisor)
	mk("sup-support", "support", presence.RoleSupervisor)
	mk("a1", "sales", presence.RoleAgent)
	mk("a5", "support", presence.RoleAgent)
	if _, err := svc.CreateCallStatus(ctx, admin, presence.CallStatusDef{ID: "training", Name: "Training"}); err != nil {
		t.Fatal(err)
	}
	return svc, clk, st
}

func history(t *testing.T, svc *presence.Service, id string) []presence.HistoryRow {
	t.Helper()
	rows, err := svc.History(context.Background(), admin, id, time.Time{}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestSetStatusTimersAndHistory(t *testing.T) {
	svc, clk, _ := floor(t)
	ctx := context.Background()
	if _, err := svc.SetStatus(ctx, agentA1, "a1", ptr("available"), nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	if _, err := svc.SetStatus(ctx, agentA1, "a1", ptr("unavailable"), nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute)
	if _, err := svc.SetStatus(ctx, supSales, "a1", ptr("training"), ptr("available")); err != nil {
		t.Fatal(err)
	}
	clk.Advance(20 * time.Minute)
	a, err := svc.Agent(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	v := a.View(clk.Now(), time.UTC)
	if v.CallStatus != "training" || v.StatusSeconds != 1200 || v.IdleTotalSeconds != 1800 || v.ChatStatus != "available" {
		t.Errorf("view = %+v, want training 1200 s / 1800 s total, chat available", v)
	}
	rows := history(t, svc, "a1")
	want := []struct{ field, from, to, by string }{
		{"call_status", "unavailable", "available", "a1"},
		{"call_status", "available", "unavailable", "a1"},
		{"call_status", "unavailable", "training", "sup-sales"},
		{"chat_status", "unavailable", "available", "sup-sales"},
	}
	if len(rows) != len(want) {
		t.Fatalf("history = %+v", rows)
	}
	for i, w := range want {
		r := rows[i]
		if string(r.Field) != w.field || r.From != w.from || r.To != w.to || r.By != w.by {
			t.Errorf("row %d = %+v, want %+v", i, r, w)
		}
	}
	// from/to select a window, inclusive.
	win, err := svc.History(ctx, admin, "a1", t0.Add(time.Hour), t0.Add(time.Hour))
	if err != nil || len(win) != 1 || win[0].To != "unavailable" {
		t.Errorf("window = %+v, %v", win, err)
	}
}

// TestRefusedChangesStoreNothing: every refusal leaves the record, its
// version and its history exactly as they were.
func TestRefusedChangesStoreNothing(t *testing.T) {
	svc, _, st := floor(t)
	ctx := context.Background()
	before, _ := st.Get(ctx, state.KindAgent, "a5")
	cases := []struct {
		name  string
		do    func() error
		class error
		field string
	}{
		{"other group's supervisor", func() error { _, err := svc.SetStatus(ctx, supSales, "a5", ptr("available"), nil); return err }, presence.ErrForbidden, ""},
		{"agent on another agent", func() error { _, err := svc.SetStatus(ctx, agentA1, "a5", ptr("available"), nil); return err }, presence.ErrForbidden, ""},
		{"unknown status", func() error { _, err := svc.SetStatus(ctx, admin, "a5", ptr("napping"), nil); return err }, presence.ErrUnprocessable, "call_status"},
		{"rona by hand", func() error { _, err := svc.SetStatus(ctx, admin, "a5", ptr("rona"), nil); return err }, presence.ErrUnprocessable, "call_status"},
		{"bad chat status", func() error { _, err := svc.SetStatus(ctx, admin, "a5", nil, ptr("busy")); return err }, presence.ErrUnprocessable, "chat_status"},
		{"empty change", func() error { _, err := svc.SetStatus(ctx, admin, "a5", nil, nil); return err }, presence.ErrInvalid, "call_status"},
		{"app device with a space", func() error {
			_, err := svc.UpdateAgent(ctx, admin, "a5", presence.AgentInput{AppDevice: ptr("a5 phone")})
			return err
		}, presence.ErrInvalid, "app_device"},
		{"desk device dial string", func() error {
			_, err := svc.UpdateAgent(ctx, admin, "a5", presence.AgentInput{DeskDevice: ptr("user/a5,user/boss")})
			return err
		}, presence.ErrInvalid, "desk_device"},
		{"supervisor logs out other group", func() error { _, err := svc.Logout(ctx, supSales, "a5"); return err }, presence.ErrForbidden, ""},
		{"non-E.164 phone", func() error {
			_, err := svc.UpdateAgent(ctx, admin, "a5", presence.AgentInput{Phone: ptr("0901000011")})
			return err
		}, presence.ErrUnprocessable, "phone"},
		{"bad email", func() error {
			_, err := svc.UpdateAgent(ctx, admin, "a5", presence.AgentInput{Email: ptr("not-an-email")})
			return err
		}, presence.ErrInvalid, "email"},
		{"unknown group", func() error {
			_, err := svc.UpdateAgent(ctx, admin, "a5", presence.AgentInput{Groups: ptr([]string{"nope"})})
			return err
		}, presence.ErrUnprocessable, "groups"},
		{"supervisor edits profile", func() error {
			_, err := svc.UpdateAgent(ctx, supSupp, "a5", presence.AgentInput{Name: ptr("X")})
			return err
		}, presence.ErrForbidden, ""},
	}
	for _, c := range cases {
		err := c.do()
		if !errors.Is(err, c.class) {
			t.Errorf("%s: err = %v, want %v", c.name, err, c.class)
			continue
		}
		var fe *presence.FieldError
		if c.field != "" && (!errors.As(err, &fe) || fe.Field != c.field) {
			t.Errorf("%s: err %v does not name field %q", c.name, err, c.field)
		}
	}
	after, _ := st.Get(ctx, state.KindAgent, "a5")
	if after.Version != before.Version || string(after.Data) != string(before.Data) {
		t.Errorf("refused requests changed a5: v%d → v%d", before.Version, after.Version)
	}
	if rows := history(t, svc, "a5"); len(rows) != 0 {
		t.Errorf("refused requests wrote history %+v", rows)
	}
}

func TestHeartbeatPresenceAndExpiry(t *testing.T) {
	svc, clk, _ := floor(t)
	ctx := context.Background()
	a, err := svc.Heartbeat(ctx, agentA1, "a1")
	if err != nil || !a.Online {
		t.Fatalf("after heartbeat online=%v err=%v", a.Online, err)
	}
	// Frequent heartbeats do not rewrite the record until half the TTL
	// has passed; then one write extends it.
	v0 := a.Version
	clk.Advance(20 * time.Second)
	if a, _ = svc.Heartbeat(ctx, agentA1, "a1"); a.Version != v0 {
		t.Errorf("heartbeat 20 s into a 60 s TTL wrote v%d → v%d", v0, a.Version)
	}
	clk.Advance(20 * time.Second)
	if a, _ = svc.Heartbeat(ctx, agentA1, "a1"); a.Version != v0+1 || !a.HeartbeatUntil.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("heartbeat 40 s in: v%d until %v", a.Version, a.HeartbeatUntil)
	}
	clk.Advance(59 * time.Second)
	if err := svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ = svc.Agent(ctx, "a1"); !a.Online {
		t.Fatal("offline before the heartbeat TTL")
	}
	clk.Advance(2 * time.Second)
	if err := svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ = svc.Agent(ctx, "a1"); a.Online {
		t.Fatal("still online after the heartbeat TTL")
	}
	// A registered device keeps the agent online without heartbeats.
	if _, err := svc.DeviceState(ctx, "a1", "a1", true, clk.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Minute)
	_ = svc.Expire(ctx)
	if a, _ = svc.Agent(ctx, "a1"); !a.Online {
		t.Fatal("registered device did not keep the agent online")
	}
	if _, err := svc.DeviceState(ctx, "a1", "a1", false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if a, _ = svc.Agent(ctx, "a1"); a.Online {
		t.Fatal("online after the device unregistered")
	}
	var online []string
	for _, r := range history(t, svc, "a1") {
		if r.Field == presence.FieldOnline {
			online = append(online, r.From+"→"+r.To+" by "+r.By)
		}
	}
	want := []string{"false→true by a1", "true→false by system", "false→true by system", "true→false by system"}
	if len(online) != len(want) {
		t.Fatalf("online history = %v, want %v", online, want)
	}
	for i := range want {
		if online[i] != want[i] {
			t.Errorf("online row %d = %s, want %s", i, online[i], want[i])
		}
	}
}

func TestLogoutRefusedWithCallOrGuard(t *testing.T) {
	guardErr := errors.New("sup-sales has a running monitor")
	svc, _, _ := floor(t, presence.WithLogoutGuard(func(_ context.Context, id string) error {
		if id == "sup-sales" {
			return errors.Join(guardErr, presence.ErrConflict)
		}
		return nil
	}))
	ctx := context.Background()
	if _, err := svc.Mutate(ctx, "a1", func(a *presence.Agent, now time.Time) ([]presence.HistoryRow, error) {
		row, err := presence.ApplySystemStatus(a, presence.SysRinging, ptr("call-1"), now)
		return []presence.HistoryRow{row}, err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Logout(ctx, agentA1, "a1"); !errors.Is(err, presence.ErrConflict) {
		t.Errorf("logout with a call: err = %v, want ErrConflict", err)
	}
	if _, err := svc.Logout(ctx, supSales, "sup-sales"); !errors.Is(err, guardErr) {
		t.Errorf("logout with a monitor: err = %v, want the guard's", err)
	}
	if err := svc.DeleteAgent(ctx, admin, "a1"); !errors.Is(err, presence.ErrConflict) {
		t.Errorf("delete with a call: err = %v, want ErrConflict", err)
	}
	if _, err := svc.Logout(ctx, supSupp, "a5"); err != nil {
		t.Errorf("logout of a free agent by their supervisor: %v", err)
	}
}

func TestWrapUpEndsByTimerOrEarly(t *testing.T) {
	svc, clk, _ := floor(t)
	ctx := context.Background()
	toACW := func(id string) {
		t.Helper()
		_, err := svc.Mutate(ctx, id, func(a *presence.Agent, now time.Time) ([]presence.HistoryRow, error) {
			r1, _ := presence.ApplySystemStatus(a, presence.SysTalking, ptr("c"), now)
			r2, err := presence.ApplySystemStatus(a, presence.SysAfterCallWork, nil, now)
			a.WrapUpUntil = now.Add(30 * time.Second)
			return []presence.HistoryRow{r1, r2}, err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	toACW("a1")
	toACW("a5")
	clk.Advance(29 * time.Second)
	_ = svc.Expire(ctx)
	if a, _ := svc.Agent(ctx, "a1"); a.SystemStatus != presence.SysAfterCallWork {
		t.Fatalf("wrap-up ended early: %s", a.SystemStatus)
	}
	if _, err := svc.EndWrapUp(ctx, agentA1, "a5"); !errors.Is(err, presence.ErrForbidden) {
		t.Errorf("a1 ending a5's wrap-up: %v", err)
	}
	if a, err := svc.EndWrapUp(ctx, supSupp, "a5"); err != nil || a.SystemStatus != presence.SysAvailable {
		t.Errorf("early end: %s %v", a.SystemStatus, err)
	}
	clk.Advance(time.Second)
	_ = svc.Expire(ctx)
	a, _ := svc.Agent(ctx, "a1")
	if a.SystemStatus != presence.SysAvailable || !a.WrapUpUntil.IsZero() || !a.LastCallEndedAt.Equal(t0) {
		t.Errorf("after timer: %s wrapup_until=%v last_call_ended=%v", a.SystemStatus, a.WrapUpUntil, a.LastCallEndedAt)
	}
	if _, err := svc.EndWrapUp(ctx, agentA1, "a1"); !errors.Is(err, presence.ErrConflict) {
		t.Errorf("ending wrap-up when not in it: %v", err)
	}
}

// TestConcurrentWritersLoseNothing: parallel status changes through the
// compare-and-set loop each land exactly once in history.
func TestConcurrentWritersLoseNothing(t *testing.T) {
	svc, _, _ := floor(t)
	ctx := context.Background()
	statuses := []string{"available", "unavailable"}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				_, err := svc.SetStatus(ctx, admin, "a1", ptr(statuses[(i+j)%2]), nil)
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	rows := history(t, svc, "a1")
	for i := 1; i < len(rows); i++ {
		if rows[i].From != rows[i-1].To {
			t.Fatalf("history is not a chain at %d: %+v then %+v", i, rows[i-1], rows[i])
		}
	}
	a, _ := svc.Agent(ctx, "a1")
	if last := rows[len(rows)-1]; last.To != a.CallStatus {
		t.Errorf("last history row %+v does not match status %s", last, a.CallStatus)
	}
}

func TestTokensAndActors(t *testing.T) {
	svc, _, st := floor(t)
	ctx := context.Background()
	if _, err := svc.PutGroup(ctx, admin, "sales", false, presence.GroupPatch{Supervisors: ptr([]string{"sup-sales"})}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetToken(ctx, "secret-token-1", "sup-sales"); err != nil {
		t.Fatal(err)
	}
	act, err := svc.Authenticate(ctx, "secret-token-1")
	if err != nil || act.ID != "sup-sales" || act.Role != presence.RoleSupervisor || len(act.Supervises) != 1 || act.Supervises[0] != "sales" {
		t.Fatalf("actor = %+v, %v", act, err)
	}
	for _, tok := range []string{"", "wrong-token"} {
		if _, err := svc.Authenticate(ctx, tok); !errors.Is(err, presence.ErrUnauthenticated) {
			t.Errorf("token %q: err = %v", tok, err)
		}
	}
	recs, _ := st.List(ctx, state.KindToken)
	for _, r := range recs {
		if r.ID == "secret-token-1" || string(r.Data) == "secret-token-1" {
			t.Fatal("token stored in plain text")
		}
	}
	if _, err := svc.PutGroup(ctx, admin, "support", false, presence.GroupPatch{Supervisors: ptr([]string{"a1"})}); !errors.Is(err, presence.ErrUnprocessable) {
		t.Errorf("agent-role supervisor: err = %v", err)
	}
}

// toRONA rings the agent for call c and lets it ring out.
func toRONA(t *testing.T, svc *presence.Service, id string) {
	t.Helper()
	_, err := svc.Mutate(context.Background(), id, func(a *presence.Agent, now time.Time) ([]presence.HistoryRow, error) {
		r1, err := presence.ApplySystemStatus(a, presence.SysRinging, ptr("c"), now)
		if err != nil {
			return nil, err
		}
		r2, err := presence.ApplySystemStatus(a, presence.SysRONA, nil, now)
		return []presence.HistoryRow{r1, r2}, err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// "Go to available" from RONA restarts the status timer at 00:00 with a
// history row, even though the manual status was already available.
func TestAvailableFromRONARestartsTimer(t *testing.T) {
	svc, clk, _ := floor(t)
	ctx := context.Background()
	if _, err := svc.SetStatus(ctx, agentA1, "a1", ptr("available"), nil); err != nil {
		t.Fatal(err)
	}
	clk.Advance(40 * time.Minute)
	toRONA(t, svc, "a1")
	clk.Advance(time.Minute)
	before := len(history(t, svc, "a1"))
	a, err := svc.SetStatus(ctx, agentA1, "a1", ptr("available"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.SystemStatus != presence.SysAvailable || !a.StatusSince.Equal(clk.Now()) {
		t.Fatalf("after go to available: system %s, status_since %v; want available since %v", a.SystemStatus, a.StatusSince, clk.Now())
	}
	if v := a.View(clk.Now(), time.UTC); v.StatusSeconds != 0 {
		t.Fatalf("status_seconds = %d, want 0", v.StatusSeconds)
	}
	rows := history(t, svc, "a1")[before:]
	if len(rows) != 2 || rows[0].Field != presence.FieldSystemStatus || rows[0].From != "rona" || rows[0].To != "available" ||
		rows[1].Field != presence.FieldCallStatus || rows[1].From != "available" || rows[1].To != "available" || rows[1].By != "a1" {
		t.Fatalf("history rows = %+v, want rona→available and available→available by a1", rows)
	}
	// Outside RONA, choosing the status one already has stays a no-op.
	clk.Advance(time.Minute)
	a, err = svc.SetStatus(ctx, agentA1, "a1", ptr("available"), nil)
	if err != nil || a.StatusSince.Equal(clk.Now()) || len(history(t, svc, "a1")) != before+2 {
		t.Fatalf("repeat available: since %v err %v", a.StatusSince, err)
	}
}

// "Go to idle": from RONA to the default idle status, by the agent or a
// supervisor of their group; refused outside RONA and for others.
func TestGoIdleFromRONA(t *testing.T) {
	svc, clk, _ := floor(t, presence.WithDefaultIdleStatus("training"))
	ctx := context.Background()
	if _, err := svc.SetStatus(ctx, agentA1, "a1", ptr("available"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.GoIdle(ctx, agentA1, "a1"); !errors.Is(err, presence.ErrConflict) {
		t.Fatalf("go to idle while available: %v, want conflict", err)
	}
	toRONA(t, svc, "a1")
	clk.Advance(time.Minute)
	for _, actor := range []presence.Actor{supSupp, {ID: "a5", Role: presence.RoleAgent, Groups: []string{"support"}}} {
		if _, err := svc.GoIdle(ctx, actor, "a1"); !errors.Is(err, presence.ErrForbidden) {
			t.Fatalf("go to idle by %s: %v, want forbidden", actor.ID, err)
		}
	}
	for _, actor := range []presence.Actor{agentA1, supSales} {
		a, err := svc.GoIdle(ctx, actor, "a1")
		if err != nil {
			t.Fatalf("go to idle by %s: %v", actor.ID, err)
		}
		if a.SystemStatus != presence.SysAvailable || a.CallStatus != "training" || !a.StatusSince.Equal(clk.Now()) || a.Routable() {
			t.Fatalf("after go to idle by %s: %+v", actor.ID, a)
		}
		rows := history(t, svc, "a1")
		if last := rows[len(rows)-1]; last.From != "available" || last.To != "training" || last.By != actor.ID {
			t.Fatalf("last history row = %+v", last)
		}
		if _, err := svc.SetStatus(ctx, agentA1, "a1", ptr("available"), nil); err != nil {
			t.Fatal(err)
		}
		toRONA(t, svc, "a1")
	}
}

// Account settings: defaults until set, admins change them, supervisors
// read them, agents neither; the store holds them (a second service on
// the same store — another replica — reads the same).
func TestSettings(t *testing.T) {
	svc, clk, st := floor(t)
	ctx := context.Background()
	if set, err := svc.GetSettings(ctx, supSales); err != nil || set != presence.DefaultSettings {
		t.Fatalf("default settings = %+v, %v", set, err)
	}
	if _, err := svc.GetSettings(ctx, agentA1); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("agent reading settings: %v", err)
	}
	if _, err := svc.UpdateSettings(ctx, supSales, presence.SettingsInput{AvailableAfterOutdial: ptr(true)}); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("supervisor changing settings: %v", err)
	}
	if _, err := svc.UpdateSettings(ctx, admin, presence.SettingsInput{}); !errors.Is(err, presence.ErrInvalid) {
		t.Fatalf("empty patch: %v", err)
	}
	if set, err := svc.UpdateSettings(ctx, admin, presence.SettingsInput{AvailableAfterOutdial: ptr(true)}); err != nil || !set.AvailableAfterOutdial {
		t.Fatalf("update = %+v, %v", set, err)
	}
	other := presence.NewService(st, presence.WithClock(clk.Now))
	if set, err := other.GetSettings(ctx, supSupp); err != nil || !set.AvailableAfterOutdial {
		t.Fatalf("another replica reads %+v, %v", set, err)
	}
	// InitSettings (the YAML seed) never overwrites a stored setting.
	if err := other.InitSettings(ctx, presence.Settings{}); err != nil {
		t.Fatal(err)
	}
	if set, _ := svc.Settings(ctx); !set.AvailableAfterOutdial {
		t.Fatal("InitSettings overwrote the stored setting")
	}
}

// TestDeviceNames: an agent's two devices default to "<id>" and
// "<id>-desk"; the record may rename either, and "" restores the default.
func TestDeviceNames(t *testing.T) {
	svc, _, _ := floor(t)
	ctx := context.Background()
	a, err := svc.Agent(ctx, "a5")
	if err != nil {
		t.Fatal(err)
	}
	if a.AppUser() != "a5" || a.DeskUser() != "a5-desk" || !a.OwnsDevice("a5-desk") || a.OwnsDevice("a6") {
		t.Fatalf("defaults: app %q desk %q", a.AppUser(), a.DeskUser())
	}
	if a, err = svc.UpdateAgent(ctx, admin, "a5", presence.AgentInput{AppDevice: ptr("web-a5"), DeskDevice: ptr("7005")}); err != nil {
		t.Fatal(err)
	}
	if a.AppUser() != "web-a5" || a.DeskUser() != "7005" || a.OwnsDevice("a5-desk") {
		t.Fatalf("renamed: app %q desk %q", a.AppUser(), a.DeskUser())
	}
	v := a.View(a.StatusSince, time.UTC)
	if v.AppDevice != "web-a5" || v.DeskDevice != "7005" {
		t.Fatalf("view devices %q %q", v.AppDevice, v.DeskDevice)
	}
	if a, err = svc.UpdateAgent(ctx, admin, "a5", presence.AgentInput{DeskDevice: ptr("")}); err != nil || a.DeskUser() != "a5-desk" {
		t.Fatalf("reset desk: %q, %v", a.DeskUser(), err)
	}
}
