package ari

import (
	"encoding/json"
	"maps"
	"slices"
	"testing"
)

// TestEventFilter pins what the application asks Asterisk for: exactly
// the event types update handles (so ChannelVarset and the other
// per-call chatter never leave Asterisk), set on every connection before
// anything else.
func TestEventFilter(t *testing.T) {
	h := start(t)
	h.f.mu.Lock()
	got := slices.Sorted(maps.Keys(h.f.allowed))
	h.f.mu.Unlock()
	want := slices.Sorted(slices.Values(handledEvents))
	if !slices.Equal(got, want) {
		t.Fatalf("event filter allows %v, want %v", got, want)
	}
	// Each allowed type decodes to the typed event update switches on.
	for _, typ := range handledEvents {
		raw, _ := json.Marshal(map[string]any{"type": typ, "application": "callfloor"})
		ev, err := decodeEvent(raw)
		if err != nil {
			t.Errorf("%s: %v", typ, err)
			continue
		}
		if ev.GetType() != typ {
			t.Errorf("%s decodes as %s", typ, ev.GetType())
		}
	}
	// What the filter drops never reaches the socket.
	h.f.mu.Lock()
	before := len(h.f.emitted)
	h.f.sendLocked(h.f.event("ChannelVarset", kv{"variable", "BRIDGEPEER"}, kv{"value", "PJSIP/a1-00000001"}))
	dropped := len(h.f.emitted) == before
	// Nor does ChannelStateChange: a leg's ringing comes as Dial RINGING.
	h.f.sendLocked(h.f.event("ChannelStateChange"))
	droppedState := len(h.f.emitted) == before
	h.f.mu.Unlock()
	if !dropped {
		t.Fatal("ChannelVarset passed the application's event filter")
	}
	if !droppedState {
		t.Fatal("ChannelStateChange passed the application's event filter")
	}
}
