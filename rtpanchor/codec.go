package rtpanchor

import (
	"fmt"
	"time"

	"github.com/zaf/g711"
)

// Codec is a G.711 payload format. Its value is the static RTP payload
// type (RFC 3551), so a packet's payload type names its codec directly.
type Codec uint8

// The codecs the anchor speaks. Both are 8 kHz, one byte per sample, so a
// 20 ms frame is 160 bytes either way and transcoding is a table lookup.
const (
	PCMU Codec = 0
	PCMA Codec = 8
)

// String is the SDP encoding name.
func (c Codec) String() string {
	switch c {
	case PCMU:
		return "PCMU"
	case PCMA:
		return "PCMA"
	}
	return fmt.Sprintf("codec(%d)", uint8(c))
}

func (c Codec) valid() bool { return c == PCMU || c == PCMA }

// Audio framing: 8 kHz mono, 20 ms per frame.
const (
	SampleRate    = 8000
	FrameSamples  = 160
	FrameDuration = 20 * time.Millisecond
	maxPacket     = 1500
	rtpHeaderLen  = 12
	// defaultEventPT is the telephone-event payload type offered when the
	// peer has not chosen one (101 is what most phones use).
	defaultEventPT = 101
)

// Decoding tables: 256 entries each, built once, so decoding a frame is
// 160 lookups with no allocation.
var (
	ulawToPCM [256]int16
	alawToPCM [256]int16
)

func init() {
	for i := range 256 {
		ulawToPCM[i] = g711.DecodeUlawFrame(uint8(i))
		alawToPCM[i] = g711.DecodeAlawFrame(uint8(i))
	}
}

// decode appends the linear samples of payload in codec c to pcm.
func decode(c Codec, payload []byte, pcm []int16) []int16 {
	table := &ulawToPCM
	if c == PCMA {
		table = &alawToPCM
	}
	for _, b := range payload {
		pcm = append(pcm, table[b])
	}
	return pcm
}

// encode writes pcm in codec c into dst (len(dst) >= len(pcm)).
func encode(c Codec, pcm []int16, dst []byte) {
	if c == PCMA {
		for i, s := range pcm {
			dst[i] = g711.EncodeAlawFrame(s)
		}
		return
	}
	for i, s := range pcm {
		dst[i] = g711.EncodeUlawFrame(s)
	}
}
