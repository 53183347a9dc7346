// Package rtpphone is a Go RTP endpoint for tests: it sends a sine of its
// own frequency every 20 ms (like a phone, on its own clock) and records
// what it receives, so a test can ask with a Goertzel filter whose audio
// it heard. Used by rtpanchor's and sip's media tests; never by the
// binary.
package rtpphone

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/zaf/g711"
)

// Static payload types of the two G.711 codecs.
const (
	PCMU uint8 = 0
	PCMA uint8 = 8
)

// Amplitude of the phone's tone; HeardLevel and AbsentLevel are the
// Goertzel levels tests read as "hears" and "does not hear" it.
const (
	Amplitude   = 4000
	HeardLevel  = 1500
	AbsentLevel = 150
)

const frameSamples = 160

// Frame is one received audio packet.
type Frame struct {
	TS  uint32
	At  time.Time // when it arrived
	PCM []int16
}

// Event is one received RFC 4733 packet.
type Event struct {
	PT      uint8
	TS      uint32
	Marker  bool
	Payload [4]byte
}

// Heard is everything a phone received; WaitFor conditions read it.
type Heard struct {
	Frames  []Frame
	Events  []Event
	Reports [][]byte // RTCP datagrams on the port above
}

// Phone is one test endpoint on loopback (RTP on an even port, RTCP on
// the next).
type Phone struct {
	t       testing.TB
	conn    *net.UDPConn
	rtcp    *net.UDPConn
	Freq    float64
	Codec   uint8 // the codec it starts with; SetCodec changes it
	EventPT uint8
	SSRC    uint32

	mu      sync.Mutex
	codec   uint8
	to      netip.AddrPort
	muted   bool
	dtmf    []byte
	heard   Heard
	changed chan struct{}

	stop chan struct{}
	wg   sync.WaitGroup
}

// New starts a phone sending freq Hz (0: silence) in codec once it has
// somewhere to send (SendTo). It stops at the end of the test.
func New(t testing.TB, freq float64, codec, eventPT uint8) *Phone {
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
	p := &Phone{t: t, conn: conn, rtcp: rtcpc, Freq: freq, Codec: codec, codec: codec, EventPT: eventPT,
		SSRC: rand.Uint32(), changed: make(chan struct{}, 1), stop: make(chan struct{})}
	p.wg.Add(3)
	go p.send()
	go p.record()
	go p.recordRTCP()
	t.Cleanup(p.Close)
	return p
}

// Addr is the phone's RTP address.
func (p *Phone) Addr() netip.AddrPort { return p.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// SendTo points the phone's RTP at addr.
func (p *Phone) SendTo(addr netip.AddrPort) {
	p.mu.Lock()
	p.to = addr
	p.mu.Unlock()
}

// SetCodec switches what the phone sends and expects (a renegotiation).
func (p *Phone) SetCodec(c uint8) {
	p.mu.Lock()
	p.codec = c
	p.mu.Unlock()
}

// Close stops the phone.
func (p *Phone) Close() {
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

// SetMuted stops (or restarts) all sending, as a phone that vanished.
func (p *Phone) SetMuted(m bool) {
	p.mu.Lock()
	p.muted = m
	p.mu.Unlock()
}

// SendDTMF queues one RFC 4733 event: five updates, then the end packet
// three times, as phones do.
func (p *Phone) SendDTMF(event byte) {
	p.mu.Lock()
	p.dtmf = append(p.dtmf, event)
	p.mu.Unlock()
}

// Clear forgets what was heard so far and returns nothing.
func (p *Phone) Clear() {
	p.mu.Lock()
	p.heard = Heard{}
	p.mu.Unlock()
}

// Frames is how many audio frames were heard since the last Clear.
func (p *Phone) Frames() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.heard.Frames)
}

// Heard returns a copy of what the phone received since the last Clear.
func (p *Phone) Heard() Heard {
	p.mu.Lock()
	defer p.mu.Unlock()
	return Heard{
		Frames:  append([]Frame(nil), p.heard.Frames...),
		Events:  append([]Event(nil), p.heard.Events...),
		Reports: append([][]byte(nil), p.heard.Reports...),
	}
}

