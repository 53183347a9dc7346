package rtpanchor

import (
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
)

// ErrBadWAV is returned for a file that is not an 8 kHz mono WAV in a
// format the anchor plays (16-bit linear PCM, G.711 µ-law or A-law).
var ErrBadWAV = errors.New("rtpanchor: not an 8 kHz mono WAV (16-bit PCM, µ-law or A-law)")

// Clip is a loop of 8 kHz mono audio: music on hold or a ringback
// cadence. One Clip is shared read-only by every caller hearing it; each
// caller gets its own position through Player.
type Clip struct {
	samples []int16
}

// Len is the clip's length in samples.
func (c *Clip) Len() int { return len(c.samples) }

// Player starts a new listener at the beginning of the clip.
func (c *Clip) Player() Source { return &clipPlayer{clip: c} }

// Source produces the audio a listener hears instead of the mix (music,
// ringback). Next fills exactly FrameSamples samples and is called by the
// anchor's clock once per 20 ms frame.
type Source interface {
	Next(pcm []int16)
}

type clipPlayer struct {
	clip *Clip
	pos  int
}

func (p *clipPlayer) Next(pcm []int16) {
	s := p.clip.samples
	for i := range pcm {
		pcm[i] = s[p.pos]
		p.pos++
		if p.pos == len(s) {
			p.pos = 0
		}
	}
}

// LoadWAV reads a clip from a WAV file.
func LoadWAV(path string) (*Clip, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("rtpanchor: music file: %w", err)
	}
	c, err := ParseWAV(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// WAV format tags (the fmt chunk's first field).
const (
	wavPCM  = 1
	wavALaw = 6
	wavULaw = 7
)

// ParseWAV decodes a RIFF WAVE file: 8000 Hz, one channel, and either
// 16-bit linear PCM or 8-bit G.711. Other chunks (LIST, fact) are skipped.
func ParseWAV(b []byte) (*Clip, error) {
	if len(b) < 12 || string(b[0:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, fmt.Errorf("%w: no RIFF WAVE header", ErrBadWAV)
	}
	var (
		format, channels, bits uint16
		rate                   uint32
		haveFmt                bool
		data                   []byte
	)
	for rest := b[12:]; len(rest) >= 8; {
		id, size := string(rest[0:4]), binary.LittleEndian.Uint32(rest[4:8])
		rest = rest[8:]
		if uint64(size) > uint64(len(rest)) {
			// A truncated last data chunk is common (streams written
			// without a final size); take what is there.
			if id != "data" {
				return nil, fmt.Errorf("%w: chunk %q runs past the end", ErrBadWAV, id)
			}
			size = uint32(len(rest))
		}
		body := rest[:size]
		switch id {
		case "fmt ":
			if len(body) < 16 {
				return nil, fmt.Errorf("%w: short fmt chunk", ErrBadWAV)
			}
			format = binary.LittleEndian.Uint16(body[0:2])
			channels = binary.LittleEndian.Uint16(body[2:4])
			rate = binary.LittleEndian.Uint32(body[4:8])
			bits = binary.LittleEndian.Uint16(body[14:16])
			haveFmt = true
		case "data":
			data = body
		}
		// Chunks are padded to an even size.
		skip := int(size) + int(size&1)
		if skip > len(rest) {
			skip = len(rest)
		}
		rest = rest[skip:]
	}
	if !haveFmt || data == nil {
		return nil, fmt.Errorf("%w: missing fmt or data chunk", ErrBadWAV)
	}
	if channels != 1 || rate != SampleRate {
		return nil, fmt.Errorf("%w: %d channels at %d Hz", ErrBadWAV, channels, rate)
	}
	var samples []int16
	switch {
	case format == wavPCM && bits == 16:
		samples = make([]int16, len(data)/2)
		for i := range samples {
			samples[i] = int16(binary.LittleEndian.Uint16(data[2*i:]))
		}
	case format == wavULaw && bits == 8:
		samples = decode(PCMU, data, make([]int16, 0, len(data)))
	case format == wavALaw && bits == 8:
		samples = decode(PCMA, data, make([]int16, 0, len(data)))
	default:
		return nil, fmt.Errorf("%w: format %d with %d bits", ErrBadWAV, format, bits)
	}
	if len(samples) < FrameSamples {
		return nil, fmt.Errorf("%w: shorter than one 20 ms frame", ErrBadWAV)
	}
	return &Clip{samples: samples}, nil
}

// defaultMusicWAV is a synthesized arpeggio made by internal/genmusic
// (`go generate ./rtpanchor`), never downloaded audio.
//
//go:generate go run ./internal/genmusic -o music.wav
//go:embed music.wav
var defaultMusicWAV []byte

var defaultMusic = sync.OnceValue(func() *Clip {
	c, err := ParseWAV(defaultMusicWAV)
	if err != nil {
		panic("rtpanchor: embedded music.wav: " + err.Error())
	}
	return c
})

// DefaultMusic is the music shipped with callfloor for callers waiting in
// a queue.
func DefaultMusic() *Clip { return defaultMusic() }

// Ringback cadences: two frequencies played together, on for On
// milliseconds, then off for Off.
type Cadence struct {
	F1, F2  float64
	On, Off int
}

// Well-known ringback tones (ITU-T E.180 supplement 2).
var (
	RingbackUS = Cadence{F1: 440, F2: 480, On: 2000, Off: 4000}
	RingbackEU = Cadence{F1: 425, On: 1000, Off: 4000}
	RingbackUK = Cadence{F1: 400, F2: 450, On: 400, Off: 200}
)

// ToneClip renders one period of a cadence at about -16 dBFS per tone.
func ToneClip(c Cadence) (*Clip, error) {
	if c.F1 <= 0 || c.F1 >= SampleRate/2 || c.F2 < 0 || c.F2 >= SampleRate/2 || c.On <= 0 || c.Off < 0 || c.On+c.Off > 60_000 {
		return nil, fmt.Errorf("rtpanchor: cadence %+v out of range", c)
	}
	on, total := c.On*SampleRate/1000, (c.On+c.Off)*SampleRate/1000
	s := make([]int16, total)
	const amp = 5000
	for i := range on {
		t := float64(i) / SampleRate
		v := math.Sin(2 * math.Pi * c.F1 * t)
		if c.F2 > 0 {
			v += math.Sin(2 * math.Pi * c.F2 * t)
		}
		s[i] = int16(amp * v)
	}
	return &Clip{samples: s}, nil
}
