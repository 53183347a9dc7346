package rtpanchor

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/callfloor/callfloor/rtpanchor/internal/genmusic/music"
)

func FuzzParseWAV(f *testing.F) {
	f.Add(music.WAV()[:2000])
	pcm := []byte("RIFF\x00\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00\x40\x1f\x00\x00\x80\x3e\x00\x00\x02\x00\x10\x00data\x40\x01\x00\x00")
	f.Add(append(pcm, make([]byte, 320)...))
	f.Add([]byte("RIFF\x04\x00\x00\x00WAVE"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseWAV(b)
		if err != nil {
			return
		}
		if c.Len() < FrameSamples {
			t.Fatalf("accepted a clip of %d samples", c.Len())
		}
		p := c.Player()
		frame := make([]int16, FrameSamples)
		for range 3 {
			p.Next(frame)
		}
	})
}

func rtpSeed(pt uint8, marker bool, payload []byte) []byte {
	b, _ := (&rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt, Marker: marker, SequenceNumber: 1, Timestamp: 160, SSRC: 9}, Payload: payload}).Marshal()
	return b
}

// FuzzHandleRTP feeds arbitrary datagrams to a leg's receive path
// (latching, decoding into the jitter buffer, telephone-events).
func FuzzHandleRTP(f *testing.F) {
	f.Add(rtpSeed(0, false, make([]byte, 160)))
	f.Add(rtpSeed(8, true, make([]byte, 240)))
	f.Add(rtpSeed(101, true, []byte{5, 0x8a, 0x03, 0x20}))
	f.Add(rtpSeed(96, false, []byte{11, 0x0a, 0, 160}))
	f.Add([]byte{0x90, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		l := &Leg{eventPT: 101}
		var pkt rtp.Packet
		from := netip.MustParseAddrPort("127.0.0.1:4000")
		now := time.Unix(1, 0)
		for i := range 3 {
			digit, _, ok := l.handleRTP(&pkt, b, from, now.Add(time.Duration(i)*FrameDuration))
			if ok && i > 0 {
				t.Fatalf("event end reported twice (%q)", digit)
			}
		}
		frame := make([]int16, FrameSamples)
		for range 4 {
			l.jb.pull(frame)
		}
		if l.jb.n < 0 || l.jb.n > jbCap || l.nEvents > maxQueuedEvents {
			t.Fatalf("buffer state n=%d events=%d", l.jb.n, l.nEvents)
		}
	})
}

func FuzzHandleRTCP(f *testing.F) {
	sr := make([]byte, 28)
	sr[0], sr[1] = 0x80, 200
	binary.BigEndian.PutUint16(sr[2:], 6)
	f.Add(sr)
	rr := []byte{0x81, 201, 0, 7, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	f.Add(rr)
	f.Fuzz(func(t *testing.T, b []byte) {
		l := &Leg{}
		from := netip.MustParseAddrPort("127.0.0.1:4001")
		if l.handleRTCP(b, from, time.Unix(1, 0)) && l.remoteRTCP != from {
			t.Fatalf("accepted report but latched to %v", l.remoteRTCP)
		}
		var rb [24]byte
		l.recv.reportBlock(rb[:], time.Unix(2, 0))
	})
}