func encodeFrame(codec uint8, pcm []int16, dst []byte) {
	for i, s := range pcm {
		if codec == PCMA {
			dst[i] = g711.EncodeAlawFrame(s)
		} else {
			dst[i] = g711.EncodeUlawFrame(s)
		}
	}
}

func decodeFrame(codec uint8, b []byte) []int16 {
	out := make([]int16, len(b))
	for i, v := range b {
		if codec == PCMA {
			out[i] = g711.DecodeAlawFrame(v)
		} else {
			out[i] = g711.DecodeUlawFrame(v)
		}
	}
	return out
}

func (p *Phone) send() {
	defer p.wg.Done()
	tk := time.NewTicker(20 * time.Millisecond)
	defer tk.Stop()
	var (
		seq   = uint16(rand.Uint32())
		ts    = rand.Uint32()
		phase float64
		pcm   [frameSamples]int16
		buf   [1500]byte
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
		to, muted, codec := p.to, p.muted, p.codec
		if !ev.active && len(p.dtmf) > 0 {
			ev.active, ev.code, ev.start, ev.step = true, p.dtmf[0], ts, 0
			p.dtmf = p.dtmf[1:]
		}
		p.mu.Unlock()
		if !to.IsValid() || muted {
			ts += frameSamples
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
			copies := 1
			if end {
				pl[1] |= 0x80
				copies = 3
			}
			binary.BigEndian.PutUint16(pl[2:], uint16(ev.step*frameSamples))
			for range copies {
				write(rtp.Header{Version: 2, Marker: ev.step == 1, PayloadType: p.EventPT, SequenceNumber: seq, Timestamp: ev.start, SSRC: p.SSRC}, pl[:])
			}
			if end {
				ev.active = false
			}
			ts += frameSamples
			continue
		}
		for i := range pcm {
			pcm[i] = int16(Amplitude * math.Sin(phase))
			phase += 2 * math.Pi * p.Freq / 8000
		}
		phase = math.Mod(phase, 2*math.Pi)
		var payload [frameSamples]byte
		encodeFrame(codec, pcm[:], payload[:])
		write(rtp.Header{Version: 2, PayloadType: codec, SequenceNumber: seq, Timestamp: ts, SSRC: p.SSRC}, payload[:])
		ts += frameSamples
	}
}

func (p *Phone) record() {
	defer p.wg.Done()
	buf := make([]byte, 1500)
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
		case pkt.PayloadType == PCMU || pkt.PayloadType == PCMA:
			if pkt.PayloadType != p.codec {
				p.t.Errorf("phone %v Hz uses payload type %d, received %d", p.Freq, p.codec, pkt.PayloadType)
			}
			p.heard.Frames = append(p.heard.Frames, Frame{TS: pkt.Timestamp, At: time.Now(), PCM: decodeFrame(pkt.PayloadType, pkt.Payload)})
		case len(pkt.Payload) >= 4:
			e := Event{PT: pkt.PayloadType, TS: pkt.Timestamp, Marker: pkt.Marker}
			copy(e.Payload[:], pkt.Payload)
			p.heard.Events = append(p.heard.Events, e)
		}
		p.mu.Unlock()
		p.poke()
	}
}

func (p *Phone) recordRTCP() {
	defer p.wg.Done()
	buf := make([]byte, 1500)
	for {
		n, _, err := p.rtcp.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		p.mu.Lock()
		p.heard.Reports = append(p.heard.Reports, append([]byte(nil), buf[:n]...))
		p.mu.Unlock()
		p.poke()
	}
}

func (p *Phone) poke() {
	select {
	case p.changed <- struct{}{}:
	default:
	}
}

// WaitFor blocks until cond holds for what the phone heard, or fails the
// test after a generous bound (a hang, not a timing check).
func (p *Phone) WaitFor(what string, cond func(h *Heard) bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for {
		p.mu.Lock()
		ok := cond(&p.heard)
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-p.changed:
		case <-ctx.Done():
			p.t.Fatalf("phone %v Hz: waiting for %s: %v", p.Freq, what, ctx.Err())
		}
	}
}

