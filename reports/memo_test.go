package reports

import (
	"context"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/callfloor/callfloor/state"
)

// TestMemoForgetsEndedCalls: after whole calls are projected the memo
// holds their agents only, and an Apply from a position other than where
// its last commit left the cursor starts from nothing.
func TestMemoForgetsEndedCalls(t *testing.T) {
	ctx := context.Background()
	d, err := OpenSQLite(ctx, filepath.Join(t.TempDir(), "reports.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	start := time.Now().UTC().Truncate(time.Second)
	var evs []state.Event
	for i := range 60 {
		evs = append(evs, callEvents(i, start.Add(time.Duration(i)*time.Second))...)
	}
	for i := range evs {
		evs[i].ID = strconv.Itoa(i + 1)
	}
	pos := ""
	for i := 0; i < len(evs); i += 10 {
		batch := evs[i:min(i+10, len(evs))]
		if err := d.Apply(ctx, pos, "", batch, start); err != nil {
			t.Fatal(err)
		}
		pos = batch[len(batch)-1].ID
	}
	if len(d.memo.calls) != 0 || len(d.memo.agents) != 50 || d.memo.entries != 50 || d.memo.pos != pos {
		t.Fatalf("memo holds %d calls, %d agents, %d entries at %q; want 0, 50, 50 at %q",
			len(d.memo.calls), len(d.memo.agents), d.memo.entries, d.memo.pos, pos)
	}
	b := d.memo.batch("elsewhere", "", start)
	if _, ok := b.agent("a1"); ok || d.memo.entries != 0 {
		t.Fatalf("a batch from another position still knows a1 (%d entries)", d.memo.entries)
	}
}

// TestMemoBounded: merged entries are counted, a forgotten call leaves
// with its attempts, and past memoMaxEntries everything goes.
func TestMemoBounded(t *testing.T) {
	now := time.Now()
	m := &memo{}
	b := m.batch("", "", now)
	for i := range 3 {
		b.putCall("c"+strconv.Itoa(i), &memoCall{startedMs: now.UnixMilli(), attempts: map[string]struct{}{"x": {}, "y": {}}})
	}
	b.putAgent("a1", memoAgent{name: "A"})
	b.putAgent("a1", memoAgent{name: "B"})
	m.merge(b, "1", "e")
	if m.entries != 3*3+1 {
		t.Fatalf("entries %d; want 10", m.entries)
	}
	b = m.batch("1", "e", now)
	if b.call("c0") == nil {
		t.Fatal("c0 not known")
	}
	b.putCall("c0", nil)
	b.putAgent("a1", memoAgent{name: "C"})
	m.merge(b, "2", "e")
	if m.entries != 2*3+1 || m.calls["c0"] != nil || m.agents["a1"].name != "C" {
		t.Fatalf("after forgetting c0: %d entries, %+v", m.entries, m.calls)
	}
	if b := m.batch("2", "e", now.Add(memoMaxAge+time.Minute)); b.call("c1") != nil {
		t.Fatal("a call started more than memoMaxAge ago is trusted")
	}
	b = m.batch("2", "e", now)
	for i := range memoMaxEntries {
		b.putAgent("x"+strconv.Itoa(i), memoAgent{})
	}
	m.merge(b, "3", "e")
	if m.entries != 0 || len(m.calls) != 0 || len(m.agents) != 0 || m.pos != "3" {
		t.Fatalf("past the bound: %d entries, %d calls, %d agents at %q", m.entries, len(m.calls), len(m.agents), m.pos)
	}
}
