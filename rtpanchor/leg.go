package rtpanchor

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/pion/rtp"
)

// relatchAfter: once latched, packets from another source are dropped
// unless the latched source has been silent this long (a phone that
// moved, or a NAT binding that changed), so a stray sender cannot steal
// an active stream.
const relatchAfter = time.Second

// maxQueuedEvents bounds the telephone-event packets a leg holds between
// two ticks (a phone sends at most a few per 20 ms).
const maxQueuedEvents = 16

// telephoneEvent is one RFC 4733 packet waiting to be relayed.
type telephoneEvent struct {
	ts      uint32 // the sender's event start timestamp
	payload [4]byte
}

// Leg is one party's media: an RTP/RTCP socket pair on the anchor's
// address, the peer it latched to, and its place in a session's routes.
type Leg struct {
	// Name identifies the leg to the Handler (e.g. the call leg's id).
	Name string

	s          *Session
	rtpConn    *net.UDPConn
	rtcpConn   *net.UDPConn
	local      netip.AddrPort
	closeOnce  sync.Once
	inactivity time.Duration

	mu          sync.Mutex // the reader goroutines vs the control API vs the clock
	sdpAddr     netip.AddrPort
	remote      netip.AddrPort
	remoteRTCP  netip.AddrPort
	latched     bool
	rtcpLatched bool
	lastRx      time.Time
	armed       time.Time
	codec       Codec
	eventPT     uint8
	peerRecv    bool
	peerSends   bool
	jb          jitterBuffer
	events      [maxQueuedEvents]telephoneEvent
	nEvents     int
	recv        receptionStats
	lastEndTS   uint32
	haveEnd     bool
	gone        bool
	unwatched   bool // inactivity not checked (WatchInactivity(false))

	// Owned by the clock, under the session's lock.
	c clockState
}

// clockState is what the mixing clock keeps per leg.
type clockState struct {
	// copied from the locked fields at the start of each tick
	remote, remoteRTCP netip.AddrPort
	codec              Codec
	eventPT            uint8
	send               bool
	// outbound stream
	ssrc         uint32
	seq          uint16
	ts           uint32
	started      bool
	sent, octets uint32
	// inbound frame of this tick
	in    [FrameSamples]int16
	hasIn bool
	// routes
	hears  []*Leg
	muted  bool
	player Source
	// telephone-events: drained from the reader this tick, and the
	// mapping of the event being relayed to this listener
	pending  [maxQueuedEvents]telephoneEvent
	nPending int
	evSrcTS  uint32
	evOutTS  uint32
	evActive bool
	pkt      [maxPacket]byte
}

// Local is the anchored RTP address to put in this leg's SDP.
func (l *Leg) Local() netip.AddrPort { return l.local }

// Remote is where the leg's RTP goes: the SDP address, or the source it
// latched to.
func (l *Leg) Remote() netip.AddrPort {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.remote
}

// Codec is what the anchor sends to this leg.
func (l *Leg) Codec() Codec {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.codec
}

