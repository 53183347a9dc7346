package esl

// How the fake FreeSWITCH ends and bridges channels (simfs_test.go), as
// the recordings show it: CHANNEL_BRIDGE/UNBRIDGE on the A uuid only, a
// leg that loses its partner parked with park_after_bridge=true and hung
// up without it, eavesdroppers gone with their target.

// hangup ends ch for cause, with what FreeSWITCH does to its partner
// (parks it with park_after_bridge, hangs it up without) and to anyone
// eavesdropping on it (eavesdrop returns; the leg hangs up).
func (s *simFS) hangup(ch *simChan, cause string) {
	if s.chans[ch.uuid] != ch {
		return
	}
	delete(s.chans, ch.uuid)
	hc := map[string]string{"Hangup-Cause": cause, "Answer-State": "hangup"}
	s.emit(s.ev("CHANNEL_HANGUP", ch, hc))
	if ch.orig != nil && !ch.answered { // an unanswered fork
		s.forkFailed(ch.orig, cause)
	}
	s.emit(s.ev("CHANNEL_HANGUP_COMPLETE", ch, map[string]string{"Hangup-Cause": cause, "Answer-State": "hangup", "Channel-Call-State": "HANGUP"}))
	if p := s.chans[ch.peer]; p != nil {
		a, b := ch, p
		if p.bridgeA {
			a, b = p, ch
		}
		s.unbridge(a, b)
		s.released(p)
	}
	for _, u := range append([]string(nil), s.created...) {
		if e := s.chans[u]; e != nil && e.app == "eavesdrop" && e.target == ch.uuid {
			s.hangup(e, "NORMAL_CLEARING")
		}
	}
}

// unbridge reports CHANNEL_UNBRIDGE on a (the A side) and clears peers.
func (s *simFS) unbridge(a, b *simChan) {
	s.emit(s.ev("CHANNEL_UNBRIDGE", a, map[string]string{"Bridge-A-Unique-ID": a.uuid, "Bridge-B-Unique-ID": b.uuid}))
	a.peer, b.peer, a.bridgeA, b.bridgeA = "", "", false, false
}

// released: p lost its bridge partner.
func (s *simFS) released(p *simChan) {
	if p.pab {
		s.emit(s.ev("CHANNEL_PARK", p, nil))
		return
	}
	s.hangup(p, "NORMAL_CLEARING")
}

// bridge runs uuid_bridge a b.
func (s *simFS) bridge(a, b *simChan) {
	if a.peer == b.uuid {
		return
	}
	for _, x := range []*simChan{a, b} {
		if old := s.chans[x.peer]; old != nil && old != a && old != b {
			pa, pb := x, old
			if old.bridgeA {
				pa, pb = old, x
			}
			s.unbridge(pa, pb)
			s.released(old)
		}
	}
	a.peer, b.peer, a.bridgeA, b.bridgeA = b.uuid, a.uuid, true, false
	s.emit(s.ev("CHANNEL_BRIDGE", a, map[string]string{"Bridge-A-Unique-ID": a.uuid, "Bridge-B-Unique-ID": b.uuid, "Other-Leg-Unique-ID": b.uuid}))
}
