package media

import (
	"reflect"
	"testing"
	"time"
)

// TestSnapshotFactsOrder pins the one order every path reports a resync
// in: live legs, then ends, then answers, then devices.
func TestSnapshotFactsOrder(t *testing.T) {
	at := time.Unix(1795292296, 0)
	b := FactBase{At: at}
	s := Snapshot{
		At:       at,
		Legs:     []LegSnapshot{{Leg: "cust", Answered: true, Caller: "+84901234567", Hotline: "+842873000001"}},
		Ended:    []Fact{LegEnded{FactBase: b, Leg: "gone", Cause: CauseNormal}},
		Answered: []Fact{LegAnswered{FactBase: b, Leg: "agent"}},
		Devices:  []Fact{DeviceState{FactBase: b, AgentID: "a1", Registered: true}},
	}
	want := []Fact{
		LegsPresent{FactBase: b, Legs: s.Legs},
		LegEnded{FactBase: b, Leg: "gone", Cause: CauseNormal},
		LegAnswered{FactBase: b, Leg: "agent"},
		DeviceState{FactBase: b, AgentID: "a1", Registered: true},
	}
	if got := s.Facts(); !reflect.DeepEqual(got, want) {
		t.Fatalf("facts = %+v", got)
	}
	// An empty snapshot still says "no legs": routing ends every call.
	if got := (Snapshot{At: at}).Facts(); len(got) != 1 || len(got[0].(LegsPresent).Legs) != 0 {
		t.Fatalf("empty snapshot = %+v", got)
	}
}
