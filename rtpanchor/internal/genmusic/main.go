// Command genmusic writes rtpanchor's default music on hold: a slow,
// soft arpeggio over four chords (C, Am, F, G), synthesized here so the
// repository ships no recorded audio. 8 kHz mono G.711 µ-law WAV, 8 s.
package main

import (
	"flag"
	"log"
	"os"

	"github.com/callfloor/callfloor/rtpanchor/internal/genmusic/music"
)

func main() {
	out := flag.String("o", "music.wav", "output file")
	flag.Parse()
	if err := os.WriteFile(*out, music.WAV(), 0o644); err != nil {
		log.Fatal(err)
	}
}
