package routing_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// BenchmarkFloorMemory holds a floor of 10,000 agents (one group) and
// 5,000 live answered calls in the in-memory store with the engine
// running, and reports the Go heap in use and the process's resident set
// afterwards (docs/performance.md, Memory). One op does nothing: the
// figure is the state held, not a rate.
func BenchmarkFloorMemory(b *testing.B) {
	agents, calls := benchFloorSize()
	f := newFloor(b, nil, time.Time{})
	grp := []string{"floor"}
	if _, err := f.agents.PutGroup(f.ctx, presence.System, "floor", true, presence.GroupPatch{Name: &grp[0]}); err != nil {
		b.Fatal(err)
	}
	for i := range agents {
		f.addAgent(fmt.Sprintf("m%05d", i), presence.RoleAgent, grp...)
	}
	f.addQueue("main", routing.LongestIdle, 0, grp)
	// Calls arrive and are answered in batches, as on a floor filling up
	// (all 5,000 waiting at once would make one pass match each against
	// 10,000 agents, which is not what this measures).
	const batch = 250
	answered := 0
	for start := 0; start < calls; start += batch {
		for i := start; i < min(start+batch, calls); i++ {
			f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: media.LegID(fmt.Sprintf("mem-%d", i)),
				Caller: fmt.Sprintf("+849010%05d", i), Hotline: "+842800"})
		}
		f.flush()
		dials := f.media.Dials()
		for _, d := range dials[answered:] {
			f.eng.Report(media.LegAnswered{FactBase: f.at(), Leg: d.Result})
		}
		answered = len(dials)
		f.flush()
	}
	if answered != calls {
		b.Fatalf("%d calls dialled %d agents", calls, answered)
	}
	live, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{State: string(routing.StateAnswered)})
	if err != nil || len(live) != calls {
		b.Fatalf("%d answered calls (%v)", len(live), err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for b.Loop() {
	}
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
	b.ReportMetric(float64(rssBytes(b))/(1<<20), "rss-MB")
}

// rssBytes reads this process's resident set from /proc/self/status.
func rssBytes(b *testing.B) int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Skip("no /proc/self/status")
	}
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// benchFloorSize is 10,000 agents and 5,000 calls, or FLOOR_AGENTS and
// FLOOR_CALLS when set (to see how the figure scales).
func benchFloorSize() (agents, calls int) {
	agents, calls = 10000, 5000
	if v, err := strconv.Atoi(os.Getenv("FLOOR_AGENTS")); err == nil && v > 0 {
		agents = v
	}
	if v, err := strconv.Atoi(os.Getenv("FLOOR_CALLS")); err == nil && v > 0 {
		calls = v
	}
	return agents, calls
}
