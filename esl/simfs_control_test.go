package esl

import "time"

// Test controls of the reactive fake FreeSWITCH (simfs_test.go): what the
// phones and FreeSWITCH itself do, and the commands callfloor sent.

func (s *simFS) setBehavior(endpoint string, b dialBehavior) {
	s.mu.Lock()
	s.behavior[endpoint] = b
	s.mu.Unlock()
}

// answerLeg: a ringing device picks up.
func (s *simFS) answerLeg(uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.chans[uuid]; ch != nil {
		s.answer(ch)
	} else {
		s.t.Errorf("fake FreeSWITCH: answer of missing %s", uuid)
	}
}

// bye: the phone on uuid hangs up.
func (s *simFS) bye(uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.chans[uuid]; ch != nil {
		s.hangup(ch, "NORMAL_CLEARING")
	} else {
		s.t.Errorf("fake FreeSWITCH: bye of missing %s", uuid)
	}
}

// endLeg: the device or FreeSWITCH ends uuid with cause (a ringing leg
// rings out: NO_ANSWER).
func (s *simFS) endLeg(uuid, cause string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.chans[uuid]; ch != nil {
		s.hangup(ch, cause)
	} else {
		s.t.Errorf("fake FreeSWITCH: end of missing %s", uuid)
	}
}

// setHoldKills holds (or stops holding) the effect of uuid_kill.
func (s *simFS) setHoldKills(on bool) {
	s.mu.Lock()
	s.holdKills = on
	s.mu.Unlock()
}

// releaseKills carries out the held uuid_kills.
func (s *simFS) releaseKills() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range s.heldKills {
		k()
	}
	s.heldKills = nil
}

// crash is a FreeSWITCH restart: every channel is gone without a single
// event, and the socket drops.
func (s *simFS) crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.chans = map[string]*simChan{}
	s.created = nil
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
}

// drop closes the subscribed connection abruptly (no disconnect-notice);
// calls go on.
func (s *simFS) drop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cur != nil {
		s.cur.Close()
		s.cur = nil
	}
}

// emitRecorded sends a recorded frame as is (registrations).
func (s *simFS) emitRecorded(frame string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.emit(frame)
}

// setRegistrations sets show registrations' rows.
func (s *simFS) setRegistrations(rows ...map[string]string) {
	s.mu.Lock()
	s.registrations = rows
	s.mu.Unlock()
}

// refuseConnections makes the event socket unreachable (or reachable again).
func (s *simFS) refuseConnections(on bool) {
	s.mu.Lock()
	s.refuse = on
	s.mu.Unlock()
}

func (s *simFS) alive(uuid string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.chans[uuid] != nil
}

func (s *simFS) peerOf(uuid string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ch := s.chans[uuid]; ch != nil {
		return ch.peer
	}
	return ""
}

// commands returns every command received and forgets them.
func (s *simFS) takeCommands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.cmds
	s.cmds = nil
	return out
}

// takeSequence waits until want has arrived in order (other commands
// may come between: routing acts on facts a resync reports while it still
// runs), removes those commands and leaves the others.
func (s *simFS) takeSequence(want []string) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		var rest []string
		k := 0
		for _, c := range s.cmds {
			if k < len(want) && c == want[k] {
				k++
				continue
			}
			rest = append(rest, c)
		}
		if k == len(want) {
			s.cmds = rest
			s.mu.Unlock()
			return
		}
		got := append([]string(nil), s.cmds...)
		s.mu.Unlock()
		if time.Now().After(deadline) {
			s.t.Fatalf("fake FreeSWITCH: commands %s\nlack, in order: %s", quoteLines(got), quoteLines(want))
		}
		time.Sleep(time.Millisecond)
	}
}

// snapshotCommands returns the commands since the last take.
func (s *simFS) snapshotCommands() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cmds...)
}

func (s *simFS) commandCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.cmds)
}

// waitCommands waits until n commands (since the last take) arrived.
func (s *simFS) waitCommands(n int) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.commandCount() < n {
		if time.Now().After(deadline) {
			s.t.Fatalf("fake FreeSWITCH: %d commands, want %d: %q", s.commandCount(), n, s.cmds)
		}
		time.Sleep(time.Millisecond)
	}
}

// vanish drops a channel from FreeSWITCH's table with no event, as a
// hang-up looks once the connection that would have carried it was lost.
func (s *simFS) vanish(uuid string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.chans, uuid)
}
