package rtpanchor

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// Session is one conversation: its legs and who hears whom. Every 20 ms
// the anchor's clock takes one frame from each leg and sends each leg the
// sum of the legs it hears (or what it is being played), encoded in that
// leg's codec.
type Session struct {
	a *Anchor
	h Handler

	mu     sync.Mutex
	legs   []*Leg
	closed bool
	// scratch for one listener's mix, reused every tick
	mix  [FrameSamples]int32
	out  [FrameSamples]int16
	gone []*Leg
}

// ErrNotInSession is returned when a leg given to a Session method
// belongs to another session or was closed.
var ErrNotInSession = errors.New("rtpanchor: leg is not in this session")

// NewLeg binds a new leg's ports. It hears nothing and nobody hears it
// until routed.
func (s *Session) NewLeg(name string) (*Leg, error) {
	rtpc, rtcpc, err := s.a.bindPair()
	if err != nil {
		return nil, err
	}
	ap := rtpc.LocalAddr().(interface{ AddrPort() netip.AddrPort }).AddrPort()
	l := &Leg{
		Name: name, s: s, rtpConn: rtpc, rtcpConn: rtcpc,
		local:      netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()),
		inactivity: s.a.cfg.Inactivity,
		codec:      PCMU,
	}
	l.c.ssrc = newSSRC()
	l.c.seq = uint16(newSSRC())
	l.c.ts = newSSRC()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.closeSockets()
		return nil, ErrClosed
	}
	s.legs = append(s.legs, l)
	s.mu.Unlock()
	s.a.readers.Add(2)
	go l.readRTP()
	go l.readRTCP()
	return l, nil
}

// Legs lists the session's open legs.
func (s *Session) Legs() []*Leg {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.legs)
}

func (s *Session) has(legs ...*Leg) error {
	for _, l := range legs {
		if l == nil || !slices.Contains(s.legs, l) {
			return ErrNotInSession
		}
	}
	return nil
}

// SetHears routes exactly sources to listener (replacing its routes) and
// stops anything being played to it.
func (s *Session) SetHears(listener *Leg, sources ...*Leg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.has(append([]*Leg{listener}, sources...)...); err != nil {
		return err
	}
	listener.c.hears = slices.Clone(sources)
	listener.c.player = nil
	return nil
}

// Relay connects two parties: each hears the other.
func (s *Session) Relay(a, b *Leg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.has(a, b); err != nil {
		return err
	}
	a.c.hears, a.c.player = []*Leg{b}, nil
	b.c.hears, b.c.player = []*Leg{a}, nil
	return nil
}

// MonitorMode is how a supervisor joins a two-party call.
type MonitorMode string

// Supervisor modes (docs/README: listen, whisper, barge, pause).
const (
	// Listen: the supervisor hears both; nobody hears the supervisor.
	Listen MonitorMode = "listen"
	// Whisper: the supervisor hears both; only the agent hears the
	// supervisor.
	Whisper MonitorMode = "whisper"
	// Barge: all three hear each other.
	Barge MonitorMode = "barge"
	// Pause: the supervisor hears nothing and nobody hears them.
	Pause MonitorMode = "pause"
)

// Monitor sets the routes of a supervised call: customer and agent keep
// hearing each other, and the supervisor joins as mode says.
func (s *Session) Monitor(sup, customer, agent *Leg, mode MonitorMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.has(sup, customer, agent); err != nil {
		return err
	}
	var supHears, custHears, agentHears []*Leg
	switch mode {
	case Listen:
		supHears, custHears, agentHears = []*Leg{customer, agent}, []*Leg{agent}, []*Leg{customer}
	case Whisper:
		supHears, custHears, agentHears = []*Leg{customer, agent}, []*Leg{agent}, []*Leg{customer, sup}
	case Barge:
		supHears, custHears, agentHears = []*Leg{customer, agent}, []*Leg{agent, sup}, []*Leg{customer, sup}
	case Pause:
		supHears, custHears, agentHears = nil, []*Leg{agent}, []*Leg{customer}
	default:
		return fmt.Errorf("rtpanchor: monitor mode %q", mode)
	}
	sup.c.hears, sup.c.player = supHears, nil
	customer.c.hears, customer.c.player = custHears, nil
	agent.c.hears, agent.c.player = agentHears, nil
	return nil
}

