package routingtest

import (
	"slices"
	"testing"
	"time"
)

func TestClockFiresDueTimersInOrder(t *testing.T) {
	c := NewClock(time.Unix(0, 0))
	var got []string
	c.AfterFunc(3*time.Second, func() { got = append(got, "3s") })
	stopped := c.AfterFunc(2*time.Second, func() { got = append(got, "stopped") })
	c.AfterFunc(time.Second, func() {
		got = append(got, "1s")
		// A timer set by a timer fires in the same Advance when due.
		c.AfterFunc(time.Second, func() { got = append(got, "1s+1s") })
	})
	c.AfterFunc(10*time.Second, func() { got = append(got, "10s") })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report true once, then false")
	}
	c.Advance(5 * time.Second)
	if want := []string{"1s", "1s+1s", "3s"}; !slices.Equal(got, want) {
		t.Fatalf("fired %v, want %v", got, want)
	}
	if !c.Now().Equal(time.Unix(5, 0)) || c.Pending() != 1 {
		t.Fatalf("now %v pending %d", c.Now(), c.Pending())
	}
}
