package presence_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// TestTwoReplicasUnderContentionNoConflicts: two services with their own
// Redis clients (two replicas) make 400 concurrent status changes to one
// agent. The changes do not conflict in substance, so with jittered
// retries none surfaces ErrConflict, and the history stays one chain.
func TestTwoReplicasUnderContentionNoConflicts(t *testing.T) {
	srv := testpeer.StartRedis(t)
	replica := func() *presence.Service {
		st := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64}))
		t.Cleanup(func() { st.Close() })
		return presence.NewService(st)
	}
	a, b := replica(), replica()
	ctx := context.Background()
	if _, err := a.PutGroup(ctx, admin, "sales", true, presence.GroupPatch{Name: ptr("sales")}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateAgent(ctx, admin, presence.AgentInput{ID: ptr("a1"), Name: ptr("A1"), Email: ptr("a1@example.com"),
		Groups: ptr([]string{"sales"})}); err != nil {
		t.Fatal(err)
	}
	statuses := []string{"available", "unavailable", "lunch_break", "short_break"}
	const perReplica = 500
	var conflicts, other atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	for r, svc := range []*presence.Service{a, b} {
		for i := range perReplica {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := svc.SetStatus(ctx, admin, "a1", ptr(statuses[(r+i)%len(statuses)]), nil)
				switch {
				case err == nil:
				case errors.Is(err, presence.ErrConflict), errors.Is(err, state.ErrConflict):
					conflicts.Add(1)
				default:
					other.Add(1)
					firstErr.CompareAndSwap(nil, fmt.Sprint(err))
				}
			}()
		}
	}
	wg.Wait()
	if conflicts.Load() != 0 || other.Load() != 0 {
		t.Fatalf("%d of %d changes got 409 conflict, %d other errors (%v)", conflicts.Load(), 2*perReplica, other.Load(), firstErr.Load())
	}
	rows := history(t, a, "a1")
	for i := 1; i < len(rows); i++ {
		if rows[i].From != rows[i-1].To {
			t.Fatalf("history is not a chain at %d", i)
		}
	}
}

// TestDeleteStatusWhileAgentMovesIn: a custom status deleted while an
// agent moves into it never leaves the agent in a deleted status: either
// the move wins and the delete is refused (409), or the delete wins and
// the move is refused (422). 50 rounds, memory and a real Redis.
func TestDeleteStatusWhileAgentMovesIn(t *testing.T) {
	srv := testpeer.StartRedis(t)
	for name, st := range map[string]state.StoreLog{
		"memory": store.NewMemory(),
		"redis":  store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()})),
	} {
		t.Run(name, func(t *testing.T) {
			defer st.Close()
			svc := presence.NewService(st)
			ctx := context.Background()
			if _, err := svc.CreateAgent(ctx, admin, presence.AgentInput{ID: ptr("a1"), Name: ptr("A1"), Email: ptr("a1@example.com")}); err != nil {
				t.Fatal(err)
			}
			moved, deleted := 0, 0
			for round := range 50 {
				id := fmt.Sprintf("tmp%d", round)
				if _, err := svc.SetStatus(ctx, admin, "a1", ptr("unavailable"), nil); err != nil {
					t.Fatal(err)
				}
				if _, err := svc.CreateCallStatus(ctx, admin, presence.CallStatusDef{ID: id, Name: id}); err != nil {
					t.Fatal(err)
				}
				var setErr, delErr error
				var wg sync.WaitGroup
				wg.Add(2)
				go func() { defer wg.Done(); _, setErr = svc.SetStatus(ctx, admin, "a1", ptr(id), nil) }()
				go func() { defer wg.Done(); delErr = svc.DeleteCallStatus(ctx, admin, id) }()
				wg.Wait()
				a, _ := svc.Agent(ctx, "a1")
				_, getErr := st.Get(ctx, state.KindStatus, id)
				gone := errors.Is(getErr, state.ErrNotFound)
				if a.CallStatus == id && gone {
					t.Fatalf("round %d: a1 is in deleted status %s (set: %v, delete: %v)", round, id, setErr, delErr)
				}
				switch {
				case setErr == nil && delErr == nil:
					t.Fatalf("round %d: both the move and the delete succeeded", round)
				case setErr == nil:
					moved++
					if !errors.Is(delErr, presence.ErrConflict) {
						t.Fatalf("round %d: delete refused with %v, want 409", round, delErr)
					}
				default:
					deleted++
				}
			}
			t.Logf("%s: move won %d rounds, delete won %d", name, moved, deleted)
		})
	}
}

