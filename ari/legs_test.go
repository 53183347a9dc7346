package ari

import (
	"testing"
	"time"
)

// Every (from, to) pair of the leg table: allowed moves change state,
// the rest are refused and leave it alone.
func TestLegTransitions(t *testing.T) {
	states := []legState{legDialing, legRinging, legUp, legEnded}
	allowed := map[[2]legState]bool{
		{legDialing, legRinging}: true, {legDialing, legUp}: true, {legDialing, legEnded}: true,
		{legRinging, legUp}: true, {legRinging, legEnded}: true,
		{legUp, legEnded}: true,
	}
	for _, from := range states {
		for _, to := range states {
			l := &leg{state: from}
			got := l.to(to)
			if got != allowed[[2]legState{from, to}] {
				t.Errorf("%d → %d: allowed %v, want %v", from, to, got, !got)
			}
			if want := map[bool]legState{true: to, false: from}[got]; l.state != want {
				t.Errorf("%d → %d: state %d, want %d", from, to, l.state, want)
			}
		}
	}
}

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		args          []string
		name, exten   string
		kind          legKind
		wantedHotline string
	}{
		{nil, "PJSIP/trunk-00000000", "+842873000001", kindCustomer, "+842873000001"},
		{[]string{"inbound", "+842873000002"}, "PJSIP/trunk-1", "+842873000002", kindCustomer, "+842873000002"},
		{[]string{"agent", "a1", "c"}, "PJSIP/a1-1", "s", kindDialed, ""},
		{[]string{"number", "+849", "c"}, "PJSIP/+849-1", "s", kindDialed, ""},
		{[]string{"supervisor", "sup-sales", "c"}, "PJSIP/sup-sales-1", "s", kindMonitor, ""},
		{[]string{"snoop", "listen", "x"}, "Snoop/x-1", "s", kindSnoop, ""},
		{nil, "Snoop/x-2", "s", kindSnoop, ""},
	} {
		kind, hl := classify(tc.args, tc.name, tc.exten)
		if kind != tc.kind || hl != tc.wantedHotline {
			t.Errorf("classify(%v, %s) = %d %q, want %d %q", tc.args, tc.name, kind, hl, tc.kind, tc.wantedHotline)
		}
	}
}

func TestNewValidatesConfig(t *testing.T) {
	for _, cfg := range []Config{{URL: ""}, {URL: "ftp://x/ari"}, {URL: "http:///ari"}, {URL: "http://h:8088/ari", App: "a,b"}} {
		if _, err := New(cfg, &recorder{}); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	if _, err := New(Config{URL: "http://h:8088/ari"}, nil); err == nil {
		t.Error("New with nil facts accepted")
	}
	if _, err := New(Config{URL: "http://h:8088/ari"}, &recorder{}, WithBackoff(time.Second, time.Millisecond)); err == nil {
		t.Error("New with max backoff < min accepted")
	}
	c, err := New(Config{URL: "https://pbx.example:8089/ari/"}, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	if c.wsURL != "wss://pbx.example:8089/ari/events?app=callfloor&subscribeAll=false" {
		t.Errorf("events URL %s", c.wsURL)
	}
	if got := c.cfg.DeviceFor("a1"); got != "PJSIP/a1" {
		t.Errorf("DeviceFor = %s", got)
	}
	if id, ok := c.cfg.AgentForEndpoint("PJSIP/a1"); !ok || id != "a1" {
		t.Errorf("AgentForEndpoint = %s %v", id, ok)
	}
	if _, ok := c.cfg.AgentForEndpoint("SIP/a1"); ok {
		t.Error("AgentForEndpoint accepted another technology")
	}
}
