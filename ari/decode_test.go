package ari

import (
	"reflect"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// TestDecodeCommonLikeLibrary: on every event of the recorded transcripts
// and every event the fake sends through a routed call, decodeCommon
// gives exactly what ari.DecodeEvent gives, or leaves the event to it.
func TestDecodeCommonLikeLibrary(t *testing.T) {
	var events [][]byte
	for _, e := range recordedEvents(t) {
		events = append(events, e)
	}
	h := start(t)
	h.f.mu.Lock()
	h.f.subs["deviceState:PJSIP/a1"]++ // a1's device states too
	h.f.mu.Unlock()
	cust := h.f.Inbound(caller, hotline)
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(cust), Caller: caller, Hotline: hotline})
	leg, err := h.c.Dial(h.ctx, media.DialRequest{CallID: "c", Customer: media.LegID(cust), Target: agentTarget("a1"), Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	h.f.Ring(string(leg))
	h.f.AnswerDevice(string(leg))
	h.rec.expect(t, media.LegRinging{Leg: leg}, media.LegAnswered{Leg: leg})
	dtmf := `{"type":"ChannelDtmfReceived","timestamp":"2026-11-21T19:08:40.123+0000","digit":"5","duration_ms":120,` +
		`"channel":{"id":"` + string(leg) + `","name":"PJSIP/a1-00000001","state":"Up","protocol_id":"","caller":{"name":"","number":""},` +
		`"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"from-internal","exten":"s","priority":1,` +
		`"app_name":"Stasis","app_data":"callfloor"},"creationtime":"2026-11-21T19:08:37.790+0000","language":"en"},` +
		`"asterisk_id":"02:fc:00:00:00:01","application":"callfloor"}`
	h.f.Send(dtmf)
	events = append(events, []byte(dtmf))
	h.rec.expect(t, media.DTMF{Leg: leg, Digit: "5"})
	h.f.RemoteHangup(string(leg))
	h.f.mu.Lock()
	for _, e := range h.f.emitted {
		events = append(events, e)
	}
	h.f.mu.Unlock()
	decoded := map[string]int{}
	for _, e := range events {
		got, ok, err := decodeCommon(e)
		if !ok {
			continue
		}
		want, werr := ari.DecodeEvent(e)
		if err != nil || werr != nil {
			t.Fatalf("%s: errors %v / library %v", e, err, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\n got  %#v\n want %#v", e, got, want)
		}
		decoded[got.GetType()]++
	}
	for typ := range commonEvents {
		if decoded[typ] == 0 {
			t.Errorf("no %s among %d events: the comparison does not cover it", typ, len(events))
		}
	}
}

// FuzzDecodeCommon: whatever arrives, decodeCommon fails when the library
// fails and otherwise agrees with it (up to the creation time of a
// channel sent as null, which the library makes year 1 and nothing reads).
func FuzzDecodeCommon(f *testing.F) {
	for _, e := range recordedEvents(f) {
		f.Add(e)
	}
	f.Add([]byte(`{"type":"ChannelDtmfReceived","digit":"5","duration_ms":120,"channel":{"id":"x"}}`))
	f.Add([]byte(`{"type":"DeviceStateChanged","device_state":{"name":"PJSIP/a1","state":"INUSE"}}`))
	f.Add([]byte(`{"type":"Dial","peer":null,"type":"Dial"}`))
	// Times: null, a number, a bad string, an escaped digit, a channel's.
	f.Add([]byte(`{"type":"StasisEnd","timestamp":null}`))
	f.Add([]byte(`{"type":"StasisEnd","timestamp":1765000000}`))
	f.Add([]byte(`{"type":"StasisEnd","timestamp":"yesterday"}`))
	f.Add([]byte(`{"type":"StasisEnd","timestamp":"\u0032026-12-06T08:00:00.123+0700"}`))
	f.Add([]byte(`{"type":"StasisEnd","channel":{"id":"x","creationtime":"2026-12-06T08:00:00.123-0000"}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, ok, err := decodeCommon(data)
		if !ok {
			return
		}
		want, werr := ari.DecodeEvent(data)
		if (err != nil) != (werr != nil) {
			t.Fatalf("%q: error %v, library %v", data, err, werr)
		}
		if err != nil {
			return
		}
		if !reflect.DeepEqual(withoutNullTimes(got), withoutNullTimes(want)) {
			t.Fatalf("%q:\n got  %#v\n want %#v", data, got, want)
		}
	})
}

// withoutNullTimes clears the creation time of channels that carry
// nothing else (sent as null).
func withoutNullTimes(ev ari.Event) ari.Event {
	clear := func(c *ari.ChannelData) {
		if c.ID == "" && c.Name == "" && c.Caller == nil && c.Dialplan == nil && c.Key == nil && c.State == "" &&
			c.Accountcode == "" && c.Connected == nil && c.ChannelVars == nil {
			c.Creationtime = nil
		}
	}
	switch e := ev.(type) {
	case *ari.StasisStart:
		clear(&e.Channel)
		clear(&e.ReplaceChannel)
	case *ari.Dial:
		clear(&e.Caller)
		clear(&e.Peer)
		clear(&e.Forwarded)
	default:
		v := reflect.ValueOf(ev).Elem().FieldByName("Channel")
		if v.IsValid() {
			clear(v.Addr().Interface().(*ari.ChannelData))
		}
	}
	return ev
}

// BenchmarkDecodeCommon: one event of the types a call brings, as the
// library decodes it and as decodeCommon does.
func BenchmarkDecodeCommon(b *testing.B) {
	var events [][]byte
	for _, e := range recordedEvents(b) {
		if commonEvents[string(peekType(e))] != nil {
			events = append(events, e)
		}
	}
	b.Run("library", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := ari.DecodeEvent(events[i%len(events)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("common", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, _, err := decodeCommon(events[i%len(events)]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
