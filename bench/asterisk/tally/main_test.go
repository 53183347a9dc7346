package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// trace writes messages in sipp's -trace_msg layout.
func trace(msgs ...string) string {
	var b strings.Builder
	for _, m := range msgs {
		b.WriteString(m)
	}
	return b.String()
}

func msg(at, dir, text string) string {
	verb := "UDP message received [100] bytes :"
	if dir == "sent" {
		verb = "UDP message sent (100 bytes):"
	}
	return traceSep + "2026-12-04 19:08:" + at + "\n" + verb + "\n\n" + text + "\n\n"
}

const (
	invite7 = "INVITE sip:+842873009999@127.0.0.1:5060 SIP/2.0\nFrom: \"8490007\" <sip:8490007@127.0.0.1:6200>;tag=1bc7\nCSeq: 1 INVITE\nContent-Length: 3\n\nv=0"
	ok7     = "SIP/2.0 200 OK\nFrom: \"8490007\" <sip:8490007@127.0.0.1:6200>;tag=1bc7\nCSeq: 1 INVITE\nContent-Length: 0"
	invite8 = "INVITE sip:+842873009999@127.0.0.1:5060 SIP/2.0\nFrom: \"8490008\" <sip:8490008@127.0.0.1:6200>;tag=1bc8\nCSeq: 1 INVITE"
	// The agent's INVITE carries the caller id as Asterisk formats it.
	trying7      = "SIP/2.0 100 Trying\nFrom: \"8490007\" <sip:8490007@127.0.0.1:6200>;tag=1bc7\nCSeq: 1 INVITE"
	agentInvite7 = "INVITE sip:l00001@127.0.0.1:7000 SIP/2.0\nFrom: \"+8490007\" <sip:+8490007@127.0.0.1>;tag=x\nCSeq: 12 INVITE"
	agentOK7     = "SIP/2.0 200 OK\nFrom: \"+8490007\" <sip:+8490007@127.0.0.1>;tag=x\nCSeq: 12 INVITE"
	agentBye7    = "SIP/2.0 200 OK\nFrom: \"+8490007\" <sip:+8490007@127.0.0.1>;tag=x\nCSeq: 13 BYE"
)

// One call connected (INVITE at .100, agent's 200 OK at .350), one never
// answered: 2 attempted, 1 connected with 250 ms setup.
func TestReadCallsMatchesCallerAndAgent(t *testing.T) {
	caller := trace(msg("01.100000", "sent", invite7), msg("01.200000", "sent", invite8), msg("01.110000", "received", trying7), msg("01.400000", "received", ok7))
	agents := trace(msg("01.140000", "received", agentInvite7), msg("01.350000", "sent", agentOK7), msg("02.000000", "sent", agentBye7), msg("01.360000", "sent", agentOK7))
	c, err := readCalls(strings.NewReader(caller), strings.NewReader(agents))
	if err != nil {
		t.Fatal(err)
	}
	s := c.setups()
	if len(c.invited) != 2 || len(s) != 1 || s[0] != 250*time.Millisecond {
		t.Fatalf("invited %d setups %v; want 2 and [250ms]", len(c.invited), s)
	}
	var out bytes.Buffer
	if err := writeRow(&out, c, row{side: "callfloor", rate: 20, astCPU: 0.02, cfCPU: -1, redisCPU: -1, events: 16, requests: -1}); err != nil {
		t.Fatal(err)
	}
	want := "| callfloor | 20 | 2 | 1 | 1 | 250 ms | 250 ms | 10 ms | 40 ms | 10.0 ms | – | – | 8.0 | – |  |\n"
	if out.String() != want {
		t.Fatalf("row\n%q\nwant\n%q", out.String(), want)
	}
}

func TestParseTraceRejectsOtherFiles(t *testing.T) {
	for _, in := range []string{"hello\n", traceSep + "yesterday\nUDP message sent (1 bytes):\n"} {
		if err := parseTrace(strings.NewReader(in), func(message) {}); err == nil {
			t.Fatalf("%q: no error", in)
		}
	}
}

func TestQuantile(t *testing.T) {
	s := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20}
	if quantile(s, 0.5) != 10 || quantile(s, 0.95) != 19 || quantile(nil, 0.95) != 0 {
		t.Fatalf("p50 %v p95 %v", quantile(s, 0.5), quantile(s, 0.95))
	}
}

func FuzzParseTrace(f *testing.F) {
	f.Add(trace(msg("01.100000", "sent", invite7), msg("01.400000", "received", ok7)))
	f.Add(traceSep + "2026-12-04 19:08:01.1\n\n\n")
	f.Fuzz(func(t *testing.T, in string) {
		_ = parseTrace(strings.NewReader(in), func(m message) {
			if m.first == "" {
				t.Fatal("message without a first line")
			}
			_ = m.key()
		})
	})
}
