package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/store"
)

// TestStreamEndsForDeletedUser: deleting a user ends their open stream
// (the periodic re-check: deletion writes no event) with a cutoff saying
// why, within 5 s.
func TestStreamEndsForDeletedUser(t *testing.T) {
	f := newFloorWith(t, store.NewMemory(), nil, func(svc *presence.Service) []api.EventOption {
		return []api.EventOption{api.WithRecheck(svc, time.Second)}
	})
	c := f.connect("demo-a3", "", nil)
	if err := f.svc.DeleteAgent(context.Background(), presence.System, "a3"); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	deadline := time.After(5 * time.Second)
	sawCutoff := false
	for {
		select {
		case fr, ok := <-c.frames:
			if !ok {
				if !sawCutoff {
					t.Fatal("stream ended without a cutoff")
				}
				t.Logf("deleted user's stream closed after %v", time.Since(start))
				return
			}
			if fr.event == "cutoff" && strings.Contains(fr.data, "unauthenticated") {
				sawCutoff = true
			}
		case <-deadline:
			t.Fatal("a deleted user's stream is still open after 5 s")
		}
	}
}

// TestStreamNarrowsWithRoleAndGroups: a supervisor whose role or
// supervised groups shrink stops receiving those agents' events from the
// next event on. Changes to the subscriber's own record are re-checked
// before anything else is sent; the periodic re-check is set to an hour
// so only that path is exercised.
func TestStreamNarrowsWithRoleAndGroups(t *testing.T) {
	f := newFloorWith(t, store.NewMemory(), nil, func(svc *presence.Service) []api.EventOption {
		return []api.EventOption{api.WithRecheck(svc, time.Hour)}
	})
	ctx := context.Background()
	sup := f.connect("demo-sup-sales", "?types=agent", nil)
	nextAgent := func() presence.AgentView {
		t.Helper()
		var v presence.AgentView
		if err := json.Unmarshal([]byte(sup.next(false).data), &v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	f.setStatus("a1", "lunch_break")
	if v := nextAgent(); v.ID != "a1" {
		t.Fatalf("supervisor of sales got %s, want a1", v.ID)
	}

	// No longer supervising sales, and no longer in it: a1 (sales) must
	// vanish. The group change writes no event; the supervisor's own
	// record change (groups: []) does, and triggers the re-check.
	if _, err := f.svc.PutGroup(ctx, presence.System, "sales", false, presence.GroupPatch{Supervisors: &[]string{}}); err != nil {
		t.Fatal(err)
	}
	none := []string{}
	if _, err := f.svc.UpdateAgent(ctx, presence.System, "sup-sales", presence.AgentInput{Groups: &none}); err != nil {
		t.Fatal(err)
	}
	if v := nextAgent(); v.ID != "sup-sales" {
		t.Fatalf("want the supervisor's own change, got %s", v.ID)
	}
	f.setStatus("a1", "short_break")
	f.setStatus("a2", "short_break")
	// A marker the narrowed supervisor still sees: their own record.
	role := presence.RoleAgent
	if _, err := f.svc.UpdateAgent(ctx, presence.System, "sup-sales", presence.AgentInput{Role: &role}); err != nil {
		t.Fatal(err)
	}
	if v := nextAgent(); v.ID != "sup-sales" {
		t.Fatalf("narrowed stream still carried %s", v.ID)
	}
}

// TestStreamDoesNotLogIn: opening a stream after a logout leaves the agent
// logged out and in the status the logout left.
func TestStreamDoesNotLogIn(t *testing.T) {
	f := newFloorWith(t, store.NewMemory(), nil, func(svc *presence.Service) []api.EventOption {
		return []api.EventOption{api.WithStreamPresence(svc, 20*time.Millisecond)}
	})
	ctx := context.Background()
	a1 := presence.Actor{ID: "a1", Role: presence.RoleAgent, Groups: []string{"sales"}}
	if _, err := f.svc.Heartbeat(ctx, a1, "a1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Logout(ctx, a1, "a1"); err != nil {
		t.Fatal(err)
	}
	before, _ := f.svc.Agent(ctx, "a1")
	c := f.connect("demo-a1", "?types=agent", nil)
	// Several keep-alive periods pass while a status change of another
	// agent goes through the same stream: a1's record must not move.
	f.setStatus("a2", "lunch_break")
	for {
		var v presence.AgentView
		_ = json.Unmarshal([]byte(c.next(false).data), &v)
		if v.ID == "a1" {
			t.Fatalf("the stream changed a1: %+v", v)
		}
		if v.ID == "a2" {
			break
		}
	}
	after, _ := f.svc.Agent(ctx, "a1")
	if after.Version != before.Version || after.LoggedIn || after.CallStatus != before.CallStatus {
		t.Fatalf("stream after logout changed a1: %+v → %+v", before, after)
	}
}
