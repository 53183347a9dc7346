package routing_test

import (
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
