package routing

import (
	"context"
	"sync"
	"time"

	"github.com/callfloor/callfloor/media"
)

// intake maps legs to calls so a fact reaches its call's ordered loop.
// A fact can race the Dial that created its leg (the media path reports
// LegRinging before Dial has returned to routing); such facts are parked
// and released, in order, when the leg is bound.
type intake struct {
	mu     sync.Mutex
	legs   map[media.LegID]string
	parked map[media.LegID][]parkedFact
	// parkOrder lists parked legs by when their first fact was parked, so
	// sweeping looks only at the expired head instead of every parked leg
	// on every dispatch pass (a call's last LegEnded, arriving after the
	// call let go of its leg, stays parked for parkTTL: thousands at
	// 100 calls/s).
	parkOrder []parkedLeg
	parkHead  int // parkOrder[:parkHead] are swept
	// suspects are legs a media path still has that no call holds
	// (LegsPresent): hung up as orphans once no Dial is in flight that
	// could be about to claim them.
	suspects map[media.LegID]bool
	// hungUp are legs routing itself hung up, with when. A resync snapshot
	// taken before such a hang-up took effect still lists the leg; it must
	// be hung up again, not adopted as a new arrival.
	hungUp map[media.LegID]time.Time
}

// hungUpTTL bounds how long a hung-up leg is remembered: far longer than
// any media server takes to act on a hang-up.
const hungUpTTL = 2 * time.Minute

type parkedFact struct {
	f  media.Fact
	at time.Time
}

type parkedLeg struct {
	leg media.LegID
	at  time.Time
}

// parkTTL bounds how long a fact for an unknown leg waits for its Dial.
const parkTTL = 30 * time.Second

func newIntake() *intake {
	return &intake{legs: make(map[media.LegID]string), parked: make(map[media.LegID][]parkedFact), suspects: make(map[media.LegID]bool),
		hungUp: make(map[media.LegID]time.Time)}
}

// reset forgets every binding: a new run rebinds from the store.
func (in *intake) reset() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.legs = make(map[media.LegID]string)
	in.parked = make(map[media.LegID][]parkedFact)
	in.parkOrder, in.parkHead = nil, 0
	in.suspects = make(map[media.LegID]bool)
	in.hungUp = make(map[media.LegID]time.Time)
}

// Report implements Facts: it queues the fact on its call's loop and
// returns at once. While earlier facts wait for the store (held.go), it
// queues behind them.
func (e *Engine) Report(f media.Fact) {
	if e.isStopped() {
		return
	}
	h := e.held
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.waiting && holdable(f) {
		e.holdLocked(f)
		return
	}
	e.dispatchFact(f)
}

// dispatchFact sends a fact to the loop that handles it.
func (e *Engine) dispatchFact(f media.Fact) {
	switch f := f.(type) {
	case media.CallArrived:
		if over, late := e.overloaded(); over {
			e.refuse(f, late)
			return
		}
		e.adopt(f)
	case media.DeviceState:
		// Presence, not calls: ordered per agent on the agent's shard.
		e.submit("agent:"+f.AgentID, func(ctx context.Context) { e.onDevice(ctx, f) })
	case media.LegsPresent:
		e.onLegsPresent(f)
	case media.LegRinging:
		e.routeLeg(f.Leg, f)
	case media.LegAnswered:
		e.routeLeg(f.Leg, f)
	case media.LegEnded:
		e.routeLeg(f.Leg, f)
	case media.DTMF:
		// No IVR runs in routing: digits are logged for troubleshooting.
		e.log.Debug("dtmf ignored", "leg", f.Leg, "digit", f.Digit)
	default:
		e.log.Warn("unknown fact", "type", f)
	}
}

// routeLeg sends a leg's fact to its call, or parks it until the leg is
// bound.
func (e *Engine) routeLeg(leg media.LegID, f media.Fact) {
	in := e.intake
	in.mu.Lock()
	if _, ended := f.(media.LegEnded); ended {
		delete(in.hungUp, leg)
	}
	callID, ok := in.legs[leg]
	if !ok {
		now := e.now()
		if len(in.parked[leg]) == 0 {
			in.parkOrder = append(in.parkOrder, parkedLeg{leg: leg, at: now})
		}
		in.parked[leg] = append(in.parked[leg], parkedFact{f: f, at: now})
		in.mu.Unlock()
		return
	}
	in.mu.Unlock()
	e.submit(callID, func(ctx context.Context) { e.onLegFact(ctx, callID, f) })
}