// SetRemote applies the peer's SDP (answer, or a re-INVITE's offer):
// where to send, which codec it gets, its telephone-event payload type
// (0: none) and its direction. A changed address undoes latching; the
// inactivity timer restarts.
func (l *Leg) SetRemote(addr netip.AddrPort, codec Codec, eventPT uint8, dir Direction) error {
	if !codec.valid() {
		return ErrNoCommonCodec
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if addr != l.sdpAddr {
		l.sdpAddr = addr
		if addr.Addr().IsUnspecified() || addr.Port() == 0 {
			// Hold with c=0.0.0.0 or a rejected stream: nowhere to send.
			dir = dir.withoutReceive()
		} else {
			l.remote = addr
			l.remoteRTCP = netip.AddrPortFrom(addr.Addr(), addr.Port()+1)
			l.latched, l.rtcpLatched = false, false
		}
	}
	l.codec, l.eventPT = codec, eventPT
	l.peerRecv, l.peerSends = dir.Receives(), dir.Sends()
	l.armed = time.Now()
	l.gone = false
	return nil
}

// WatchInactivity turns the inactivity check off or back on (restarting
// its timer). A caller in early media need not send RTP (many trunks
// only listen until the call is answered), so the SIP path watches its
// leg only from the answer on.
func (l *Leg) WatchInactivity(on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.unwatched = !on
	l.armed = time.Now()
	l.gone = false
}

// Apply is SetRemote with a parsed description and the codec chosen
// for it.
func (l *Leg) Apply(d Description, codec Codec) error {
	return l.SetRemote(d.Addr, codec, d.EventPT, d.Direction)
}

// Close releases the leg's ports and takes it out of its session.
func (l *Leg) Close() {
	l.s.removeLeg(l)
	l.closeSockets()
}

func (l *Leg) closeSockets() {
	l.closeOnce.Do(func() {
		l.rtpConn.Close()
		l.rtcpConn.Close()
		l.s.a.releasePort(int(l.local.Port()))
	})
}

// readRTP is the leg's RTP reader goroutine.
func (l *Leg) readRTP() {
	defer l.s.a.readers.Done()
	buf := make([]byte, maxPacket)
	var pkt rtp.Packet
	for {
		n, from, err := l.rtpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		if digit, dur, ok := l.handleRTP(&pkt, buf[:n], from, time.Now()); ok && l.s.h != nil {
			l.s.h.DTMF(l, digit, dur)
		}
	}
}

// handleRTP takes one received datagram: latching, decoding audio into
// the jitter buffer, queueing telephone-events and spotting their end.
// It reports a DTMF digit when an event ends for the first time.
func (l *Leg) handleRTP(pkt *rtp.Packet, b []byte, from netip.AddrPort, now time.Time) (digit rune, dur time.Duration, report bool) {
	if err := pkt.Unmarshal(b); err != nil || pkt.Version != 2 {
		return 0, 0, false
	}
	pt := pkt.PayloadType
	if pt >= 72 && pt <= 76 {
		return 0, 0, false // RTCP on the RTP port (RFC 5761 ranges): not muxed here
	}
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.latched && from != l.remote && now.Sub(l.lastRx) < relatchAfter {
		return 0, 0, false
	}
	if !l.latched || from != l.remote {
		l.remote, l.latched = from, true
		if !l.rtcpLatched {
			l.remoteRTCP = netip.AddrPortFrom(from.Addr(), from.Port()+1)
		}
	}
	l.lastRx = now
	l.recv.update(pkt.SSRC, pkt.SequenceNumber)
	switch {
	case pt == uint8(PCMU) || pt == uint8(PCMA):
		l.jb.push(Codec(pt), pkt.Payload)
	case pt == l.eventPT && l.eventPT != 0 || l.eventPT == 0 && pt >= 96 && len(pkt.Payload) == 4:
		// Before the SDP is known, a 4-byte dynamic payload is taken as
		// a telephone-event (what every phone sends for DTMF).
		if len(pkt.Payload) < 4 {
			return 0, 0, false
		}
		if l.nEvents < maxQueuedEvents {
			ev := &l.events[l.nEvents]
			ev.ts = pkt.Timestamp
			copy(ev.payload[:], pkt.Payload[:4])
			l.nEvents++
		}
		end := pkt.Payload[1]&0x80 != 0
		if !end || (l.haveEnd && l.lastEndTS == pkt.Timestamp) {
			return 0, 0, false
		}
		l.haveEnd, l.lastEndTS = true, pkt.Timestamp
		d, ok := eventDigit(pkt.Payload[0])
		if !ok {
			return 0, 0, false
		}
		samples := binary.BigEndian.Uint16(pkt.Payload[2:4])
		return d, time.Duration(samples) * time.Second / SampleRate, true
	}
	return 0, 0, false
}

// eventDigit names RFC 4733 DTMF events 0-15.
func eventDigit(e byte) (rune, bool) {
	switch {
	case e <= 9:
		return rune('0' + e), true
	case e == 10:
		return '*', true
	case e == 11:
		return '#', true
	case e <= 15:
		return rune('A' + e - 12), true
	}
	return 0, false
}

// readRTCP is the leg's RTCP reader goroutine: it latches the peer's
// RTCP address and remembers its last sender report for our reception
// reports. The anchor answers RTCP with its own reports rather than
// passing the peer's through, since it re-originates every stream.
func (l *Leg) readRTCP() {
	defer l.s.a.readers.Done()
	buf := make([]byte, maxPacket)
	for {
		n, from, err := l.rtcpConn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		l.handleRTCP(buf[:n], from, time.Now())
	}
}

// handleRTCP checks the first packet of a compound RTCP datagram (it
// must be a sender or receiver report, RFC 3550 section 6.1).
func (l *Leg) handleRTCP(b []byte, from netip.AddrPort, now time.Time) bool {
	if len(b) < 8 || b[0]>>6 != 2 || (b[1] != 200 && b[1] != 201) {
		return false
	}
	words := int(binary.BigEndian.Uint16(b[2:4]))
	if (words+1)*4 > len(b) {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.remoteRTCP = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	l.rtcpLatched = true
	if b[1] == 200 && len(b) >= 20 {
		l.recv.lsr = binary.BigEndian.Uint32(b[10:14])
		l.recv.lsrAt = now
	}
	return true
}

// receptionStats is RFC 3550 appendix A.1 and A.3, enough for a report
// block.
type receptionStats struct {
	ssrc          uint32
	have          bool
	baseSeq       uint16
	maxSeq        uint16
	cycles        uint32
	received      uint32
	expectedPrior uint32
	receivedPrior uint32
	lsr           uint32
	lsrAt         time.Time
}

func (r *receptionStats) update(ssrc uint32, seq uint16) {
	if !r.have || ssrc != r.ssrc {
		*r = receptionStats{ssrc: ssrc, have: true, baseSeq: seq, maxSeq: seq, lsr: r.lsr, lsrAt: r.lsrAt}
		r.received = 1
		return
	}
	r.received++
	delta := seq - r.maxSeq
	switch {
	case delta == 0:
	case delta < 0x8000:
		if seq < r.maxSeq {
			r.cycles += 1 << 16
		}
		r.maxSeq = seq
	}
}

// reportBlock writes a 24-byte reception report into b.
func (r *receptionStats) reportBlock(b []byte, now time.Time) {
	extMax := r.cycles | uint32(r.maxSeq)
	expected := extMax - uint32(r.baseSeq) + 1
	lost := int64(expected) - int64(r.received)
	lost = max(min(lost, 0x7fffff), -0x800000)
	expInt, recvInt := expected-r.expectedPrior, r.received-r.receivedPrior
	r.expectedPrior, r.receivedPrior = expected, r.received
	var fraction uint8
	if expInt > 0 && expInt > recvInt {
		fraction = uint8((expInt - recvInt) * 256 / expInt)
	}
	binary.BigEndian.PutUint32(b[0:], r.ssrc)
	binary.BigEndian.PutUint32(b[4:], uint32(fraction)<<24|uint32(lost)&0xffffff)
	binary.BigEndian.PutUint32(b[8:], extMax)
	binary.BigEndian.PutUint32(b[12:], 0) // interarrival jitter is not estimated
	binary.BigEndian.PutUint32(b[16:], r.lsr)
	var dlsr uint32
	if !r.lsrAt.IsZero() {
		dlsr = uint32(now.Sub(r.lsrAt) * 65536 / time.Second)
	}
	binary.BigEndian.PutUint32(b[20:], dlsr)
}

func newSSRC() uint32 { return rand.Uint32() }
