package ari

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// recordedEvents returns every event payload of the transcripts.
func recordedEvents(b testing.TB) [][]byte {
	var out [][]byte
	files, _ := filepath.Glob("testdata/*.jsonl")
	for _, file := range files {
		for _, l := range loadTranscript(b, filepath.Base(file)) {
			if l.Kind == "event" {
				out = append(out, []byte(l.Event))
			}
		}
	}
	return out
}

// BenchmarkDecodeDispatch: decode one recorded Asterisk event and apply it
// to the leg table, the work the reader and dispatcher do per event.
func BenchmarkDecodeDispatch(b *testing.B) {
	events := recordedEvents(b)
	c, err := New(Config{URL: "http://127.0.0.1:1/ari"}, discardFacts{}, WithLogger(testLogger(b)))
	if err != nil {
		b.Fatal(err)
	}
	var bytes int64
	for _, e := range events {
		bytes += int64(len(e))
	}
	b.SetBytes(bytes / int64(len(events)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ev, err := decodeEvent(events[i%len(events)])
		if err != nil {
			b.Fatal(err)
		}
		c.apply(ev, time.Now())
		if i%len(events) == len(events)-1 {
			c.mu.Lock() // keep the table from growing across rounds
			clear(c.legs)
			clear(c.chans)
			c.mu.Unlock()
			drainActions(c)
		}
	}
}

// BenchmarkSocketToFacts: inbound calls as StasisStart over the real
// WebSocket from the fake, through reader, queue and dispatcher, to facts.
func BenchmarkSocketToFacts(b *testing.B) {
	f := newFake(b)
	defer f.Close()
	rec := &recorder{}
	c, err := New(Config{URL: f.URL(), User: "callfloor", Password: "secret"}, rec, WithLogger(testLogger(b)))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for !c.Connected() {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	rec.drain()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.Inbound(caller, hotline)
	}
	for {
		rec.mu.Lock()
		n := len(rec.facts) - rec.taken
		rec.mu.Unlock()
		if n >= b.N {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
}

type discardFacts struct{}

func (discardFacts) Report(media.Fact) {}

func drainActions(c *Client) {
	for {
		select {
		case <-c.actions:
		default:
			return
		}
	}
}
