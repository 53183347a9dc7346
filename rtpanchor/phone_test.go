package rtpanchor

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
)

// testPhone is a Go RTP endpoint: it sends a sine of its own frequency
// every 20 ms (like a real phone, from its own clock) and records every
// packet it receives, so tests can ask what it heard with a Goertzel
// filter.
type testPhone struct {
	t       testing.TB
	conn    *net.UDPConn
	rtcp    *net.UDPConn
	freq    float64
	codec   Codec
	eventPT uint8
	ssrc    uint32

	mu      sync.Mutex
	to      netip.AddrPort
	muted   bool // sends nothing at all (a ghost)
	dtmf    []byte
	frames  []heardFrame
	events  []heardEvent
	reports [][]byte
	changed chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

type heardFrame struct {
	ts  uint32
	pcm []int16
}

type heardEvent struct {
	pt      uint8
	ts      uint32
	marker  bool
	payload [4]byte
}

// newPhone binds a phone on loopback (RTP port even, RTCP the next).
func newPhone(t testing.TB, freq float64, codec Codec, eventPT uint8) *testPhone {
	t.Helper()
	var conn, rtcpc *net.UDPConn
	for range 100 {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			t.Fatal(err)
		}
		port := c.LocalAddr().(*net.UDPAddr).Port
		if port%2 == 1 || port == 65535 {
			c.Close()
			continue
		}
		r, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port + 1})
		if err != nil {
			c.Close()
			continue
		}
		conn, rtcpc = c, r
		break
	}
	if conn == nil {
		t.Fatal("no even port pair for the test phone")
	}
	p := &testPhone{t: t, conn: conn, rtcp: rtcpc, freq: freq, codec: codec, eventPT: eventPT,
		ssrc: newSSRC(), changed: make(chan struct{}, 1), stop: make(chan struct{})}
	p.wg.Add(3)
	go p.send()
	go p.record()
	go p.recordRTCP()
	t.Cleanup(p.close)
	return p
}

func (p *testPhone) addr() netip.AddrPort {
	return p.conn.LocalAddr().(*net.UDPAddr).AddrPort()
}

// dial points the phone at a leg and gives the leg the phone's SDP.
func (p *testPhone) dial(l *Leg) {
	p.t.Helper()
	p.mu.Lock()
	p.to = l.Local()
	p.mu.Unlock()
	if err := l.SetRemote(p.addr(), p.codec, p.eventPT, SendRecv); err != nil {
		p.t.Fatal(err)
	}
}

func (p *testPhone) close() {
	select {
	case <-p.stop:
		return
	default:
	}
	close(p.stop)
	p.conn.Close()
	p.rtcp.Close()
	p.wg.Wait()
}

func (p *testPhone) setMuted(m bool) {
	p.mu.Lock()
	p.muted = m
	p.mu.Unlock()
}

// sendDTMF queues one RFC 4733 event: five updates, then the end packet
// three times, as phones do.
func (p *testPhone) sendDTMF(event byte) {
	p.mu.Lock()
	p.dtmf = append(p.dtmf, event)
	p.mu.Unlock()
}

func (p *testPhone) send() {
	defer p.wg.Done()
	tk := time.NewTicker(FrameDuration)
	defer tk.Stop()
	var (
		seq   = uint16(newSSRC())
		ts    = newSSRC()
		phase float64
		pcm   [FrameSamples]int16
		buf   [maxPacket]byte
		ev    struct {
			active bool
			code   byte
			start  uint32
			step   int
		}
	)
	for {
		select {
		case <-p.stop:
			return
		case <-tk.C:
		}
		p.mu.Lock()
		to, muted := p.to, p.muted
		if !ev.active && len(p.dtmf) > 0 {
			ev.active, ev.code, ev.start, ev.step = true, p.dtmf[0], ts, 0
			p.dtmf = p.dtmf[1:]
		}
		p.mu.Unlock()
		if !to.IsValid() || muted {
			ts += FrameSamples
			continue
		}
		write := func(h rtp.Header, payload []byte) {
			n, _ := h.MarshalTo(buf[:])
			n += copy(buf[n:], payload)
			_, _ = p.conn.WriteToUDPAddrPort(buf[:n], to)
			seq++
		}
		if ev.active {
			ev.step++
			end := ev.step >= 5
			pl := [4]byte{ev.code, 10, 0, 0}
			if end {
				pl[1] |= 0x80
			}
			binary.BigEndian.PutUint16(pl[2:], uint16(ev.step*FrameSamples))
			copies := 1
			if end {
				copies = 3
			}
			for range copies {
				write(rtp.Header{Version: 2, Marker: ev.step == 1, PayloadType: p.eventPT, SequenceNumber: seq, Timestamp: ev.start, SSRC: p.ssrc}, pl[:])
			}
			if end {
				ev.active = false
			}
			ts += FrameSamples
			continue
		}
		for i := range pcm {
			pcm[i] = int16(4000 * math.Sin(phase))
			phase += 2 * math.Pi * p.freq / SampleRate
		}
		phase = math.Mod(phase, 2*math.Pi)
		var payload [FrameSamples]byte
		encode(p.codec, pcm[:], payload[:])
		if p.freq == 0 {
			encode(p.codec, make([]int16, FrameSamples), payload[:])
		}
		write(rtp.Header{Version: 2, PayloadType: uint8(p.codec), SequenceNumber: seq, Timestamp: ts, SSRC: p.ssrc}, payload[:])
		ts += FrameSamples
	}
}

