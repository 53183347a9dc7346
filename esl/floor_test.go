package esl

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/floortest"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestFloorRules runs the floor's behaviour suite (internal/floortest)
// on the FreeSWITCH path: the reactive FreeSWITCH simulation, the real
// engine and presence, each device dialled as the suite says.
func TestFloorRules(t *testing.T) {
	floortest.Run(t, func(t *testing.T) floortest.Floor { return &eslFloor{f: newE2E(t)} })
}

type eslFloor struct {
	f *e2e

	mu      sync.Mutex
	late    map[string]bool // endpoints that answer on Elapse
	callers int
}

func (fl *eslFloor) Engine() *routing.Engine          { return fl.f.eng }
func (fl *eslFloor) Presence() *presence.Service      { return fl.f.svc }
func (fl *eslFloor) Capabilities() media.Capabilities { return fl.f.cl.Capabilities() }
func (fl *eslFloor) RingTimeout() time.Duration       { return 18 * time.Second }

var simBehavior = map[floortest.Behaviour]dialBehavior{
	floortest.Answer: dialAnswer, floortest.AnswerLate: dialRing, floortest.RingOut: dialRing,
	floortest.NoAnswer: dialNoAnswer, floortest.Busy: dialBusy, floortest.Decline: dialDecline,
	floortest.Unregistered: dialUnregistered,
}

func (fl *eslFloor) Device(_ *testing.T, user string, b floortest.Behaviour) {
	fl.mu.Lock()
	if fl.late == nil {
		fl.late = map[string]bool{}
	}
	fl.late[dev(user)] = b == floortest.AnswerLate
	fl.mu.Unlock()
	fl.f.fs.setBehavior(dev(user), simBehavior[b])
}

// Number: the gateway the client dials numbers through.
func (fl *eslFloor) Number(_ *testing.T, number string, b floortest.Behaviour) {
	fl.f.fs.setBehavior("sofia/gateway/trunk/"+number, simBehavior[b])
}

// Elapse answers the ringing legs of late-answering devices (waiting for
// their originate: routing records a ring before it dials), then moves
// the shared clock.
func (fl *eslFloor) Elapse(t *testing.T, d time.Duration) {
	fl.mu.Lock()
	var late []string
	for ep, on := range fl.late {
		if on {
			late = append(late, ep)
		}
	}
	fl.mu.Unlock()
	for _, ep := range late {
		deadline := time.Now().Add(5 * time.Second)
		for fl.ringing(ep) == "" && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		if uuid := fl.ringing(ep); uuid != "" {
			fl.f.fs.answerLeg(uuid)
		}
	}
	fl.f.advance(d)
}

// ringing is the uuid of an unanswered leg ringing endpoint, or "".
func (fl *eslFloor) ringing(ep string) string {
	s := fl.f.fs
	s.mu.Lock()
	defer s.mu.Unlock()
	for uuid, ch := range s.chans {
		if ch.endpoint == ep && !ch.answered {
			return uuid
		}
	}
	return ""
}

// Vanish: FreeSWITCH loses the device's answered leg with no event.
func (fl *eslFloor) Vanish(t *testing.T, user string) {
	t.Helper()
	s := fl.f.fs
	s.mu.Lock()
	var gone []string
	for uuid, ch := range s.chans {
		if ch.endpoint == dev(user) && ch.answered {
			gone = append(gone, uuid)
		}
	}
	s.mu.Unlock()
	if len(gone) == 0 {
		t.Fatalf("no answered leg to %s", user)
	}
	for _, uuid := range gone {
		s.vanish(uuid)
	}
}

type eslCaller struct {
	fs   *simFS
	uuid string
}

func (fl *eslFloor) Call(_ *testing.T, hotline string) floortest.Caller {
	fl.mu.Lock()
	fl.callers++
	n := fl.callers
	fl.mu.Unlock()
	c := eslCaller{fl.f.fs, custUUID(n)}
	fl.f.fs.inbound(c.uuid, fmt.Sprintf("8490700%04d", n), hotline)
	return c
}

// Hangup: the trunk leg hangs up.
func (c eslCaller) Hangup(*testing.T) { c.fs.bye(c.uuid) }

func (fl *eslFloor) Cleared(t *testing.T, user string) {
	t.Helper()
	ep := dev(user)
	fl.f.eventually("no leg to "+ep, func() error {
		s := fl.f.fs
		s.mu.Lock()
		defer s.mu.Unlock()
		for uuid, ch := range s.chans {
			if ch.endpoint == ep {
				return fmt.Errorf("leg %s still up (answered %v)", uuid, ch.answered)
			}
		}
		return nil
	})
}
