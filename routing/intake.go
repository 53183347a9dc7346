package routing

import (
	"context"
	"sync"
	"time"
)

// intake maps legs to calls so a fact reaches its call's ordered loop.
// A fact can race the Dial that created its leg (the media path reports
// LegRinging before Dial has returned to routing); such facts are parked
// and released, in order, when the leg is bound.
type intake struct {
	mu     sync.Mutex
	legs   map[LegID]string
	parked map[LegID][]parkedFact
}

type parkedFact struct {
	f  Fact
	at time.Time
}

// parkTTL bounds how long a fact for an unknown leg waits for its Dial.
const parkTTL = 30 * time.Second

func newIntake() *intake {
	return &intake{legs: make(map[LegID]string), parked: make(map[LegID][]parkedFact)}
}

// Report implements Facts: it queues the fact on its call's loop and
// returns at once.
func (e *Engine) Report(f Fact) {
	if e.isStopped() {
		return
	}
	switch f := f.(type) {
	case CallArrived:
		id := e.newID("c")
		e.bindLeg(f.Leg, id)
		e.submit(id, func(ctx context.Context) { e.onArrived(ctx, id, f) })
	case DeviceState:
		// Presence, not calls: ordered per agent on the agent's shard.
		e.submit("agent:"+f.AgentID, func(ctx context.Context) { e.onDevice(ctx, f) })
	case LegsPresent:
		e.onLegsPresent(f)
	case LegRinging:
		e.routeLeg(f.Leg, f)
	case LegAnswered:
		e.routeLeg(f.Leg, f)
	case LegEnded:
		e.routeLeg(f.Leg, f)
	case DTMF:
		// No IVR runs in routing: digits are logged for troubleshooting.
		e.log.Debug("dtmf ignored", "leg", f.Leg, "digit", f.Digit)
	default:
		e.log.Warn("unknown fact", "type", f)
	}
}

// routeLeg sends a leg's fact to its call, or parks it until the leg is
// bound.
func (e *Engine) routeLeg(leg LegID, f Fact) {
	in := e.intake
	in.mu.Lock()
	callID, ok := in.legs[leg]
	if !ok {
		in.parked[leg] = append(in.parked[leg], parkedFact{f: f, at: e.now()})
		in.mu.Unlock()
		return
	}
	in.mu.Unlock()
	e.submit(callID, func(ctx context.Context) { e.onLegFact(ctx, callID, f) })
}

// bindLeg records that leg belongs to callID and releases parked facts.
func (e *Engine) bindLeg(leg LegID, callID string) {
	if leg == "" {
		return
	}
	in := e.intake
	in.mu.Lock()
	in.legs[leg] = callID
	parked := in.parked[leg]
	delete(in.parked, leg)
	in.mu.Unlock()
	for _, p := range parked {
		f := p.f
		e.submit(callID, func(ctx context.Context) { e.onLegFact(ctx, callID, f) })
	}
}

// unbindLeg forgets a leg once its call no longer holds it.
func (e *Engine) unbindLeg(leg LegID) {
	if leg == "" {
		return
	}
	e.intake.mu.Lock()
	delete(e.intake.legs, leg)
	e.intake.mu.Unlock()
	e.timers.cancel("ring:" + string(leg))
}

// callOfLeg returns the call a leg belongs to.
func (e *Engine) callOfLeg(leg LegID) (string, bool) {
	e.intake.mu.Lock()
	defer e.intake.mu.Unlock()
	id, ok := e.intake.legs[leg]
	return id, ok
}

// sweepParked drops facts whose leg never got bound (a leg routing did
// not create, e.g. one left over from before a restart).
func (e *Engine) sweepParked() {
	now := e.now()
	in := e.intake
	in.mu.Lock()
	defer in.mu.Unlock()
	for leg, ps := range in.parked {
		if now.Sub(ps[0].at) > parkTTL {
			e.log.Info("dropping facts of an unknown leg", "leg", leg, "facts", len(ps))
			delete(in.parked, leg)
		}
	}
}

// onLegsPresent ends calls none of whose customer legs survived a media
// path reconnect, and hands every live call the set of present legs.
func (e *Engine) onLegsPresent(f LegsPresent) {
	present := make(map[LegID]bool, len(f.Legs))
	for _, l := range f.Legs {
		present[l.Leg] = true
	}
	calls := map[string]bool{}
	e.intake.mu.Lock()
	for _, id := range e.intake.legs {
		calls[id] = true
	}
	e.intake.mu.Unlock()
	for id := range calls {
		e.submit(id, func(ctx context.Context) { e.resync(ctx, id, present, f.At) })
	}
}
