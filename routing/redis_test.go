package routing_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/store"
)

var redisPrefixes atomic.Int64

// The engine on a real redis-server: calls, agents, counters and events
// go through the Lua commit; a restarted engine (new client, same Redis)
// carries on, and today's counters survive it.
func TestEngineOnRedis(t *testing.T) {
	srv := testpeer.StartRedis(t)
	prefix := fmt.Sprintf("{routing%d}:", redisPrefixes.Add(1))
	open := func() *store.Redis {
		return store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}), store.WithPrefix(prefix))
	}
	f := newFloorOn(t, open(), nil, time.Time{})
	f.addAgent("sup1", presence.RoleSupervisor)
	f.setStatus("sup1", presence.StatusUnavailable)
	f.addGroup("sales", "sup1")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addAgent("a2", presence.RoleAgent, "sales")
	f.addQueue("main", routing.RoundRobin, 10, []string{"sales"}, "+842800")

	// UIS: X misses twice.
	f.miss("+84901000001")
	f.miss("+84901000001")
	// RONA, next agent, answer, supervisor listens.
	id, cust := f.arrive("+84901000002", "+842800")
	first := *f.call(id).Agent
	f.advance(18 * time.Second)
	f.wantSys(first, presence.SysRONA)
	second := *f.call(id).Agent
	if second == first {
		t.Fatalf("RONA did not move the call on: %s", second)
	}
	f.answer(f.legOf(second))
	f.wantCall(id, routing.StateAnswered, second)
	m, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorListen, "")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.agents.Logout(f.ctx, f.actor("sup1"), "sup1")
	wantConflict(t, err, "sup1 has a running monitor")

	// Restart on a new client: the call, the monitor and the counters are there.
	f.stop()
	if err := f.st.Close(); err != nil {
		t.Fatal(err)
	}
	f.st = open()
	f.agents = presence.NewService(f.st, presence.WithClock(f.clock.Now),
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return f.eng.LogoutGuard(ctx, id) }))
	f.start()
	f.flush()
	if c := f.wantCall(id, routing.StateAnswered, second); c.Monitor == nil || c.Monitor.ID != m.ID {
		t.Fatalf("monitor after restart = %+v", c.Monitor)
	}
	if s := f.stats("", ""); s.Missed != 2 || s.Accepted != 1 || s.AvgWaitSeconds != 18 {
		t.Fatalf("stats after restart = %+v", s)
	}
	if _, err := f.eng.EndMonitor(f.ctx, f.actor("sup1"), m.ID); err != nil {
		t.Fatal(err)
	}
	// Ending the monitor freed the supervisor (the one-call-at-a-time
	// record is deleted through the Lua commit too); the call ending ends
	// the next one.
	if _, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), id, media.MonitorWhisper, ""); err != nil {
		t.Fatalf("monitor again after ending one: %v", err)
	}
	// Account settings live in Redis: another replica reads the change.
	on := true
	if _, err := f.agents.UpdateSettings(f.ctx, f.admin, presence.SettingsInput{AvailableAfterOutdial: &on}); err != nil {
		t.Fatal(err)
	}
	other := open()
	defer other.Close()
	if set, err := presence.NewService(other).Settings(f.ctx); err != nil || !set.AvailableAfterOutdial {
		t.Fatalf("settings through a second client = %+v, %v", set, err)
	}
	f.ended(cust, media.CauseNormal)
	f.wantGone(id)
	f.wantSys(second, presence.SysAfterCallWork)
	f.advance(10 * time.Second)
	f.wantSys(second, presence.SysAvailable)
	// X gets through: the misses drop.
	x, cx := f.arrive("+84901000001", "+842800")
	f.answer(f.legOf(*f.call(x).Agent))
	if _, err := f.eng.StartMonitor(f.ctx, f.actor("sup1"), x, media.MonitorListen, ""); err != nil {
		t.Fatalf("monitor a new call after the monitored one ended: %v", err)
	}
	f.ended(cx, media.CauseNormal)
	if s := f.stats("", ""); s.Missed != 0 || s.Accepted != 2 {
		t.Fatalf("stats after X was reached = %+v", s)
	}
}