// Mute stops (or resumes) everyone hearing l; l still hears its routes.
func (s *Session) Mute(l *Leg, muted bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.has(l); err != nil {
		return err
	}
	l.c.muted = muted
	return nil
}

// Replace puts next in old's place: next hears what old heard, and
// whoever heard old hears next, from the next 20 ms frame on (take over,
// transfer). old is left routed to nothing; the caller closes it.
func (s *Session) Replace(old, next *Leg) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.has(old, next); err != nil {
		return err
	}
	if old == next {
		return nil
	}
	for _, l := range s.legs {
		for i, src := range l.c.hears {
			if src == old {
				l.c.hears[i] = next
			}
		}
		l.c.hears = routes(l.c.hears, l)
	}
	next.c.hears = routes(slices.Clone(old.c.hears), next)
	next.c.muted, next.c.player = old.c.muted, old.c.player
	old.c.hears, old.c.player = nil, nil
	return nil
}

// routes drops self and repeats from a listener's sources (a Replace
// can make a listener hear the same leg twice, or itself).
func routes(srcs []*Leg, self *Leg) []*Leg {
	out := srcs[:0]
	for _, x := range srcs {
		if x != self && !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out
}

// Play makes l hear src instead of its routes until Stop (or a new
// route). Each call should get its own Source (Clip.Player).
func (s *Session) Play(l *Leg, src Source) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.has(l); err != nil {
		return err
	}
	l.c.player = src
	return nil
}

// PlayMusic plays the anchor's music to l from the start.
func (s *Session) PlayMusic(l *Leg) error { return s.Play(l, s.a.cfg.Music.Player()) }

// PlayRingback plays the anchor's ringback cadence to l.
func (s *Session) PlayRingback(l *Leg) error { return s.Play(l, s.a.cfg.Ringback.Player()) }

// Stop ends what is played to l; it hears its routes again.
func (s *Session) Stop(l *Leg) error { return s.Play(l, nil) }

// Close ends the session and all its legs; it no longer counts against
// the cap.
func (s *Session) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	legs := s.legs
	s.legs = nil
	s.mu.Unlock()
	for _, l := range legs {
		l.closeSockets()
	}
	s.a.removeSession(s)
}

func (s *Session) removeLeg(l *Leg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.legs = slices.DeleteFunc(s.legs, func(x *Leg) bool { return x == l })
	for _, x := range s.legs {
		x.c.hears = slices.DeleteFunc(x.c.hears, func(y *Leg) bool { return y == l })
	}
}

// defaultRTCPEvery is how many ticks pass between our RTCP reports (5 s,
// the RFC 3550 minimum interval).
const defaultRTCPEvery = 250

// inactivityEvery is how many ticks pass between inactivity checks.
const inactivityEvery = 25

