package ari

import (
	"testing"
	"time"
)

func TestEventTime(t *testing.T) {
	want := time.Date(2026, 11, 21, 3, 4, 5, 678e6, time.UTC)
	raw := []byte(`{"type":"StasisStart","timestamp":"2026-11-21T03:04:05.678+0000","application":"callfloor"}`)
	if got := eventTime(raw); !got.Equal(want) {
		t.Fatalf("eventTime = %v, want %v", got, want)
	}
	for _, bad := range []string{`{"type":"X"}`, `{"timestamp":"yesterday"}`, `{"timestamp":"2026-11-21T03:04:05`} {
		if got := eventTime([]byte(bad)); !got.IsZero() {
			t.Errorf("eventTime(%s) = %v, want zero", bad, got)
		}
	}
}

func FuzzEventTime(f *testing.F) {
	f.Add([]byte(`{"timestamp":"2026-11-21T03:04:05.678+0000"}`))
	f.Add([]byte(`"timestamp":"`))
	f.Fuzz(func(t *testing.T, data []byte) { _ = eventTime(data) })
}

// TestEventLagOffset: the smallest difference seen is the clocks' offset,
// not lag; only what exceeds it counts, and a new connection forgets it.
func TestEventLagOffset(t *testing.T) {
	l := eventLag{max: time.Second}
	now := time.Unix(1795292296, 0)
	if d := l.observe(now.Add(-time.Hour), now); d != 0 || l.over() {
		t.Fatalf("first event: lag %v", d)
	}
	if d := l.observe(now.Add(-time.Hour-3*time.Second), now); d != 3*time.Second || !l.over() {
		t.Fatalf("3 s late: lag %v over %v", d, l.over())
	}
	l.reset()
	if d := l.observe(now.Add(-time.Hour-3*time.Second), now); d != 0 || l.over() {
		t.Fatalf("after reset: lag %v", d)
	}
	off := eventLag{}
	off.observe(now.Add(-time.Hour), now.Add(time.Minute))
	if off.over() {
		t.Fatal("max 0 refuses calls")
	}
}