// Listen forgets what was heard so far and returns the audio of the next
// n frames, after skipping a few that may predate the routes under test
// (in a jitter buffer, a socket buffer or on the wire: 200 ms).
func (p *Phone) Listen(n int) []int16 {
	p.t.Helper()
	const skip = 10
	p.Clear()
	p.WaitFor("audio", func(h *Heard) bool { return len(h.Frames) >= skip+n })
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []int16
	for _, f := range p.heard.Frames[skip : skip+n] {
		out = append(out, f.PCM...)
	}
	return out
}

// ToneLevel is the amplitude of the f Hz component of pcm (8 kHz),
// estimated with a Goertzel filter: a sine of amplitude A reads about A.
func ToneLevel(pcm []int16, f float64) float64 {
	if len(pcm) == 0 {
		return 0
	}
	coeff := 2 * math.Cos(2*math.Pi*f/8000)
	var s1, s2 float64
	for _, v := range pcm {
		s0 := float64(v) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	return 2 * math.Sqrt(math.Max(power, 0)) / float64(len(pcm))
}

// AssertHears fails t unless pcm carries f Hz at a phone's level.
func AssertHears(t testing.TB, who string, pcm []int16, f float64) {
	t.Helper()
	if lv := ToneLevel(pcm, f); lv < HeardLevel {
		t.Errorf("%s should hear %v Hz: level %.0f < %d", who, f, lv, HeardLevel)
	}
}

// AssertDoesNotHear fails t if pcm carries f Hz above the noise floor.
func AssertDoesNotHear(t testing.TB, who string, pcm []int16, f float64) {
	t.Helper()
	if lv := ToneLevel(pcm, f); lv > AbsentLevel {
		t.Errorf("%s should not hear %v Hz: level %.0f > %d", who, f, lv, AbsentLevel)
	}
}

// Gap measures, on the received RTP clock, the silence between the last
// frame carrying from Hz and the first carrying to Hz: the audible gap
// when one party replaces another. ok is false when the phone never heard
// from then to.
func (p *Phone) Gap(from, to float64) (gap time.Duration, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var lastFrom, firstTo *Frame
	for i := range p.heard.Frames {
		f := &p.heard.Frames[i]
		if ToneLevel(f.PCM, to) > HeardLevel {
			firstTo = f
			break
		}
		if ToneLevel(f.PCM, from) > HeardLevel {
			lastFrom = f
		}
	}
	if lastFrom == nil || firstTo == nil {
		return 0, false
	}
	return time.Duration(firstTo.TS-lastFrom.TS-frameSamples) * time.Second / 8000, true
}

// Silence is the longest stretch of what a phone heard since the last
// Clear that carried none of a set of tones.
type Silence struct {
	// OnClock is measured on the received RTP clock: missing frames and
	// frames without any of the tones.
	OnClock time.Duration
	// Arrival is measured on the phone's wall clock, between the arrivals
	// of the two audible frames around the stretch, less one frame time.
	Arrival time.Duration
	// Audible is how many frames carried one of the tones.
	Audible int
}

// LongestSilence finds the longest stretch between two frames that each
// carried one of tones (at a phone's level), among the frames heard since
// the last Clear from the from-th on: the gap a listener hears when what
// it hears is switched (the caller's agent replaced by music, music by a
// supervisor). Start from a frame before the switch, so that a silence
// right after it is between two audible frames.
func (p *Phone) LongestSilence(from int, tones ...float64) Silence {
	p.mu.Lock()
	defer p.mu.Unlock()
	var (
		out  Silence
		last *Frame
	)
	for i := max(from, 0); i < len(p.heard.Frames); i++ {
		f := &p.heard.Frames[i]
		audible := false
		for _, tone := range tones {
			if ToneLevel(f.PCM, tone) > HeardLevel {
				audible = true
				break
			}
		}
		if !audible {
			continue
		}
		out.Audible++
		if last != nil {
			onClock := time.Duration(f.TS-last.TS-frameSamples) * time.Second / 8000
			if f.TS-last.TS > 1<<31 { // reordered or a new stream start: not a gap
				onClock = 0
			}
			out.OnClock = max(out.OnClock, onClock)
			out.Arrival = max(out.Arrival, f.At.Sub(last.At)-20*time.Millisecond)
		}
		last = f
	}
	return out
}
