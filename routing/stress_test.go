package routing_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// Many goroutines at once — the media path reporting arrivals, answers
// and hang-ups, agents changing status, supervisors acting — on the real
// race detector: the engine must neither race, deadlock nor leave calls
// and agents disagreeing.
func TestConcurrentTraffic(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("sup", presence.RoleSupervisor)
	f.setStatus("sup", presence.StatusUnavailable)
	f.addGroup("g", "sup")
	var agents []string
	for i := range 12 {
		id := fmt.Sprintf("a%02d", i)
		f.addAgent(id, presence.RoleAgent, "g")
		agents = append(agents, id)
	}
	f.addQueue("main", routing.LongestIdle, 0, []string{"g"})
	sup := f.actor("sup")
	var wg sync.WaitGroup
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				leg := media.LegID(fmt.Sprintf("w%d-c%d", w, i))
				f.eng.Report(media.CallArrived{FactBase: f.at(), Leg: leg, Caller: fmt.Sprintf("+849010%05d", w*100+i%3), Hotline: "+842800"})
				for _, d := range f.media.Dials() {
					if (w+i)%3 == 0 {
						f.eng.Report(media.LegAnswered{FactBase: f.at(), Leg: d.Result})
					}
				}
				calls, _ := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
				for k, c := range calls {
					switch (w + i + k) % 5 {
					case 0:
						_, _ = f.eng.StartMonitor(f.ctx, sup, c.ID, media.MonitorListen, "")
					case 1:
						_, _ = f.eng.Transfer(f.ctx, sup, c.ID, agents[(w+i+k)%len(agents)])
					case 2:
						_, _ = f.eng.Hangup(f.ctx, sup, c.ID)
					}
				}
				st := []string{presence.StatusAvailable, presence.StatusShortBreak}[(w+i)%2]
				_, _ = f.agents.SetStatus(f.ctx, presence.System, agents[(w*3+i)%len(agents)], &st, nil)
				f.eng.Kick()
				if i%4 == 0 {
					f.eng.Report(media.LegEnded{FactBase: f.at(), Leg: leg, Cause: media.CauseNormal})
				}
			}
		}()
	}
	wg.Wait()
	f.flush()
	f.checkInvariants(t, "after concurrent traffic")
	// Everyone hangs up: nothing may stay stuck.
	calls, _ := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	for _, c := range calls {
		if _, err := f.eng.Hangup(f.ctx, f.admin, c.ID); err != nil {
			t.Fatalf("hang up %s: %v", c.ID, err)
		}
	}
	f.flush()
	f.checkInvariants(t, "after hanging everything up")
	for _, id := range agents {
		if a := f.agent(id); a.CallID != nil {
			t.Fatalf("agent %s still on %s", id, *a.CallID)
		}
	}
}
