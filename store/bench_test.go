package store

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/state"
)

// benchStores yields a fresh memory store and a store on a real Redis.
func benchStores(b *testing.B, run func(b *testing.B, s state.StoreLog)) {
	b.Run("memory", func(b *testing.B) {
		s := NewMemory()
		defer s.Close()
		run(b, s)
	})
	b.Run("redis", func(b *testing.B) {
		srv := testpeer.StartRedis(b)
		s := NewRedis(redis.NewClient(&redis.Options{Addr: srv.Addr()}))
		defer s.Close()
		run(b, s)
	})
}

// typicalTx is one agent status change: the agent record, a history row,
// a counter and the event.
func typicalTx(i int) state.Tx {
	data := []byte(fmt.Sprintf(`{"id":"a%d","status":"available","since":%d}`, i%50, i))
	return state.Tx{
		Puts:    []state.Put{{Kind: state.KindAgent, ID: fmt.Sprintf("a%d", i%50), Data: data, IfVersion: state.AnyVersion}},
		Appends: []state.Append{{Series: fmt.Sprintf("history:a%d", i%50), Entries: []state.Entry{{Score: int64(i), Data: data}}}},
		Incrs:   []state.Incr{{Counter: "stats:2026-11-21", Field: "status_changes", Delta: 1}},
		Events:  []state.NewEvent{{Type: "agent", Scope: state.Scope{Agent: fmt.Sprintf("a%d", i%50), Groups: []string{"sales"}}, Data: data}},
	}
}

// BenchmarkCommit commits typicalTx; on Redis it also reports the
// server's own time per commit script (server-us/op, from INFO
// commandstats), which bounds a replica's ingest (docs/performance.md,
// Ingest).
func BenchmarkCommit(b *testing.B) {
	benchStores(b, func(b *testing.B, s state.StoreLog) {
		ctx := context.Background()
		b.ReportAllocs()
		r, onRedis := s.(*Redis)
		if onRedis {
			r.client.ConfigResetStat(ctx)
		}
		for i := 0; b.Loop(); i++ {
			if _, err := s.Commit(ctx, typicalTx(i)); err != nil {
				b.Fatal(err)
			}
		}
		if onRedis {
			b.ReportMetric(scriptUsecPerCall(b, r), "server-us/op")
		}
	})
}

// scriptUsecPerCall is the server's mean time per EVALSHA since the
// last CONFIG RESETSTAT.
func scriptUsecPerCall(b *testing.B, r *Redis) float64 {
	info, err := r.client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if !strings.HasPrefix(line, "cmdstat_evalsha:") {
			continue
		}
		for _, f := range strings.Split(strings.TrimPrefix(line, "cmdstat_evalsha:"), ",") {
			if v, ok := strings.CutPrefix(f, "usec_per_call="); ok {
				n, err := strconv.ParseFloat(v, 64)
				if err != nil {
					b.Fatal(err)
				}
				return n
			}
		}
	}
	return 0
}

// BenchmarkReadAfter reads pages of 100 events from a 1,000-event log, as
// a catching-up SSE client does; events/s is the read throughput.
func BenchmarkReadAfter(b *testing.B) {
	benchStores(b, func(b *testing.B, s state.StoreLog) {
		ctx := context.Background()
		var ids []string
		for i := 0; i < 1000; i++ {
			evs, err := s.Commit(ctx, typicalTx(i))
			if err != nil {
				b.Fatal(err)
			}
			ids = append(ids, evs[0].ID)
		}
		const page = 100
		b.ReportAllocs()
		read := 0
		for i := 0; b.Loop(); i++ {
			evs, err := s.ReadAfter(ctx, ids[(i*page)%(len(ids)-page)], page, 0)
			if err != nil || len(evs) != page {
				b.Fatalf("ReadAfter = %d events, %v", len(evs), err)
			}
			read += len(evs)
		}
		b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
	})
}
