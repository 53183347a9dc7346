package ari

import (
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// The end of an originate to Local/busy@callfloor-test/n (asterisk-conf's
// Busy(5) device), as Asterisk 22.10.1 sent it: Dial BUSY, then
// ChannelDestroyed with cause 0 "Unknown" (a PJSIP device answering 486
// gives cause 17 instead, see testdata/agent-busy.jsonl).
const (
	localBusyDial      = `{"type":"Dial","timestamp":"2026-11-21T21:00:03.290+0000","dialstatus":"BUSY","forward":"","dialstring":"busy@callfloor-test/n","peer":{"id":"cf-9761e7818936de2a","name":"Local/busy@callfloor-test-0000000a;1","state":"Down","protocol_id":"","caller":{"name":"","number":""},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"callfloor-test","exten":"busy","priority":1,"app_name":"AppDial2","app_data":"(Outgoing Line)"},"creationtime":"2026-11-21T21:00:03.289+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"callfloor"}`
	localBusyDestroyed = `{"type":"ChannelDestroyed","timestamp":"2026-11-21T21:00:03.290+0000","cause":0,"cause_txt":"Unknown","channel":{"id":"cf-9761e7818936de2a","name":"Local/busy@callfloor-test-0000000a;1","state":"Down","protocol_id":"","caller":{"name":"","number":""},"connected":{"name":"","number":""},"accountcode":"","dialplan":{"context":"callfloor-test","exten":"busy","priority":1,"app_name":"AppDial2","app_data":"(Outgoing Line)"},"creationtime":"2026-11-21T21:00:03.289+0000","language":"en"},"asterisk_id":"02:fc:00:00:00:01","application":"callfloor"}`
	localBusyChan      = "cf-9761e7818936de2a"
)

// A dialled device's final Dial status gives the leg's cause when its
// ChannelDestroyed carries none, and never beats a more telling one.
func TestDialStatusGivesCause(t *testing.T) {
	withStatus := func(status string) string {
		return strings.Replace(localBusyDial, `"dialstatus":"BUSY"`, `"dialstatus":"`+status+`"`, 1)
	}
	withCause := func(q850 string) string {
		return strings.Replace(localBusyDestroyed, `"cause":0,`, `"cause":`+q850+`,`, 1)
	}
	for _, tc := range []struct {
		name   string
		events []string
		want   media.Cause
	}{
		{"local busy (recorded)", []string{localBusyDial, localBusyDestroyed}, media.CauseBusy},
		{"pjsip busy", []string{localBusyDial, withCause("17")}, media.CauseBusy},
		{"no answer", []string{withStatus("NOANSWER"), localBusyDestroyed}, media.CauseNoAnswer},
		{"unavailable", []string{withStatus("CHANUNAVAIL"), localBusyDestroyed}, media.CauseUnreachable},
		{"congestion", []string{withStatus("CONGESTION"), localBusyDestroyed}, media.CauseFailed},
		{"no final status", []string{withStatus(""), localBusyDestroyed}, media.CauseNormal},
		{"cancel says nothing", []string{withStatus("CANCEL"), localBusyDestroyed}, media.CauseNormal},
		{"destroyed cause wins when more telling", []string{localBusyDial, withCause("19")}, media.CauseNoAnswer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			c := dialling(t, rec, localBusyChan)
			for _, raw := range tc.events {
				ev, err := decodeEvent([]byte(raw))
				if err != nil {
					t.Fatal(err)
				}
				c.apply(ev, time.Now())
			}
			rec.expect(t, media.LegEnded{Leg: localBusyChan, Cause: tc.want})
		})
	}
}

// A late BUSY from a fork member that lost to an answered one changes
// nothing.
func TestDialStatusAfterAnswerIgnored(t *testing.T) {
	rec := &recorder{}
	c := dialling(t, rec, localBusyChan)
	c.mu.Lock()
	l := c.legs[localBusyChan]
	l.state, l.live = legUp, localBusyChan
	delete(l.pending, localBusyChan)
	c.mu.Unlock()
	ev, err := decodeEvent([]byte(localBusyDial))
	if err != nil {
		t.Fatal(err)
	}
	c.apply(ev, time.Now())
	c.mu.Lock()
	defer c.mu.Unlock()
	if l.cause != "" || !l.up() {
		t.Fatalf("answered leg took the late status: cause %q state %d", l.cause, l.state)
	}
}

// dialling returns a Client (not running) whose table holds one dialled
// leg ringing on channel id, as originate leaves it.
func dialling(t *testing.T, rec *recorder, id string) *Client {
	t.Helper()
	c, err := New(Config{URL: "http://127.0.0.1:1/ari"}, rec, WithLogger(testLogger(t)))
	if err != nil {
		t.Fatal(err)
	}
	l := &leg{id: id, kind: kindDialed, pending: map[string]bool{id: true}}
	c.legs[id], c.chans[id] = l, l
	return c
}
