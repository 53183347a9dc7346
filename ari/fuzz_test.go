package ari

import (
	"path/filepath"
	"testing"
	"time"
)

// FuzzDecodeEvent feeds arbitrary WebSocket payloads through the decoder
// and the dispatcher's handler: unknown types and malformed JSON must be
// errors, never panics, and nothing decoded may crash the handler. Seeds
// are every event Asterisk sent in testdata/*.jsonl plus known troubles.
func FuzzDecodeEvent(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.jsonl")
	for _, file := range files {
		for _, l := range loadTranscript(f, filepath.Base(file)) {
			if l.Kind == "event" {
				f.Add([]byte(l.Event))
			}
		}
	}
	for _, s := range []string{
		``, `null`, `[]`, `{}`, `{"type":""}`, `{"type":"ChannelTransfer"}`, `{"type":"ChannelToneDetected"}`,
		`{"type":"ApplicationRegistered","application":"callfloor"}`,
		`{"type":"StasisStart","channel":"x"}`, `{"type":"StasisStart","args":null,"channel":{"id":"a"}}`,
		`{"type":"StasisStart","args":["agent"],"channel":{"id":"a","name":"Snoop/x"}}`,
		`{"type":"ChannelDestroyed","cause":1e99,"channel":{"id":"a"}}`,
		`{"type":"Dial","dialstatus":"RINGING","peer":{"id":""}}`,
		`{"type":"EndpointStateChange","endpoint":{"technology":"PJSIP","resource":"","state":"online"}}`,
		`{"type":"DeviceStateChanged","device_state":{"name":"PJSIP/a1","state":"UNAVAILABLE"}}`,
		`{"type":"ChannelLeftBridge","bridge":{"id":"b","channels":null},"channel":{"id":"a"}}`,
		`{"type":"StasisStart","timestamp":"2026-13-99T99:99:99.999+9999"}`,
		`{"type":"StasisStart","args":["supervisor","s","c"],"channel":{"id":"u","state":"Up"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := New(Config{URL: "http://127.0.0.1:1/ari"}, &recorder{}, WithLogger(testLogger(t)))
		if err != nil {
			t.Fatal(err)
		}
		// Seed state the event may refer to, so handlers run deep.
		c.trackDialled("a", kindDialed)
		c.trackDialled("u", kindDialed) // adopted while ringing after a restart
		c.legs["u"].unsure = true
		c.bridges["b"] = &brdg{id: "b", role: roleCall, members: map[string]bool{"a": true}}
		ev, err := decodeEvent(data)
		if err != nil {
			if ev != nil {
				t.Fatalf("error %v with an event", err)
			}
			return
		}
		c.apply(ev, time.Now())
		c.apply(ev, time.Now()) // twice: duplicates must be harmless too
	})
}