// tick produces one 20 ms frame for every leg of the session.
func (s *Session) tick(now time.Time, tick uint64) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.gone = s.gone[:0]
	for _, l := range s.legs {
		l.mu.Lock()
		l.c.hasIn = l.jb.pull(l.c.in[:])
		l.c.nPending = copy(l.c.pending[:], l.events[:l.nEvents])
		l.nEvents = 0
		l.c.remote, l.c.remoteRTCP = l.remote, l.remoteRTCP
		l.c.codec, l.c.eventPT = l.codec, l.eventPT
		l.c.send = l.peerRecv && l.remote.IsValid() && l.remote.Port() != 0
		if tick%inactivityEvery == 0 && l.peerSends && !l.unwatched && !l.gone && now.Sub(later(l.lastRx, l.armed)) > l.inactivity {
			l.gone = true
			s.gone = append(s.gone, l)
		}
		l.mu.Unlock()
	}
	for _, l := range s.legs {
		if !l.c.send {
			// Keep the clock running so the stream resumes in sequence.
			l.c.ts += FrameSamples
			continue
		}
		s.sendFrame(l)
		s.sendEvents(l)
		if tick%s.a.rtcpEvery == 0 && l.c.sent > 0 {
			s.sendReport(l, now)
		}
	}
	var gone []*Leg
	if len(s.gone) > 0 {
		gone = slices.Clone(s.gone)
	}
	s.mu.Unlock()
	if s.h != nil {
		for _, l := range gone {
			s.h.LegGone(l)
		}
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// sendFrame mixes and sends listener l's audio for this tick.
func (s *Session) sendFrame(l *Leg) {
	out := s.out[:]
	if l.c.player != nil {
		l.c.player.Next(out)
	} else {
		mix := s.mix[:]
		clear(mix)
		heard := 0
		for _, src := range l.c.hears {
			if !src.c.hasIn || src.c.muted {
				continue
			}
			heard++
			for i, v := range src.c.in {
				mix[i] += int32(v)
			}
		}
		switch heard {
		case 0:
			clear(out)
		default:
			for i, v := range mix {
				out[i] = int16(max(min(v, 32767), -32768))
			}
		}
	}
	h := rtp.Header{
		Version: 2, Marker: !l.c.started, PayloadType: uint8(l.c.codec),
		SequenceNumber: l.c.seq, Timestamp: l.c.ts, SSRC: l.c.ssrc,
	}
	n, err := h.MarshalTo(l.c.pkt[:])
	if err != nil {
		return
	}
	encode(l.c.codec, out, l.c.pkt[n:n+FrameSamples])
	l.c.started = true
	l.c.seq++
	l.c.ts += FrameSamples
	l.c.sent++
	l.c.octets += FrameSamples
	_, _ = l.rtpConn.WriteToUDPAddrPort(l.c.pkt[:n+FrameSamples], l.c.remote)
}

// sendEvents relays the telephone-events of the legs l hears, rewritten
// into l's stream: l's payload type, SSRC and sequence, and a timestamp
// fixed at l's clock when the event started (RFC 4733 section 2.5).
func (s *Session) sendEvents(l *Leg) {
	if l.c.eventPT == 0 {
		return
	}
	for _, src := range l.c.hears {
		if src.c.muted {
			continue
		}
		for i := range src.c.nPending {
			ev := &src.c.pending[i]
			marker := false
			if !l.c.evActive || l.c.evSrcTS != ev.ts {
				l.c.evActive, l.c.evSrcTS, l.c.evOutTS = true, ev.ts, l.c.ts
				marker = true
			}
			h := rtp.Header{
				Version: 2, Marker: marker, PayloadType: l.c.eventPT,
				SequenceNumber: l.c.seq, Timestamp: l.c.evOutTS, SSRC: l.c.ssrc,
			}
			n, err := h.MarshalTo(l.c.pkt[:])
			if err != nil {
				return
			}
			copy(l.c.pkt[n:], ev.payload[:])
			l.c.seq++
			l.c.sent++
			l.c.octets += 4
			_, _ = l.rtpConn.WriteToUDPAddrPort(l.c.pkt[:n+4], l.c.remote)
		}
	}
}

// ntpEpochOffset is seconds from 1900 (NTP) to 1970 (Unix).
const ntpEpochOffset = 2208988800

// sendReport sends an RTCP sender report (with a reception report when
// the leg has sent us RTP) and an SDES CNAME, RFC 3550 section 6.4.1.
func (s *Session) sendReport(l *Leg, now time.Time) {
	b := l.c.pkt[:0]
	l.mu.Lock()
	haveRecv := l.recv.have
	var rb [24]byte
	if haveRecv {
		l.recv.reportBlock(rb[:], now)
	}
	l.mu.Unlock()
	rc, words := byte(0), uint16(6)
	if haveRecv {
		rc, words = 1, 12
	}
	b = append(b, 0x80|rc, 200)
	b = binary.BigEndian.AppendUint16(b, words)
	b = binary.BigEndian.AppendUint32(b, l.c.ssrc)
	secs := uint64(now.Unix()) + ntpEpochOffset
	frac := uint64(now.Nanosecond()) << 32 / 1e9
	b = binary.BigEndian.AppendUint32(b, uint32(secs))
	b = binary.BigEndian.AppendUint32(b, uint32(frac))
	b = binary.BigEndian.AppendUint32(b, l.c.ts)
	b = binary.BigEndian.AppendUint32(b, l.c.sent)
	b = binary.BigEndian.AppendUint32(b, l.c.octets)
	if haveRecv {
		b = append(b, rb[:]...)
	}
	// SDES: one chunk, CNAME "callfloor", padded to a word.
	const cname = "callfloor"
	b = append(b, 0x81, 202)
	b = binary.BigEndian.AppendUint16(b, 4) // 20 bytes: 5 words, minus one
	b = binary.BigEndian.AppendUint32(b, l.c.ssrc)
	b = append(b, 1, byte(len(cname)))
	b = append(b, cname...)
	b = append(b, 0)
	_, _ = l.rtcpConn.WriteToUDPAddrPort(b, l.c.remoteRTCP)
}
