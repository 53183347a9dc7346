package ari

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
// on the Asterisk path: the fake Asterisk with the recorded event shapes,
// the real engine and presence, phones played as the suite says.
func TestFloorRules(t *testing.T) {
	floortest.Run(t, func(t *testing.T) floortest.Floor { return newARIFloor(t) })
}

// ariFloor plays each originated channel's phone by its device's
// behaviour, as soon as the channel exists.
type ariFloor struct {
	h *e2e

	mu      sync.Mutex
	devices map[string]floortest.Behaviour // endpoint resource → behaviour
	played  map[string]bool                // channel ids already played
	late    map[string]bool                // ringing channels that answer on Elapse
	callers int
}

func newARIFloor(t *testing.T) *ariFloor {
	// The leg audit runs as in production: the ghost call rule relies on it.
	fl := &ariFloor{h: startE2EAudit(t, routing.DefaultLegAudit), devices: map[string]floortest.Behaviour{}, played: map[string]bool{}, late: map[string]bool{}}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
				fl.play()
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	return fl
}

func (fl *ariFloor) Engine() *routing.Engine              { return fl.h.eng }
func (fl *ariFloor) Presence() *presence.Service          { return fl.h.svc }
func (fl *ariFloor) Capabilities() media.Capabilities     { return fl.h.c.Capabilities() }
func (fl *ariFloor) RingTimeout() time.Duration           { return 18 * time.Second }
func (fl *ariFloor) Elapse(_ *testing.T, d time.Duration) { fl.elapse(d) }

func (fl *ariFloor) Device(_ *testing.T, user string, b floortest.Behaviour) {
	fl.mu.Lock()
	fl.devices[user] = b
	fl.mu.Unlock()
	fl.h.f.mu.Lock()
	registered := fl.h.f.registered(user)
	fl.h.f.mu.Unlock()
	if want := b != floortest.Unregistered; registered != want {
		fl.h.f.Register(user, want)
	}
}

// Number: the trunk's channel for a number is PJSIP/<number>@trunk.
func (fl *ariFloor) Number(_ *testing.T, number string, b floortest.Behaviour) {
	fl.mu.Lock()
	fl.devices[number+"@trunk"] = b
	fl.mu.Unlock()
}

// play acts out the phone of every originated channel not played yet.
func (fl *ariFloor) play() {
	fl.mu.Lock()
	defer fl.mu.Unlock()
	f := fl.h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, id := range f.sortedChans() {
		ch := f.chans[id]
		b, ok := fl.devices[ch.endpoint]
		if !ch.originated || fl.played[id] || !ok {
			continue
		}
		fl.played[id] = true
		switch b {
		case floortest.Answer:
			f.ringLocked(ch)
			f.answerLocked(ch)
		case floortest.AnswerLate:
			f.ringLocked(ch)
			fl.late[id] = true
		case floortest.RingOut:
			f.ringLocked(ch)
		case floortest.NoAnswer:
			f.ringLocked(ch)
			f.destroyed(ch, 19, "User alerting, no answer")
		case floortest.Busy:
			f.failLocked(ch, 17, "User busy", "BUSY")
		case floortest.Decline:
			f.failLocked(ch, 21, "Call Rejected", "BUSY")
		}
	}
}

func (fl *ariFloor) elapse(d time.Duration) {
	// Routing records a ring before it originates: wait for the channels
	// of the devices that answer late, so they answer now.
	deadline := time.Now().Add(5 * time.Second)
	for !fl.lateRinging() && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	fl.mu.Lock()
	f := fl.h.f
	f.mu.Lock()
	for id := range fl.late {
		if ch := f.chans[id]; ch != nil && !ch.inStasis {
			f.answerLocked(ch)
		}
		delete(fl.late, id)
	}
	f.mu.Unlock()
	fl.mu.Unlock()
	fl.h.advance(d)
}

// ariCaller is a trunk channel in Stasis.
type ariCaller struct {
	f  *fakeARI
	id string
}

func (fl *ariFloor) Call(_ *testing.T, hotline string) floortest.Caller {
	fl.mu.Lock()
	fl.callers++
	n := fl.callers
	fl.mu.Unlock()
	return ariCaller{fl.h.f, fl.h.f.Inbound(fmt.Sprintf("8490700%04d", n), hotline)}
}

// Hangup: the trunk hangs up (BYE or CANCEL upstream): the channel ends.
func (c ariCaller) Hangup(*testing.T) { c.f.RemoteHangup(c.id) }

func (fl *ariFloor) Cleared(t *testing.T, user string) {
	t.Helper()
	fl.h.eventually("no channel to "+user, func() error {
		f := fl.h.f
		f.mu.Lock()
		defer f.mu.Unlock()
		for id, ch := range f.chans {
			if ch.endpoint == user {
				return fmt.Errorf("channel %s (%s) still %s", id, ch.name, ch.state)
			}
		}
		return nil
	})
}

// Vanish: Asterisk loses the device's answered channel with no event.
func (fl *ariFloor) Vanish(t *testing.T, user string) {
	t.Helper()
	f := fl.h.f
	f.mu.Lock()
	var gone []string
	for id, ch := range f.chans {
		if ch.endpoint == user && ch.state == "Up" {
			gone = append(gone, id)
		}
	}
	f.mu.Unlock()
	if len(gone) == 0 {
		t.Fatalf("no answered channel to %s", user)
	}
	for _, id := range gone {
		f.Vanish(id)
	}
}

// lateRinging: every device that answers late has a channel played.
func (fl *ariFloor) lateRinging() bool {
	fl.play()
	fl.mu.Lock()
	defer fl.mu.Unlock()
	f := fl.h.f
	f.mu.Lock()
	defer f.mu.Unlock()
	for user, b := range fl.devices {
		if b != floortest.AnswerLate {
			continue
		}
		found := false
		for id, ch := range f.chans {
			found = found || ch.endpoint == user && fl.late[id]
		}
		if !found {
			return false
		}
	}
	return true
}
