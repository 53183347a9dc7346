package routing

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

type stepClock struct{ t time.Time }

func (c *stepClock) Now() time.Time { return c.t }
func (c *stepClock) AfterFunc(time.Duration, func()) Timer {
	panic("parking sets no timers")
}

// Facts parked for a leg nobody binds are dropped parkTTL after the first
// of them, whatever order legs come and go in; a leg bound in time gets
// its facts and a later parking of the same leg starts its own TTL.
func TestParkedFactsExpireInOrder(t *testing.T) {
	clk := &stepClock{t: time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)}
	e := &Engine{clock: clk, intake: newIntake(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	park := func(leg string) { e.routeLeg(media.LegID(leg), media.LegEnded{Leg: media.LegID(leg)}) }
	parkedLegs := func() string {
		e.intake.mu.Lock()
		defer e.intake.mu.Unlock()
		return fmt.Sprint(len(e.intake.parked), len(e.intake.parkOrder)-e.intake.parkHead)
	}
	park("a")
	park("a") // same leg: one entry in the order
	clk.t = clk.t.Add(10 * time.Second)
	park("b")
	park("c")
	e.intake.mu.Lock()
	delete(e.intake.parked, "c") // as bindLeg does when c's Dial returns
	e.intake.mu.Unlock()
	if got := parkedLegs(); got != "2 3" {
		t.Fatalf("parked, ordered = %s, want 2 3", got)
	}
	clk.t = clk.t.Add(21 * time.Second) // a is 31 s old, b 21 s
	park("c")                           // c parked again: its own TTL
	e.sweepParked()
	if _, ok := e.intake.parked["a"]; ok {
		t.Fatal("a outlived parkTTL")
	}
	if got := parkedLegs(); got != "2 3" {
		t.Fatalf("after the first sweep: parked, ordered = %s, want 2 3 (b, c; c's old entry still queued)", got)
	}
	clk.t = clk.t.Add(10 * time.Second) // b 31 s, the old c entry 31 s, the new c 10 s
	e.sweepParked()
	if _, ok := e.intake.parked["c"]; !ok {
		t.Fatal("c's second parking was dropped by its first parking's TTL")
	}
	if got := parkedLegs(); got != "1 1" {
		t.Fatalf("after the second sweep: parked, ordered = %s, want 1 1", got)
	}
	clk.t = clk.t.Add(21 * time.Second)
	e.sweepParked()
	if got := parkedLegs(); got != "0 0" {
		t.Fatalf("after the last sweep: parked, ordered = %s, want 0 0", got)
	}
}