func (p *testPhone) record() {
	defer p.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, _, err := p.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		var pkt rtp.Packet
		if pkt.Unmarshal(buf[:n]) != nil {
			continue
		}
		p.mu.Lock()
		switch {
		case pkt.PayloadType == uint8(PCMU) || pkt.PayloadType == uint8(PCMA):
			if pkt.PayloadType != uint8(p.codec) {
				p.t.Errorf("phone %v Hz negotiated %s, received payload type %d", p.freq, p.codec, pkt.PayloadType)
			}
			p.frames = append(p.frames, heardFrame{ts: pkt.Timestamp, pcm: decode(Codec(pkt.PayloadType), pkt.Payload, nil)})
		case len(pkt.Payload) >= 4:
			e := heardEvent{pt: pkt.PayloadType, ts: pkt.Timestamp, marker: pkt.Marker}
			copy(e.payload[:], pkt.Payload)
			p.events = append(p.events, e)
		}
		p.mu.Unlock()
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
}

func (p *testPhone) recordRTCP() {
	defer p.wg.Done()
	buf := make([]byte, maxPacket)
	for {
		n, _, err := p.rtcp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		p.reports = append(p.reports, append([]byte(nil), buf[:n]...))
		p.mu.Unlock()
		select {
		case p.changed <- struct{}{}:
		default:
		}
	}
}

// waitFor blocks until cond (called with the phone locked) holds, or
// fails the test after a generous bound (a hang, not a timing check).
func (p *testPhone) waitFor(what string, cond func() bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		p.mu.Lock()
		ok := cond()
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-p.changed:
		case <-ctx.Done():
			p.t.Fatalf("phone %v Hz: waiting for %s: %v", p.freq, what, ctx.Err())
		}
	}
}

// listen forgets what was heard so far and returns the audio of the next
// n frames, after skipping a few that may predate the routes under test
// (they were in the jitter buffer or on the wire).
func (p *testPhone) listen(n int) []int16 {
	p.t.Helper()
	const skip = 6
	p.mu.Lock()
	p.frames = nil
	p.mu.Unlock()
	p.waitFor("audio", func() bool { return len(p.frames) >= skip+n })
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int16
	for _, f := range p.frames[skip : skip+n] {
		out = append(out, f.pcm...)
	}
	return out
}

// toneLevel is the amplitude of the f Hz component of pcm, estimated with
// a Goertzel filter (a sine of amplitude A reads as about A).
func toneLevel(pcm []int16, f float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*f/SampleRate)
	var s1, s2 float64
	for _, v := range pcm {
		s0 := float64(v) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(len(pcm))
}

// Thresholds for "hears" and "does not hear" a 4000-amplitude tone.
const (
	heardLevel  = 1500
	absentLevel = 150
)

func assertHears(t *testing.T, who string, pcm []int16, f float64) {
	t.Helper()
	if lv := toneLevel(pcm, f); lv < heardLevel {
		t.Errorf("%s should hear %v Hz: level %.0f < %d", who, f, lv, heardLevel)
	}
}

func assertDoesNotHear(t *testing.T, who string, pcm []int16, f float64) {
	t.Helper()
	if lv := toneLevel(pcm, f); lv > absentLevel {
		t.Errorf("%s should not hear %v Hz: level %.0f > %d", who, f, lv, absentLevel)
	}
}
