package esl

import (
	"bufio"
	"bytes"
	"errors"
	"strings"
	"testing"
)

func TestReadFrameRecordedStream(t *testing.T) {
	// Every recorded connection, joined, must frame back into exactly the
	// recorded frames.
	for _, name := range []string{"connect.jsonl", "inbound-answered.jsonl", "reconnect.jsonl", "presence.jsonl"} {
		lines := loadTranscript(t, name)
		for conn := 1; conn <= 2; conn++ {
			var stream bytes.Buffer
			var want []string
			for _, l := range lines {
				if l.Dir == "in" && l.Conn == conn {
					stream.WriteString(l.Raw)
					want = append(want, contentTypeOf(l.Raw))
				}
			}
			br := bufio.NewReader(&stream)
			for i, ct := range want {
				f, err := readFrame(br)
				if err != nil {
					t.Fatalf("%s conn %d frame %d: %v", name, conn, i, err)
				}
				if f.contentType != ct {
					t.Fatalf("%s conn %d frame %d: type %q, want %q", name, conn, i, f.contentType, ct)
				}
				if ct == typeEventPlain {
					if _, err := parseEvent(f.body); err != nil {
						t.Fatalf("%s conn %d frame %d: event: %v", name, conn, i, err)
					}
				}
			}
			if br.Buffered() != 0 || stream.Len() != 0 {
				t.Fatalf("%s conn %d: bytes left over", name, conn)
			}
		}
	}
}

func TestReadFrameShapes(t *testing.T) {
	br := bufio.NewReader(strings.NewReader(
		"Content-Type: command/reply\nReply-Text: +OK Job-UUID: 7f4d\nJob-UUID: 7f4d\n\n" +
			"Content-Type: api/response\nContent-Length: 17\n\n{\"row_count\": 0}\n" +
			"Content-Type: text/disconnect-notice\nContent-Length: 67\n\nDisconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n"))
	f, err := readFrame(br)
	if err != nil || f.contentType != typeReply || f.replyText != "+OK Job-UUID: 7f4d" || f.jobUUID != "7f4d" || f.body != nil {
		t.Fatalf("bgapi reply: %+v, %v", f, err)
	}
	f, err = readFrame(br)
	if err != nil || string(f.body) != "{\"row_count\": 0}\n" {
		t.Fatalf("api/response: %+v, %v", f, err)
	}
	f, err = readFrame(br)
	if err != nil || f.contentType != typeDisconnect || len(f.body) != 67 {
		t.Fatalf("disconnect-notice: %+v, %v", f, err)
	}
}

func TestReadFrameMalformed(t *testing.T) {
	for name, in := range map[string]string{
		"bad length":      "Content-Type: api/response\nContent-Length: 12x\n\n+OK\n",
		"negative length": "Content-Type: api/response\nContent-Length: -1\n\n",
		"huge length":     "Content-Type: api/response\nContent-Length: 999999999999\n\n",
		"truncated body":  "Content-Type: api/response\nContent-Length: 40\n\n+OK\n",
		"no colon":        "Content-Type api/response\n\n",
		"cut header":      "Content-Type: api/resp",
		"header eof":      "Content-Type: api/response\n",
	} {
		_, err := readFrame(bufio.NewReader(strings.NewReader(in)))
		if !errors.Is(err, errBadFrame) {
			t.Errorf("%s: err = %v, want errBadFrame", name, err)
		}
	}
}

func TestParseEventDecodesAndJobBody(t *testing.T) {
	ev, err := parseEvent([]byte("Event-Subclass: sofia%3A%3Aregister\nEvent-Name: CUSTOM\n" +
		"FreeSWITCH-Version: 1.11.1-release%2Bgit\nEvent-Date-GMT: Sat,%2021%20Nov\nbad: %zz\n\n"))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]string{
		"FreeSWITCH-Version": "1.11.1-release+git", "Event-Date-GMT": "Sat, 21 Nov", "bad": "%zz",
	} {
		if got := ev.get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if ev.name() != "CUSTOM sofia::register" {
		t.Errorf("name = %q", ev.name())
	}
	job, err := parseEvent([]byte("Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: 25\n\n-ERR USER_NOT_REGISTERED\n"))
	if err != nil || string(job.body) != "-ERR USER_NOT_REGISTERED\n" {
		t.Fatalf("job: %v %q", err, job.body)
	}
	if _, err := parseEvent([]byte("Event-Name: BACKGROUND_JOB\nContent-Length: 30\n\n-ERR\n")); err == nil {
		t.Error("truncated job body accepted")
	}
}

// FuzzReadFrame: no input may panic the reader or the event parser, and
// whatever they accept must be within the limits. The seeds are recorded
// frames (up to 12 KB), so bound minimization when fuzzing:
//
//	go test -run XXX -fuzz FuzzReadFrame -fuzztime=30s -fuzzminimizetime=2s ./esl/
func FuzzReadFrame(f *testing.F) {
	for _, name := range []string{"connect.jsonl", "presence.jsonl", "agent-unregistered.jsonl", "connect-badauth.jsonl"} {
		for i, l := range loadTranscript(f, name) {
			if l.Dir == "in" && (i%3 == 0 || len(l.Raw) < 2000) {
				f.Add([]byte(l.Raw))
			}
		}
	}
	f.Add([]byte("Content-Length: 5\nContent-Type: text/event-plain\n\nA: b\n"))
	f.Add([]byte("Content-Type: text/event-plain\nContent-Length: 40\n\nEvent-Name: BACKGROUND_JOB\nContent-Length: 99\n\nx"))
	f.Add([]byte("Content-Length: -3\n\n"))
	f.Add([]byte("Content-Length: 3\n\nab"))
	f.Add([]byte("\n\n\nEvent-Name: NOPE_UNKNOWN\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReader(bytes.NewReader(data))
		for range 64 {
			fr, err := readFrame(br)
			if err != nil {
				return
			}
			if len(fr.body) > maxBody {
				t.Fatalf("body of %d bytes accepted", len(fr.body))
			}
			if ev, err := parseEvent(fr.body); err == nil {
				// Exercise the tracker too: unknown or odd events must not panic.
				var tr tracker
				tr.init()
				tr.apply(ev, t0, func(u string) (string, bool) { return u, true })
			}
		}
	})
}
