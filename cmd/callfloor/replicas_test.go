package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
)

// TestTwoReplicasShareRedis runs two whole callfloor instances on one
// real Redis: a status change made through one reaches a dashboard
// stream served by the other, and both read the same agent state.
func TestTwoReplicasShareRedis(t *testing.T) {
	rs := testpeer.StartRedis(t)
	env := map[string]string{"CALLFLOOR_REDIS_URL": rs.URL()}
	a := start(t, env)
	defer a.stop()
	b := start(t, env)
	defer b.stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := followTypes(t, ctx, b.base, "demo-sup-sales", "agent")
	if code := a.call("PUT", "/v1/agents/a2/status", "demo-a2", `{"call_status":"lunch_break"}`, nil); code != 200 {
		t.Fatalf("set status through replica A: %d", code)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !events.has(func(typ, data string) bool {
		return typ == "agent" && strings.Contains(data, `"id":"a2"`) && strings.Contains(data, `"call_status":"lunch_break"`)
	}) {
		if time.Now().After(deadline) {
			t.Fatal("replica B's stream never carried the change made through replica A")
		}
		time.Sleep(50 * time.Millisecond)
	}
	var got map[string]any
	if code := b.call("GET", "/v1/agents/a2", "demo-admin", "", &got); code != 200 || got["call_status"] != "lunch_break" {
		t.Fatalf("replica B reads a2 = %v (%d)", got, code)
	}
}
