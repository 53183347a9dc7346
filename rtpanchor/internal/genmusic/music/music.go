// Package music synthesizes rtpanchor's default music on hold.
package music

import (
	"encoding/binary"
	"math"

	"github.com/zaf/g711"
)

const rate = 8000

// notes: four bars of a broken chord, half a second per note.
var notes = []float64{
	261.63, 329.63, 392.00, 329.63, // C
	220.00, 261.63, 329.63, 261.63, // Am
	174.61, 220.00, 261.63, 220.00, // F
	196.00, 246.94, 293.66, 246.94, // G
}

// Samples renders the loop: each note a sine with two soft overtones, a
// 15 ms attack and an exponential decay, at most about -12 dBFS.
func Samples() []int16 {
	per := rate / 2
	out := make([]int16, len(notes)*per)
	for n, f := range notes {
		for i := range per {
			t := float64(i) / rate
			env := math.Min(1, t/0.015) * math.Exp(-3*t)
			v := math.Sin(2*math.Pi*f*t) + 0.3*math.Sin(4*math.Pi*f*t) + 0.1*math.Sin(6*math.Pi*f*t)
			out[n*per+i] = int16(6000 * env * v)
		}
	}
	return out
}

// WAV encodes Samples as a µ-law WAV file (format tag 7).
func WAV() []byte {
	s := Samples()
	data := g711.EncodeUlaw(pcmBytes(s))
	b := make([]byte, 0, 58+len(data))
	le32 := func(v uint32) { b = binary.LittleEndian.AppendUint32(b, v) }
	le16 := func(v uint16) { b = binary.LittleEndian.AppendUint16(b, v) }
	b = append(b, "RIFF"...)
	le32(uint32(4 + 26 + 8 + len(data)))
	b = append(b, "WAVEfmt "...)
	le32(18)
	le16(7)    // µ-law
	le16(1)    // mono
	le32(rate) // sample rate
	le32(rate) // byte rate
	le16(1)    // block align
	le16(8)    // bits per sample
	le16(0)    // extension size
	b = append(b, "data"...)
	le32(uint32(len(data)))
	return append(b, data...)
}

func pcmBytes(s []int16) []byte {
	b := make([]byte, 2*len(s))
	for i, v := range s {
		binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
	}
	return b
}
