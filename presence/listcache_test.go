package presence_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// Agents reuses what it decoded for unchanged records, yet always says
// what the store holds: changes, deletions, and callers changing the
// agents they got do not leak into the next listing.
// With the memory store's change feed and without it (listed whole).
func TestAgentsListingFollowsTheStore(t *testing.T) {
	t.Run("feed", func(t *testing.T) { testAgentsListing(t, false) })
	t.Run("list-only", func(t *testing.T) { testAgentsListing(t, true) })
}

// listOnly hides the memory store's change feed.
type listOnly struct{ state.Store }

// salesFloor is a service over a fresh memory store (its change feed
// hidden when hideFeed) holding group "sales".
func salesFloor(t *testing.T, hideFeed bool) *presence.Service {
	t.Helper()
	mem := store.NewMemory()
	t.Cleanup(func() { _ = mem.Close() })
	var st state.Store = mem
	if hideFeed {
		st = listOnly{mem}
	}
	svc := presence.NewService(st)
	if _, err := svc.PutGroup(context.Background(), admin, "sales", true, presence.GroupPatch{Name: ptr("sales")}); err != nil {
		t.Fatal(err)
	}
	return svc
}

func testAgentsListing(t *testing.T, hideFeed bool) {
	svc := salesFloor(t, hideFeed)
	ctx := context.Background()
	seedAgents(t, svc, 3, time.Now().Add(time.Hour))
	first, err := svc.Agents(ctx)
	if err != nil || len(first) != 3 {
		t.Fatalf("agents: %d, %v", len(first), err)
	}
	first[0].Groups[0] = "changed by a caller"
	first[1].Devices = presence.DeviceLeases{{Device: "x", Until: time.Now()}}

	brk := presence.StatusShortBreak
	changed, err := svc.SetStatus(ctx, admin, "s00002", &brk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.DeleteAgent(ctx, admin, "s00001"); err != nil {
		t.Fatal(err)
	}
	second, err := svc.Agents(ctx)
	if err != nil || len(second) != 2 {
		t.Fatalf("agents after a delete: %d, %v", len(second), err)
	}
	if second[0].ID != "s00000" || second[0].Groups[0] != "sales" {
		t.Errorf("a caller's change leaked into the listing: %+v", second[0])
	}
	if second[1].ID != "s00002" || second[1].CallStatus != brk || second[1].Version != changed.Version {
		t.Errorf("listing shows %s %s v%d, want s00002 %s v%d", second[1].ID, second[1].CallStatus, second[1].Version, brk, changed.Version)
	}
	for _, a := range second {
		one, err := svc.Agent(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if one.Version != a.Version || one.CallStatus != a.CallStatus || len(one.Devices) != len(a.Devices) {
			t.Errorf("%s listed as %+v, stored as %+v", a.ID, a, one)
		}
	}
	// A new agent takes its place in id order; a deleted one created
	// again is listed again.
	for _, id := range []string{"a00000", "s00001"} {
		if _, err := svc.CreateAgent(ctx, admin, presence.AgentInput{
			ID: ptr(id), Name: ptr(id), Email: ptr(id + "@example.com"), Phone: ptr("+84901000011"),
			Role: ptr(presence.RoleAgent), Groups: ptr([]string{"sales"}), Distribution: ptr(presence.DistApp),
		}); err != nil {
			t.Fatal(err)
		}
	}
	third, err := svc.Agents(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, a := range third {
		ids = append(ids, a.ID)
	}
	if want := []string{"a00000", "s00000", "s00001", "s00002"}; !slices.Equal(ids, want) {
		t.Errorf("listed %v, want %v", ids, want)
	}
}

// ListPage walks the same agents as List, page by page, with and without
// the change feed; a page handed out is a copy.
func TestListPageMatchesList(t *testing.T) {
	for _, hideFeed := range []bool{false, true} {
		svc := salesFloor(t, hideFeed)
		ctx := context.Background()
		seedAgents(t, svc, 7, time.Now().Add(time.Hour))
		brk := presence.StatusShortBreak
		for _, id := range []string{"s00001", "s00004", "s00005"} {
			if _, err := svc.SetStatus(ctx, admin, id, &brk, nil); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range []presence.Filter{{}, {CallStatus: brk}, {Group: "none"}} {
			want, err := svc.List(ctx, admin, f)
			if err != nil {
				t.Fatal(err)
			}
			for _, limit := range []int{1, 2, 3, 100} {
				var got []string
				cursor := ""
				for pages := 0; ; pages++ {
					page, next, err := svc.ListPage(ctx, admin, f, cursor, limit)
					if err != nil || len(page) > limit || pages > len(want) {
						t.Fatalf("feed hidden %v, filter %+v, limit %d: page of %d, %v", hideFeed, f, limit, len(page), err)
					}
					for _, a := range page {
						got = append(got, a.ID)
					}
					if len(page) > 0 {
						page[0].Groups = append(page[0].Groups[:0], "changed by a caller")
					}
					if next == "" {
						break
					}
					if next != page[len(page)-1].ID {
						t.Fatalf("next %q is not the page's last id %q", next, page[len(page)-1].ID)
					}
					cursor = next
				}
				var wantIDs []string
				for _, a := range want {
					wantIDs = append(wantIDs, a.ID)
				}
				if !slices.Equal(got, wantIDs) {
					t.Fatalf("feed hidden %v, filter %+v, limit %d: pages %v, List %v", hideFeed, f, limit, got, wantIDs)
				}
			}
		}
		if all, _ := svc.List(ctx, admin, presence.Filter{}); len(all) == 0 || all[0].Groups[0] != "sales" {
			t.Fatalf("a caller's change to a page leaked: %+v", all)
		}
		if _, _, err := svc.ListPage(ctx, admin, presence.Filter{Online: "maybe"}, "", 0); !errors.Is(err, presence.ErrInvalid) {
			t.Fatalf("bad filter: %v, want ErrInvalid", err)
		}
	}
}

// Agent reads reuse the listing's decoding but always say what the store
// holds, and never make a listing show an agent the store no longer has.
func TestAgentReadsFollowTheStore(t *testing.T) {
	for _, hideFeed := range []bool{false, true} {
		svc := salesFloor(t, hideFeed)
		ctx := context.Background()
		seedAgents(t, svc, 2, time.Now().Add(time.Hour))
		if _, err := svc.Agents(ctx); err != nil {
			t.Fatal(err)
		}
		a, err := svc.Agent(ctx, "s00000")
		if err != nil {
			t.Fatal(err)
		}
		a.Groups[0] = "changed by a caller"
		if again, _ := svc.Agent(ctx, "s00000"); again.Groups[0] != "sales" {
			t.Fatalf("feed hidden %v: a caller's change leaked into the next read: %v", hideFeed, again.Groups)
		}
		brk := presence.StatusShortBreak
		changed, err := svc.SetStatus(ctx, admin, "s00000", &brk, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := svc.Agent(ctx, "s00000"); got.CallStatus != brk || got.Version != changed.Version {
			t.Fatalf("feed hidden %v: read %s v%d after a change to %s v%d", hideFeed, got.CallStatus, got.Version, brk, changed.Version)
		}
		// Deleted and created again (versions start over): the new record.
		if err := svc.DeleteAgent(ctx, admin, "s00001"); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.CreateAgent(ctx, admin, presence.AgentInput{
			ID: ptr("s00001"), Name: ptr("Created Again"), Email: ptr("again@example.com"), Phone: ptr("+84901000012"),
			Role: ptr(presence.RoleAgent), Groups: ptr([]string{"sales"}), Distribution: ptr(presence.DistApp),
		}); err != nil {
			t.Fatal(err)
		}
		if got, _ := svc.Agent(ctx, "s00001"); got.Name != "Created Again" {
			t.Fatalf("feed hidden %v: read %q after the agent was created again", hideFeed, got.Name)
		}
		// Read while not listed yet, then deleted: never listed.
		if _, err := svc.CreateAgent(ctx, admin, presence.AgentInput{
			ID: ptr("t00000"), Name: ptr("Brief"), Email: ptr("brief@example.com"), Phone: ptr("+84901000013"),
			Role: ptr(presence.RoleAgent), Groups: ptr([]string{"sales"}), Distribution: ptr(presence.DistApp),
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Agent(ctx, "t00000"); err != nil {
			t.Fatal(err)
		}
		if err := svc.DeleteAgent(ctx, admin, "t00000"); err != nil {
			t.Fatal(err)
		}
		list, err := svc.Agents(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, a := range list {
			ids = append(ids, a.ID)
		}
		if want := []string{"s00000", "s00001"}; !slices.Equal(ids, want) {
			t.Fatalf("feed hidden %v: listed %v, want %v", hideFeed, ids, want)
		}
	}
}
