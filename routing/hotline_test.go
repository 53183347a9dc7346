package routing_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// TestConcurrentHotlineClaims: 20 concurrent creates of queues for one
// hotline leave exactly one queue owning it (the others are 409 naming
// the owner), on memory and on a real Redis; deleting the owner frees
// the hotline, and an update that moves a hotline releases the old one.
func TestConcurrentHotlineClaims(t *testing.T) {
	srv := testpeer.StartRedis(t)
	for name, open := range map[string]func() state.StoreLog{
		"memory": func() state.StoreLog { return store.NewMemory() },
		"redis": func() state.StoreLog {
			return store.NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}),
				store.WithPrefix(fmt.Sprintf("{routing%d}:", redisPrefixes.Add(1))))
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFloorOn(t, open(), nil, time.Time{})
			const n = 20
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id, hl := fmt.Sprintf("q%d", i), []string{"+842899"}
					_, errs[i] = f.eng.CreateQueue(f.ctx, f.admin, routing.QueueInput{ID: &id, Hotlines: &hl})
				}()
			}
			wg.Wait()
			owners := 0
			for i, err := range errs {
				switch {
				case err == nil:
					owners++
				case !errors.Is(err, presence.ErrConflict) || !strings.Contains(err.Error(), "hotline +842899 already routes to queue"):
					t.Errorf("create q%d: %v, want a hotline conflict", i, err)
				}
			}
			qs, err := f.eng.Queues(f.ctx, f.admin)
			if err != nil {
				t.Fatal(err)
			}
			var holding []string
			for _, q := range qs {
				for _, h := range q.Hotlines {
					if h == "+842899" {
						holding = append(holding, q.ID)
					}
				}
			}
			if owners != 1 || len(holding) != 1 {
				t.Fatalf("%d creates succeeded, queues holding the hotline %v; want exactly one", owners, holding)
			}
			owner := holding[0]

			// Moving the hotline away releases it; deleting frees the new one.
			moved := []string{"+842898"}
			if _, err := f.eng.UpdateQueue(f.ctx, f.admin, owner, routing.QueueInput{Hotlines: &moved}); err != nil {
				t.Fatal(err)
			}
			id, hl := "again", []string{"+842899"}
			if _, err := f.eng.CreateQueue(f.ctx, f.admin, routing.QueueInput{ID: &id, Hotlines: &hl}); err != nil {
				t.Fatalf("hotline released by the update not reusable: %v", err)
			}
			if err := f.eng.DeleteQueue(f.ctx, f.admin, owner); err != nil {
				t.Fatal(err)
			}
			id2, hl2 := "after-delete", []string{"+842898"}
			if _, err := f.eng.CreateQueue(f.ctx, f.admin, routing.QueueInput{ID: &id2, Hotlines: &hl2}); err != nil {
				t.Fatalf("hotline of a deleted queue not reusable: %v", err)
			}
		})
	}
}