// bindLeg records that leg belongs to callID and releases parked facts.
func (e *Engine) bindLeg(leg media.LegID, callID string) {
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
func (e *Engine) unbindLeg(leg media.LegID) {
	if leg == "" {
		return
	}
	e.intake.mu.Lock()
	delete(e.intake.legs, leg)
	e.intake.mu.Unlock()
	e.timers.cancel("ring:" + string(leg))
}

// callOfLeg returns the call a leg belongs to.
func (e *Engine) callOfLeg(leg media.LegID) (string, bool) {
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
	for in.parkHead < len(in.parkOrder) {
		p := in.parkOrder[in.parkHead]
		if now.Sub(p.at) <= parkTTL {
			break
		}
		in.parkOrder[in.parkHead] = parkedLeg{}
		in.parkHead++
		// A leg bound since (and perhaps parked again later) is not this
		// entry's: only facts parked at p.at are dropped.
		if ps := in.parked[p.leg]; len(ps) > 0 && ps[0].at.Equal(p.at) {
			e.log.Debug("dropping facts of an unknown leg", "leg", p.leg, "facts", len(ps))
			delete(in.parked, p.leg)
		}
	}
	if in.parkHead > len(in.parkOrder)/2 { // amortised: each entry moves once
		n := copy(in.parkOrder, in.parkOrder[in.parkHead:])
		clear(in.parkOrder[n:])
		in.parkOrder, in.parkHead = in.parkOrder[:n], 0
	}
}

// adopt starts a new inbound call for a customer leg, unless the leg
// already belongs to a call (a media path that reports an arrival twice,
// say once live and once in a resync).
func (e *Engine) adopt(f media.CallArrived) {
	id := e.newID("c")
	in := e.intake
	in.mu.Lock()
	if owner, ok := in.legs[f.Leg]; ok {
		in.mu.Unlock()
		e.log.Info("arrival of a leg already in a call; ignored", "leg", f.Leg, "call", owner)
		return
	}
	delete(in.suspects, f.Leg)
	in.mu.Unlock()
	e.bindLeg(f.Leg, id)
	e.submit(id, func(ctx context.Context) { e.onArrived(ctx, id, f) })
}

// dialLeg dials and binds the new leg before anything else can look for
// it; dialing counts Dials in flight so the orphan sweep never hangs up a
// leg whose Dial has not returned yet.
func (e *Engine) dialLeg(ctx context.Context, m media.Media, req media.DialRequest) (media.LegID, error) {
	e.dialing.Add(1)
	defer e.dialing.Add(-1)
	leg, err := m.Dial(ctx, req)
	if err == nil {
		e.bindLeg(leg, req.CallID)
	}
	return leg, err
}

// monitorLeg is dialLeg for a supervisor's monitor leg.
func (e *Engine) monitorLeg(ctx context.Context, m media.Media, req media.MonitorRequest) (media.LegID, error) {
	e.dialing.Add(1)
	defer e.dialing.Add(-1)
	leg, err := m.Monitor(ctx, req)
	if err == nil {
		e.bindLeg(leg, req.CallID)
	}
	return leg, err
}

// onLegsPresent reconciles after a media path (re)connected:
//   - calls whose legs are gone lose them (a call without its customer
//     ends), on each call's loop;
//   - a customer leg no call holds (Hotline set: it reached the floor
//     while we were away) is queued like any arrival;
//   - any other leg no call holds is an orphan and is hung up.
func (e *Engine) onLegsPresent(f media.LegsPresent) {
	present := make(map[media.LegID]bool, len(f.Legs))
	for _, l := range f.Legs {
		present[l.Leg] = true
	}
	calls := map[string]bool{}
	var unknown []media.LegSnapshot
	e.intake.mu.Lock()
	for _, id := range e.intake.legs {
		calls[id] = true
	}
	now := e.now()
	for leg, at := range e.intake.hungUp {
		if now.Sub(at) > hungUpTTL {
			delete(e.intake.hungUp, leg)
		}
	}
	for _, l := range f.Legs {
		if _, ok := e.intake.legs[l.Leg]; ok {
			continue
		}
		if _, ours := e.intake.hungUp[l.Leg]; ours {
			l.Hotline = "" // a caller we already let go: an orphan, not an arrival
		}
		unknown = append(unknown, l)
	}
	e.intake.mu.Unlock()
	for id := range calls {
		e.submit(id, func(ctx context.Context) { e.resync(ctx, id, present) })
	}
	for _, l := range unknown {
		if l.Hotline != "" {
			e.adopt(media.CallArrived{FactBase: f.FactBase, Leg: l.Leg, Caller: l.Caller, Hotline: l.Hotline})
			continue
		}
		e.intake.mu.Lock()
		e.intake.suspects[l.Leg] = true
		e.intake.mu.Unlock()
	}
	if len(unknown) > 0 {
		e.submit("orphans", e.hangUpOrphans)
	}
}

// hangUpOrphans hangs up suspect legs that still belong to no call, when
// no Dial is in flight (a Dial in flight might be about to bind one; the
// next dispatcher pass retries).
func (e *Engine) hangUpOrphans(ctx context.Context) {
	if e.dialing.Load() > 0 {
		return
	}
	in := e.intake
	var orphans []media.LegID
	in.mu.Lock()
	for leg := range in.suspects {
		if _, ok := in.legs[leg]; !ok {
			orphans = append(orphans, leg)
		}
		delete(in.suspects, leg)
	}
	in.mu.Unlock()
	m := e.mediaPath()
	for _, leg := range orphans {
		e.log.Info("hanging up an orphan leg", "leg", leg)
		e.hangup(ctx, m, leg, media.CauseNormal)
	}
}

// noteHungUp remembers that routing hung leg up itself.
func (e *Engine) noteHungUp(leg media.LegID) {
	in := e.intake
	in.mu.Lock()
	in.hungUp[leg] = e.now()
	in.mu.Unlock()
}

// hasSuspects reports whether orphan checks are pending.
func (e *Engine) hasSuspects() bool {
	e.intake.mu.Lock()
	defer e.intake.mu.Unlock()
	return len(e.intake.suspects) > 0
}
