package esl

import (
	"bufio"
	"bytes"
	"testing"

	"github.com/callfloor/callfloor/media"
)

type discardFacts struct{ n int }

func (d *discardFacts) Report(media.Fact) { d.n++ }

// BenchmarkReadAndDispatch measures the read path of one connection:
// framing, event parsing and applying to the call state, over the
// recorded inbound-answered stream (5–12 KB channel events, HEARTBEATs,
// replies). Report its MB/s and ns/op (one op = the whole recorded call).
func BenchmarkReadAndDispatch(b *testing.B) {
	var stream bytes.Buffer
	frames := 0
	for _, l := range loadTranscript(b, "inbound-answered.jsonl") {
		if l.Dir == "in" {
			stream.WriteString(l.Raw)
			frames++
		}
	}
	data := stream.Bytes()
	sink := &discardFacts{}
	c, err := New(Config{Addr: "127.0.0.1:1"}, sink)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		c.st.init() // a fresh call each time
		br := bufio.NewReaderSize(bytes.NewReader(data), 64<<10)
		for range frames {
			f, err := readFrame(br)
			if err != nil {
				b.Fatal(err)
			}
			if f.contentType != typeEventPlain {
				continue
			}
			ev, err := parseEvent(f.body)
			if err != nil {
				b.Fatal(err)
			}
			c.handleEvent(ev)
		}
	}
	b.ReportMetric(float64(frames), "frames/op")
}
