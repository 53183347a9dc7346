package ari

import (
	"fmt"
	"strings"
	"testing"

	"github.com/callfloor/callfloor/media"
)

// A digit the trunk sent by SIP INFO, as Asterisk 22.10.1 delivered it to
// an application subscribed to endpoint:PJSIP: this exact message twice in
// a row (channel id replaced per test).
const realDTMF = `{"type":"ChannelDtmfReceived","timestamp":"2026-11-21T21:08:11.345+0000","digit":"5","duration_ms":160,"channel":{"id":"CHAN","name":"PJSIP/trunk-0000000e","state":"Up","protocol_id":"1-14219@127.0.0.1","caller":{"name":"Customer","number":"84901234567"},"connected":{"name":"84901234567","number":"84901234567"},"accountcode":"","dialplan":{"context":"from-trunk","exten":"+842873000001","priority":2,"app_name":"Stasis","app_data":"callfloor,inbound,+842873000001"},"creationtime":"2026-11-21T21:08:09.837+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"callfloor"}`

// The repeat is dropped; the same digit pressed again later (another
// timestamp) is a new digit.
func TestRepeatedEventReportedOnce(t *testing.T) {
	h := start(t)
	cust := h.f.Inbound(caller, hotline)
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(cust), Caller: caller, Hotline: hotline})
	dtmf := strings.Replace(realDTMF, "CHAN", cust, 1)
	again := strings.Replace(dtmf, "21:08:11.345", "21:08:11.905", 1)
	other := strings.Replace(strings.Replace(dtmf, `"digit":"5"`, `"digit":"6"`, 1), "21:08:11.345", "21:08:12.400", 1)
	for _, raw := range []string{dtmf, dtmf, again, again, other} {
		h.f.Send(raw)
	}
	leg := media.LegID(cust)
	h.rec.expect(t, media.DTMF{Leg: leg, Digit: "5"}, media.DTMF{Leg: leg, Digit: "5"}, media.DTMF{Leg: leg, Digit: "6"})
}

func TestRecentEventsWindow(t *testing.T) {
	r := newRecentEvents()
	msg := func(i int) []byte { return fmt.Appendf(nil, `{"type":"ChannelVarset","timestamp":"%d"}`, i) }
	if r.repeat(msg(0)) {
		t.Fatal("first message taken for a repeat")
	}
	if !r.repeat(msg(0)) {
		t.Fatal("direct repeat not recognised")
	}
	for i := 1; i < recentWindow; i++ {
		if r.repeat(msg(i)) {
			t.Fatalf("message %d taken for a repeat", i)
		}
	}
	if !r.repeat(msg(0)) {
		t.Fatalf("repeat %d messages later not recognised", recentWindow-1)
	}
	r.repeat(msg(recentWindow)) // pushes message 0 out of the window
	if r.repeat(msg(0)) {
		t.Fatal("message from beyond the window taken for a repeat")
	}
	if r.repeat(nil) || !r.repeat([]byte{}) {
		t.Fatal("empty message handling")
	}
}

func BenchmarkRecentEvents(b *testing.B) {
	r := newRecentEvents()
	msgs := make([][]byte, 64)
	for i := range msgs {
		msgs[i] = []byte(strings.Replace(realDTMF, "CHAN", fmt.Sprintf("chan-%d", i), 1))
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		r.repeat(msgs[i%len(msgs)])
	}
}
