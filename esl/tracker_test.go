package esl

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// recordedEvent returns the first recorded event name of uuid in file,
// re-addressed to as (and with a replaced Hangup-Cause when cause != "").
func recordedEvent(t *testing.T, file, name, uuid, as, cause string) *event {
	t.Helper()
	for _, l := range loadTranscript(t, file) {
		if l.Dir != "in" || contentTypeOf(l.Raw) != typeEventPlain {
			continue
		}
		_, body, _ := strings.Cut(l.Raw, "\n\n")
		ev, err := parseEvent([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if ev.name() != name || ev.get("Unique-ID") != uuid {
			continue
		}
		body = strings.ReplaceAll(body, uuid, as)
		if cause != "" {
			body = strings.Replace(body, "Hangup-Cause: "+ev.get("Hangup-Cause"), "Hangup-Cause: "+cause, 1)
		}
		ev, err = parseEvent([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	t.Fatalf("%s: no %s for %s", file, name, uuid)
	return nil
}

func jobEvent(job, result string) *event {
	ev, _ := parseEvent([]byte("Event-Name: BACKGROUND_JOB\nJob-UUID: " + job + "\nJob-Command: originate\n" +
		"Content-Length: " + itoa(len(result)) + "\n\n" + result))
	return ev
}

// Recorded agent legs of agent-no-answer: a1 rang out (NO_ANSWER), a2
// rang and answered. A forked Dial (app_sip) is those two as forks.
const (
	noAnswerA1 = "e202d5ed-9b8f-4cfb-84b4-d94b634438fa"
	answeredA2 = "e4c6c721-0ec0-4429-b9c2-06fdf01d94ce"
)

func TestForkedDialFirstAnswerWins(t *testing.T) {
	const file = "agent-no-answer.jsonl"
	var tr tracker
	tr.init()
	l := &leg{id: "fork-app", kind: kindDial, members: []string{"fork-app", "fork-phone"}}
	tr.add(l)
	tr.byJob["job-1"] = l
	var got []media.Fact
	feed := func(ev *event) { got = append(got, tr.apply(ev, t0, nil)...) }

	feed(recordedEvent(t, file, "CHANNEL_CALLSTATE", noAnswerA1, "fork-app", ""))
	feed(recordedEvent(t, file, "CHANNEL_CALLSTATE", answeredA2, "fork-phone", ""))
	feed(recordedEvent(t, file, "CHANNEL_ANSWER", answeredA2, "fork-phone", ""))
	// FreeSWITCH cancels the losing fork.
	feed(recordedEvent(t, file, "CHANNEL_HANGUP", noAnswerA1, "fork-app", "LOSE_RACE"))
	feed(jobEvent("job-1", "+OK fork-phone\n"))
	if l.active != "fork-phone" {
		t.Fatalf("active = %q, want the answering fork", l.active)
	}
	feed(recordedEvent(t, file, "CHANNEL_HANGUP", answeredA2, "fork-phone", ""))
	want := []media.Fact{ringing("fork-app"), answered("fork-app"), ended("fork-app", media.CauseNormal)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("facts:\n%s want\n%s", dump(got), dump(want))
	}
}

func TestForkedDialAllFail(t *testing.T) {
	const file = "agent-no-answer.jsonl"
	for _, tc := range []struct {
		name string
		feed func(t *testing.T, tr *tracker) []media.Fact
		want media.Cause
	}{
		{"every fork hung up", func(t *testing.T, tr *tracker) []media.Fact {
			f := tr.apply(recordedEvent(t, file, "CHANNEL_HANGUP", noAnswerA1, "fork-app", ""), t0, nil)
			return append(f, tr.apply(recordedEvent(t, file, "CHANNEL_HANGUP", noAnswerA1, "fork-phone", "USER_BUSY"), t0, nil)...)
		}, media.CauseNoAnswer},
		{"one fork had no channel", func(t *testing.T, tr *tracker) []media.Fact {
			f := tr.apply(recordedEvent(t, file, "CHANNEL_HANGUP", noAnswerA1, "fork-app", ""), t0, nil)
			if len(f) != 0 {
				t.Fatalf("ended before the job: %v", f)
			}
			return tr.apply(jobEvent("job-1", "-ERR NO_ANSWER\n"), t0, nil)
		}, media.CauseNoAnswer},
		{"the job names the fork with no channel", func(t *testing.T, tr *tracker) []media.Fact {
			// The app rang out; the job reports the unregistered desk
			// phone's cause: the app's no-answer is what routing needs.
			f := tr.apply(recordedEvent(t, file, "CHANNEL_HANGUP", noAnswerA1, "fork-app", ""), t0, nil)
			return append(f, tr.apply(jobEvent("job-1", "-ERR USER_NOT_REGISTERED\n"), t0, nil)...)
		}, media.CauseNoAnswer},
		{"no fork had a channel", func(t *testing.T, tr *tracker) []media.Fact {
			return tr.apply(jobEvent("job-1", "-ERR USER_NOT_REGISTERED\n"), t0, nil)
		}, media.CauseUnreachable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var tr tracker
			tr.init()
			l := &leg{id: "fork-app", kind: kindDial, members: []string{"fork-app", "fork-phone"}}
			tr.add(l)
			tr.byJob["job-1"] = l
			got := tc.feed(t, &tr)
			want := []media.Fact{ended("fork-app", tc.want)}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("facts:\n%s want\n%s", dump(got), dump(want))
			}
			if len(tr.legs) != 0 || len(tr.byUUID) != 0 {
				t.Fatalf("leg not cleaned up: %v %v", tr.legs, tr.byUUID)
			}
		})
	}
}

func TestCauseTable(t *testing.T) {
	for fs, want := range map[string]media.Cause{
		"NORMAL_CLEARING": media.CauseNormal, "NO_ANSWER": media.CauseNoAnswer, "USER_BUSY": media.CauseBusy,
		"USER_NOT_REGISTERED": media.CauseUnreachable, "SUBSCRIBER_ABSENT": media.CauseUnreachable,
		"NORMAL_TEMPORARY_FAILURE": media.CauseUnreachable, "ORIGINATOR_CANCEL": media.CauseCancelled,
		"CALL_REJECTED": media.CauseRejected, "SOMETHING_NEW": media.CauseFailed,
	} {
		if got := mapCause(fs); got != want {
			t.Errorf("mapCause(%s) = %s, want %s", fs, got, want)
		}
	}
	// Every routing cause goes out as a cause that maps back to itself
	// (unreachable and failed excepted: several FreeSWITCH causes).
	for _, c := range []media.Cause{media.CauseNormal, media.CauseBusy, media.CauseNoAnswer, media.CauseRejected, media.CauseCancelled, media.CauseUnreachable} {
		if back := mapCause(hangupCause(c)); back != c {
			t.Errorf("hangupCause(%s) = %s maps back to %s", c, hangupCause(c), back)
		}
	}
}

func TestEndpoints(t *testing.T) {
	c, err := New(Config{Addr: "127.0.0.1:1", GatewayPattern: "sofia/gateway/vn/{number}"}, newRecorder())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		target media.Target
		want   []string
		err    error
	}{
		{media.Target{AgentID: "a1", Distribution: presence.DistApp, AppDevice: "a1"}, []string{"user/a1"}, nil},
		{media.Target{AgentID: "a1", Distribution: presence.DistApp}, []string{"user/a1"}, nil},
		{media.Target{AgentID: "a1", Distribution: presence.DistIPPhone}, []string{"user/a1-desk"}, nil},
		{media.Target{AgentID: "a1", Distribution: presence.DistApp, AppDevice: "user/a1@sales"}, []string{"user/a1@sales"}, nil},
		{media.Target{AgentID: "a1", Distribution: presence.DistIPPhone, DeskDevice: "sofia/internal/a1-desk"}, []string{"sofia/internal/a1-desk"}, nil},
		{media.Target{AgentID: "a1", Distribution: presence.DistAppSIP, AppDevice: "a1", DeskDevice: "a1-desk"}, []string{"user/a1", "user/a1-desk"}, nil},
		{media.Target{AgentID: "a1", Distribution: presence.DistIPPhone, AppDevice: "a1", DeskDevice: "a1-desk"}, []string{"user/a1-desk"}, nil},
		{media.Target{AgentID: "a1", Distribution: presence.DistPhone, Phone: "+84901234567"}, []string{"sofia/gateway/vn/+84901234567"}, nil},
		{media.Target{AgentID: "a1", Distribution: presence.DistPhone}, nil, media.ErrUnreachable},
		{media.Target{AgentID: "a1", Distribution: presence.DistPhone, Phone: "+84 90; rm"}, nil, media.ErrUnreachable},
		{media.Target{AgentID: "a1", Distribution: presence.DistApp, AppDevice: "user/a1,user/boss"}, nil, media.ErrUnreachable},
	} {
		got, err := c.endpoints(tc.target)
		if !reflect.DeepEqual(got, tc.want) || !errors.Is(err, tc.err) {
			t.Errorf("%+v: %q, %v; want %q, %v", tc.target, got, err, tc.want, tc.err)
		}
	}
}

func TestOriginateVars(t *testing.T) {
	got := originateVars(0, "+84 (90) 123", "call,1}")
	want := []string{"originate_timeout=30", "ignore_early_media=true", "park_after_bridge=true",
		"origination_caller_id_number=+8490123", "origination_caller_id_name=+8490123", "callfloor_call_id=call1"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("originateVars = %q, want %q", got, want)
	}
}

func TestDTMFOnlyFromTheLegsActiveChannel(t *testing.T) {
	var tr tracker
	tr.init()
	tr.add(&leg{id: "cust", kind: kindInbound, members: []string{"cust"}, active: "cust"})
	tr.add(&leg{id: "dial", kind: kindDial, members: []string{"dial"}}) // unanswered
	dtmf := func(uuid string) *event {
		// FreeSWITCH's DTMF event, trimmed to the headers that matter.
		ev, err := parseEvent([]byte("Event-Name: DTMF\nUnique-ID: " + uuid + "\nDTMF-Digit: %23\nDTMF-Duration: 2000\nDTMF-Source: RTP\n\n"))
		if err != nil {
			t.Fatal(err)
		}
		return ev
	}
	got := tr.apply(dtmf("cust"), t0, nil)
	got = append(got, tr.apply(dtmf("dial"), t0, nil)...)
	got = append(got, tr.apply(dtmf("stranger"), t0, nil)...)
	want := []media.Fact{media.DTMF{FactBase: at(), Leg: "cust", Digit: "#"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("facts:\n%s want\n%s", dump(got), dump(want))
	}
}

// TestContactURI: the dial URI keeps the contact's parameters, as show
// registrations' url does (contacts as sofia::register names them).
func TestContactURI(t *testing.T) {
	for in, want := range map[string]string{
		`"" <sip:a1@127.0.0.1:6107;transport=tcp>`: "sip:a1@127.0.0.1:6107;transport=tcp",
		`"" <sip:a1@127.0.0.1:6101>`:               "sip:a1@127.0.0.1:6101",
		`"A" <sips:a1@10.0.0.5:5061;transport=tls;fs_nat=yes;fs_path=%3Csip%3Aa1%40192.0.2.9%3A40000%3E>`: "sips:a1@10.0.0.5:5061;transport=tls;fs_nat=yes;fs_path=%3Csip%3Aa1%40192.0.2.9%3A40000%3E",
		`sip:a1@127.0.0.1:6101;transport=tcp`: "sip:a1@127.0.0.1:6101",
	} {
		if got := contactURI(in); got != want {
			t.Errorf("contactURI(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzContactURI(f *testing.F) {
	f.Add(`"" <sip:a1@127.0.0.1:6107;transport=tcp>`)
	f.Add(`sip:a1@127.0.0.1`)
	f.Add(`<<>`)
	f.Fuzz(func(t *testing.T, s string) {
		got := contactURI(s)
		if !strings.Contains(s, got) || strings.Contains(s, "<") && strings.Contains(got, ">") {
			t.Fatalf("contactURI(%q) = %q: not the part of the contact inside <>", s, got)
		}
	})
}
