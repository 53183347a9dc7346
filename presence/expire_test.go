package presence_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

func dueOf(t *testing.T, st state.Store) map[string]time.Time {
	t.Helper()
	ds, err := st.Due(context.Background(), presence.DueIndex, 1<<62, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]time.Time{}
	for _, d := range ds {
		out[d.Member] = time.UnixMilli(d.At).UTC()
	}
	return out
}

// TestDueIndexFollowsAgents: every agent write files the agent at the
// time something lapses by itself — the later of heartbeat and device
// registration while online, the end of wrap-up — and removes it when
// nothing will; the sweep acts on exactly those agents and re-files what
// is left (a lapsed heartbeat with a live device moves to the device's
// expiry).
func TestDueIndexFollowsAgents(t *testing.T) {
	svc, clk, st := floor(t)
	ctx := context.Background()
	if got := dueOf(t, st); len(got) != 0 {
		t.Fatalf("offline agents filed: %v", got)
	}
	if _, err := svc.Heartbeat(ctx, agentA1, "a1"); err != nil {
		t.Fatal(err)
	}
	hb := clk.Now().Add(time.Minute)
	if got := dueOf(t, st); len(got) != 1 || !got["a1"].Equal(hb) {
		t.Fatalf("after heartbeat: %v, want a1 at %v", got, hb)
	}
	dev := clk.Now().Add(10 * time.Minute)
	if _, err := svc.DeviceState(ctx, "a1", "a1", true, dev); err != nil {
		t.Fatal(err)
	}
	if got := dueOf(t, st); !got["a1"].Equal(dev) {
		t.Fatalf("with a device until %v: %v", dev, got)
	}
	// Heartbeat lapses, device lives on: still online, filed at the device.
	clk.Advance(2 * time.Minute)
	if err := svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := svc.Agent(ctx, "a1"); !a.Online {
		t.Fatal("offline while the device is registered")
	}
	clk.Advance(9 * time.Minute)
	if err := svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := svc.Agent(ctx, "a1"); a.Online {
		t.Fatal("online after the device registration lapsed")
	}
	if got := dueOf(t, st); len(got) != 0 {
		t.Fatalf("after going offline: %v", got)
	}
	// Wrap-up is filed at its end, and deleting an agent removes it.
	if _, err := svc.Mutate(ctx, "a5", func(a *presence.Agent, now time.Time) ([]presence.HistoryRow, error) {
		r1, _ := presence.ApplySystemStatus(a, presence.SysTalking, ptr("c"), now)
		r2, err := presence.ApplySystemStatus(a, presence.SysAfterCallWork, nil, now)
		a.WrapUpUntil = now.Add(30 * time.Second)
		return []presence.HistoryRow{r1, r2}, err
	}); err != nil {
		t.Fatal(err)
	}
	if got := dueOf(t, st); !got["a5"].Equal(clk.Now().Add(30 * time.Second)) {
		t.Fatalf("wrap-up: %v", got)
	}
	if err := svc.DeleteAgent(ctx, admin, "a5"); err != nil {
		t.Fatal(err)
	}
	if got := dueOf(t, st); len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
}

// TestSweepRefilesStaleEntries: an entry that is due although its agent
// is not (written by an older process, or a lost race) is filed again
// from the record, without an event; an entry for a missing agent is
// dropped; agents written before the index existed are found by Reindex.
func TestSweepRefilesStaleEntries(t *testing.T) {
	svc, clk, st := floor(t)
	ctx := context.Background()
	if _, err := svc.Heartbeat(ctx, agentA1, "a1"); err != nil {
		t.Fatal(err)
	}
	hb := clk.Now().Add(time.Minute)
	if _, err := st.Commit(ctx, state.Tx{Schedules: []state.Schedule{
		{Index: presence.DueIndex, Member: "a1", At: 1},
		{Index: presence.DueIndex, Member: "ghost", At: 1},
	}}); err != nil {
		t.Fatal(err)
	}
	last, _ := st.Last(ctx)
	if err := svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dueOf(t, st); len(got) != 1 || !got["a1"].Equal(hb) {
		t.Fatalf("after sweeping stale entries: %v, want a1 at %v", got, hb)
	}
	if now, _ := st.Last(ctx); now != last {
		t.Fatal("re-filing an entry published an event")
	}
	if a, _ := svc.Agent(ctx, "a1"); !a.Online {
		t.Fatal("a stale entry took the agent offline")
	}

	// An agent record written without its entry (before the index).
	a, _ := svc.Agent(ctx, "a5")
	a.Online, a.LoggedIn, a.HeartbeatUntil = true, true, clk.Now().Add(time.Second)
	data, _ := json.Marshal(a)
	if _, err := st.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindAgent, ID: "a5", Data: data, IfVersion: a.Version}}}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(2 * time.Second)
	_ = svc.Expire(ctx)
	if a, _ := svc.Agent(ctx, "a5"); !a.Online {
		t.Fatal("the sweep found an agent that is not in the index")
	}
	if err := svc.Reindex(ctx); err != nil {
		t.Fatal(err)
	}
	if err := svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if a, _ := svc.Agent(ctx, "a5"); a.Online {
		t.Fatal("after Reindex the lapsed agent is still online")
	}
}

// TestSweepManyDue: more agents due at once than one batch reads all go
// offline in one sweep.
func TestSweepManyDue(t *testing.T) {
	svc, clk, st := floor(t)
	ctx := context.Background()
	const n = 1200
	seedAgents(t, svc, n, clk.Now().Add(time.Second))
	clk.Advance(2 * time.Second)
	if err := svc.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if got := dueOf(t, st); len(got) != 0 {
		t.Fatalf("%d agents still due after one sweep", len(got))
	}
	as, _ := svc.Agents(ctx)
	for _, a := range as {
		if a.Online {
			t.Fatalf("%s still online", a.ID)
		}
	}
}

// seedAgents creates n agents online by heartbeat until hbUntil.
func seedAgents(t testing.TB, svc *presence.Service, n int, hbUntil time.Time) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		id := fmt.Sprintf("s%05d", i)
		if _, err := svc.CreateAgent(ctx, admin, presence.AgentInput{
			ID: ptr(id), Name: ptr(id), Email: ptr(id + "@example.com"), Phone: ptr("+84901000011"),
			Role: ptr(presence.RoleAgent), Groups: ptr([]string{"sales"}), Distribution: ptr(presence.DistApp),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Mutate(ctx, id, func(a *presence.Agent, now time.Time) ([]presence.HistoryRow, error) {
			a.LoggedIn, a.Online, a.HeartbeatUntil = true, true, hbUntil
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}
