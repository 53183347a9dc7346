package sip

import (
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/emiago/sipgo/sip"
)

// cancelWait is how long a CANCEL that matches no INVITE yet waits for
// its INVITE (T1): sipgo hands requests to handlers concurrently, so a CANCEL
// sent right behind its INVITE can be handled first (RFC 3261 section 9.2
// matches them by branch however they race). T1 is a UDP retransmission
// interval: an INVITE not seen by then was lost or never sent.
const cancelWait = 500 * time.Millisecond

// arriving is an INVITE being admitted: registered by branch before its
// leg exists, so a racing CANCEL finds it.
type arriving struct {
	cancelled bool   // a CANCEL came before the leg existed
	leg       *inLeg // set once the leg exists
}

// inviteKey identifies an INVITE transaction for CANCEL matching: Call-ID
// and the top Via branch, which a CANCEL copies from its INVITE.
func inviteKey(req *sip.Request) string {
	branch := ""
	if v := req.Via(); v != nil {
		branch, _ = v.Params.Get("branch")
	}
	return callIDOf(req) + "|" + branch
}

// beginInvite registers an arriving INVITE; endInvite forgets it.
func (s *Server) beginInvite(req *sip.Request) *arriving {
	a := &arriving{}
	s.mu.Lock()
	s.arriving[inviteKey(req)] = a
	s.mu.Unlock()
	return a
}

func (s *Server) endInvite(req *sip.Request) {
	s.mu.Lock()
	delete(s.arriving, inviteKey(req))
	s.mu.Unlock()
}

// cancelledEarly reports whether a CANCEL already matched a (caller holds
// s.mu).
func (a *arriving) cancelledEarly() bool { return a.cancelled }

// handleCancel serves a CANCEL sipgo did not match to a live INVITE
// transaction: it is matched to an INVITE still being admitted (or one
// that arrives within cancelWait); only then is it 481.
func (s *Server) handleCancel(req *sip.Request, tx sip.ServerTransaction) {
	key := inviteKey(req)
	deadline := time.NewTimer(cancelWait)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		a := s.arriving[key]
		var leg *inLeg
		if a != nil {
			leg = a.leg
			if leg == nil {
				a.cancelled = true
			}
		}
		s.mu.Unlock()
		if a != nil {
			s.respond(tx, req, 200, "OK", nil)
			if leg != nil {
				leg.cancelByRequest()
			}
			return
		}
		select {
		case <-tick.C:
		case <-deadline.C:
			s.respond(tx, req, 481, "Call/Transaction Does Not Exist", nil)
			return
		case <-s.baseCtx.Done():
			return
		}
	}
}

// cancelByRequest ends a leg whose CANCEL we matched ourselves: 487 to
// the INVITE, unless a 2xx already won (RFC 3261 section 9.2). The 487 is
// sent after l.mu is released: a retransmitted CANCEL that sipgo matches
// runs onCancel (l.mu) while holding the transaction's lock, which send
// needs.
func (l *inLeg) cancelByRequest() {
	l.mu.Lock()
	send := false
	switch l.state {
	case inProceeding, inRinging:
		l.finishLocked(media.CauseCancelled, false)
		send = true
	case inAnswering, inConfirmed, inEnded:
	}
	l.mu.Unlock()
	if send {
		l.s.send(l.tx, l.response(487, "Request Terminated", nil))
	}
}
