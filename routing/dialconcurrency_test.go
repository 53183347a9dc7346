package routing_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
)

// A dial the media server is slow to answer holds up its own call only:
// the dispatcher waits for an offer's reservation, not its dial, so the
// next waiting call is offered and dialled meanwhile (on Asterisk under
// load every dial's round trip used to queue each later call behind it).
func TestSlowDialDoesNotHoldUpOtherCalls(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addGroup("sales")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addAgent("a2", presence.RoleAgent, "sales")
	f.addQueue("main", routing.LongestIdle, 30, []string{"a1", "a2"}, "+842800")

	var mu sync.Mutex
	dials := 0
	release := make(chan struct{})
	second := make(chan struct{})
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op != "dial" {
			return nil
		}
		mu.Lock()
		dials++
		n := dials
		mu.Unlock()
		switch n {
		case 1:
			<-release // the media server sits on the first dial
		case 2:
			close(second)
		}
		return nil
	}
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-1", Caller: "+84901000001", Hotline: "+842800"})
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-2", Caller: "+84901000002", Hotline: "+842800"})
	select {
	case <-second:
	case <-time.After(10 * time.Second):
		close(release)
		t.Fatal("the second call was not dialled while the first call's dial was outstanding")
	}
	close(release)
	f.flush()
	for _, a := range []string{"a1", "a2"} {
		f.wantSys(a, presence.SysRinging)
	}
	if d := f.media.Dials(); len(d) != 2 || d[0].Dial.CallID == d[1].Dial.CallID {
		t.Fatalf("dials %+v, want one for each call", d)
	}
}

// A pass starts the reservations of all its offers before it waits for
// any: a call whose loop is busy (here its caller's hold is slow to
// answer) holds up its own offer only, and the calls after it on other
// loops are offered and dialled meanwhile.
func TestBusyLoopDoesNotHoldUpOtherOffers(t *testing.T) {
	f := newFloor(t, nil, time.Time{}, routing.WithPassSpacing(300*time.Millisecond))
	f.addGroup("sales")
	agents := []string{"a1", "a2", "a3", "a4"}
	for _, a := range agents {
		f.addAgent(a, presence.RoleAgent, "sales")
	}
	f.addQueue("main", routing.LongestIdle, 30, agents, "+842800")
	f.flush()

	release := make(chan struct{})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	defer unblock()
	dialled := make(chan string, 8)
	f.media.Fail = func(c routingtest.Command) error {
		switch {
		case c.Op == "hold" && c.Leg == "cust-1":
			<-release // the first caller's loop sits on its hold
		case c.Op == "dial":
			dialled <- c.Dial.CallID
		}
		return nil
	}
	calls := func(n int) []routing.CallView {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			cs, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(cs) >= n {
				return cs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d calls recorded, want %d", len(cs), n)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// The first call is recorded as waiting before its hold; it sorts
	// first (enqueued first, lowest id), so the pass offers it first.
	f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: "cust-1", Caller: "+84901000001", Hotline: "+842800"})
	first := calls(1)[0].ID
	for i := 2; i <= 4; i++ {
		f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: media.LegID(fmt.Sprintf("cust-%d", i)),
			Caller: fmt.Sprintf("+8490100000%d", i), Hotline: "+842800"})
	}
	others := 0
	for _, c := range calls(4) {
		if c.ID != first && !routing.SameLoop(f.eng, first, c.ID) {
			others++
		}
	}
	if others == 0 {
		t.Fatal("every call landed on the first call's loop: this test needs other ids")
	}
	for range others {
		select {
		case id := <-dialled:
			if id == first {
				t.Fatalf("the first call was dialled while its loop was busy")
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("the calls on other loops were not dialled while the first call's loop was busy")
		}
	}
	unblock()
	f.flush()
	for _, a := range agents {
		f.wantSys(a, presence.SysRinging)
	}
}