// TestDeleteGroupWhileAgentJoins: a group deleted while an agent joins it
// never leaves the agent in a deleted group. 50 rounds on a real Redis.
func TestDeleteGroupWhileAgentJoins(t *testing.T) {
	srv := testpeer.StartRedis(t)
	st := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}))
	defer st.Close()
	svc := presence.NewService(st)
	ctx := context.Background()
	if _, err := svc.CreateAgent(ctx, admin, presence.AgentInput{ID: ptr("a1"), Name: ptr("A1"), Email: ptr("a1@example.com")}); err != nil {
		t.Fatal(err)
	}
	for round := range 50 {
		g := fmt.Sprintf("g%d", round)
		if _, err := svc.UpdateAgent(ctx, admin, "a1", presence.AgentInput{Groups: ptr([]string{})}); err != nil {
			t.Fatal(err)
		}
		if _, err := svc.PutGroup(ctx, admin, g, true, presence.GroupPatch{Name: ptr(g)}); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var joinErr, delErr error
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, joinErr = svc.UpdateAgent(ctx, admin, "a1", presence.AgentInput{Groups: ptr([]string{g})})
		}()
		go func() { defer wg.Done(); delErr = svc.DeleteGroup(ctx, admin, g) }()
		wg.Wait()
		a, _ := svc.Agent(ctx, "a1")
		_, _, gerr := svc.Group(ctx, g)
		if a.InGroup(g) && errors.Is(gerr, presence.ErrNotFound) {
			t.Fatalf("round %d: a1 is in deleted group %s (join: %v, delete: %v)", round, g, joinErr, delErr)
		}
		if joinErr == nil && delErr == nil {
			t.Fatalf("round %d: both the join and the delete succeeded", round)
		}
	}
}

// TestKeptCopyNeverDecides: a replica starts a status change from the
// agent it last wrote, so every way that copy can be stale is checked
// here on two Redis replicas: the other replica changed a field this
// change does not touch (kept), made the change a no-op on the copy but
// not in the store (written anyway), and took the agent out of the
// supervisor's groups (refused on the stored record, not the copy).
func TestKeptCopyNeverDecides(t *testing.T) {
	srv := testpeer.StartRedis(t)
	replica := func() *presence.Service {
		st := store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}))
		t.Cleanup(func() { st.Close() })
		return presence.NewService(st)
	}
	a, b, c := replica(), replica(), replica()
	ctx := context.Background()
	for _, g := range []string{"sales", "support"} {
		if _, err := a.PutGroup(ctx, admin, g, true, presence.GroupPatch{Name: ptr(g)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.CreateAgent(ctx, admin, presence.AgentInput{ID: ptr("a1"), Name: ptr("A1"), Email: ptr("a1@example.com"),
		Groups: ptr([]string{"sales"})}); err != nil {
		t.Fatal(err)
	}
	set := func(svc *presence.Service, actor presence.Actor, call, chat *string) (presence.Agent, error) {
		t.Helper()
		return svc.SetStatus(ctx, actor, "a1", call, chat)
	}
	if _, err := set(a, admin, ptr(presence.StatusAvailable), nil); err != nil {
		t.Fatal(err)
	}
	// b changes the chat status; a's next call status change keeps it.
	if got, err := set(b, admin, nil, ptr(presence.ChatAvailable)); err != nil || got.Version != 3 {
		t.Fatalf("b's chat change: %+v, %v; want version 3", got, err)
	}
	got, err := set(a, admin, ptr(presence.StatusShortBreak), nil)
	if err != nil || got.ChatStatus != presence.ChatAvailable || got.CallStatus != presence.StatusShortBreak {
		t.Fatalf("after b's chat change: %+v, %v; want short_break with chat available", got, err)
	}
	// c moves the agent back to available; a asks for short_break, which
	// a's copy already shows: the store decides and it is written.
	if _, err := set(c, admin, ptr(presence.StatusAvailable), nil); err != nil {
		t.Fatal(err)
	}
	if got, err := set(a, admin, ptr(presence.StatusShortBreak), nil); err != nil || got.CallStatus != presence.StatusShortBreak {
		t.Fatalf("no-op on the copy: %+v, %v", got, err)
	}
	if stored, err := b.Agent(ctx, "a1"); err != nil || stored.CallStatus != presence.StatusShortBreak {
		t.Fatalf("stored after the no-op on the copy: %+v, %v; want short_break", stored, err)
	}
	// A supervisor of support may not manage a1 (sales) on a's copy;
	// b moves a1 to support, so on the stored record they may.
	sup := presence.Actor{ID: "sup", Role: presence.RoleSupervisor, Supervises: []string{"support"}}
	if _, err := b.UpdateAgent(ctx, admin, "a1", presence.AgentInput{Groups: ptr([]string{"support"})}); err != nil {
		t.Fatal(err)
	}
	if got, err := set(a, sup, ptr(presence.StatusAvailable), nil); err != nil || got.CallStatus != presence.StatusAvailable {
		t.Fatalf("refused on the copy: %+v, %v; want allowed on the stored record", got, err)
	}
}
