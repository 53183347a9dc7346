package esl

import (
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// recordedFrame returns the first recorded frame of file containing all of
// marks.
func recordedFrame(t *testing.T, file string, marks ...string) string {
	t.Helper()
next:
	for _, l := range loadTranscript(t, file) {
		for _, m := range marks {
			if l.Dir != "in" || !strings.Contains(l.Raw, m) {
				continue next
			}
		}
		return l.Raw
	}
	t.Fatalf("%s: no frame with %q", file, marks)
	return ""
}

// cutAfter keeps the actions up to the first frame containing mark.
func cutAfter(t *testing.T, as []action, mark string) []action {
	t.Helper()
	for i, a := range as {
		if strings.Contains(a.send, mark) {
			return as[:i+1]
		}
	}
	t.Fatalf("no frame with %q", mark)
	return nil
}

// TestRingbackForkedAndPhoneDial: ringback to an unanswered caller,
// app_sip forks in one originate (one failure → one LegEnded), and the
// personal-number mode through the gateway pattern.
func TestRingbackForkedAndPhoneDial(t *testing.T) {
	const (
		cust   = "c5266ea4-72a7-4ee3-9e79-53f909353ff3"
		fApp   = "11111111-1111-4111-8111-111111111111"
		fDesk  = "22222222-2222-4222-8222-222222222222"
		phone  = "33333333-3333-4333-8333-333333333333"
		recJob = "0413f76c-6ddd-48c2-b548-5362f7675561" // the recorded -ERR USER_NOT_REGISTERED job
	)
	cs := script(t, "dials", loadTranscript(t, "inbound-answered.jsonl"), 1, connectSteps())
	// Stop the recording at the caller's CHANNEL_PARK: it is unanswered.
	cs.actions = cutAfter(t, cs.actions, "Event-Name: CHANNEL_PARK")
	bgReply := func(job string) string {
		return "Content-Type: command/reply\nReply-Text: +OK Job-UUID: " + job + "\nJob-UUID: " + job + "\n\n"
	}
	forked := "bgapi originate {originate_timeout=20,ignore_early_media=true,park_after_bridge=true," +
		"origination_caller_id_number=84901234567,origination_caller_id_name=84901234567,callfloor_call_id=call-2}" +
		"[origination_uuid=" + fApp + "]user/a1@127.0.0.1,[origination_uuid=" + fDesk + "]user/a1-desk@127.0.0.1 &park()"
	viaTrunk := "bgapi originate {originate_timeout=20,ignore_early_media=true,park_after_bridge=true," +
		"origination_caller_id_number=84901234567,origination_caller_id_name=84901234567,callfloor_call_id=call-2}" +
		"[origination_uuid=" + phone + "]sofia/gateway/trunk/+84911222333 &park()"
	cs.actions = append(cs.actions,
		action{expect: "api uuid_pre_answer " + cust, reply: okResponse()},
		action{expect: "api uuid_broadcast " + cust + " " + ringbackTone + " aleg", reply: apiResponse("+OK Message sent\n")},
		action{expect: forked, reply: bgReply(recJob)},
		// Neither fork could be reached: the recorded job result, alone.
		action{send: recordedFrame(t, "agent-unregistered.jsonl", "Event-Name: BACKGROUND_JOB", recJob)},
		action{expect: viaTrunk, reply: bgReply("77777777-7777-4777-8777-777777777777")},
	)
	f := newFakeFS(t, cs)
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, fApp, fDesk, phone))

	facts.wait(t, arrived(cust))
	if err := r.Hold(ctx(t), cust, media.HoldRingback); err != nil {
		t.Fatalf("Hold ringback: %v", err)
	}
	req := media.DialRequest{CallID: "call-2", Timeout: 20 * time.Second, CallerID: caller,
		Target: media.Target{AgentID: "a1", Distribution: presence.DistAppSIP, AppDevice: "user/a1@127.0.0.1", DeskDevice: "user/a1-desk@127.0.0.1"}}
	dial(t, r, req, fApp)
	facts.wait(t, ended(fApp, media.CauseUnreachable))
	req.Target = media.Target{AgentID: "a1", Distribution: presence.DistPhone, Phone: "+84911222333"}
	dial(t, r, req, phone)
	f.waitPlayed("dials")

	assertFacts(t, facts, nothingPresent(), arrived(cust), ended(fApp, media.CauseUnreachable))
}

// TestSetMonitorModeBeforeAnswer: while the supervisor still rings,
// eavesdrop has not started, so the whisper variables it reads at start
// are set instead of injecting a digit.
func TestSetMonitorModeBeforeAnswer(t *testing.T) {
	const (
		cust = "870450d5-ccff-4814-8d65-7a1ca2819198"
		a1   = "1c874b14-ebec-40f5-9d8c-333eeac61b9f"
		s1   = "237832e2-03be-491c-952d-ec660763a72a"
	)
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+" local_stream://default aleg"),
		rec(4, originateA(a1, "a1", 15)),
		setPAB(cust),
		rec(5, "api uuid_bridge "+cust+" "+a1),
		rec(6, monitorOriginate(s1, a1, media.MonitorListen)),
	)
	cs := script(t, "monitor-early", loadTranscript(t, "eavesdrop.jsonl"), 1, steps)
	// Stop right after the monitor originate's reply: s1 has not rung yet.
	for i, a := range cs.actions {
		if a.expect == steps[len(steps)-1].want {
			for j := i + 1; j < len(cs.actions); j++ {
				if strings.HasPrefix(cs.actions[j].send, "Content-Type: command/reply") {
					cs.actions = cs.actions[:j+1]
					break
				}
			}
			break
		}
	}
	cs.actions = append(cs.actions,
		action{expect: "api uuid_setvar " + s1 + " eavesdrop_whisper_aleg true", reply: okResponse()},
		action{expect: "api uuid_setvar " + s1 + " eavesdrop_whisper_bleg true", reply: okResponse()},
	)
	f := newFakeFS(t, cs)
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a1, s1))
	connected(t, r, facts, cust, a1)
	leg, err := r.Monitor(ctx(t), media.MonitorRequest{CallID: "call-1", Customer: cust, Agent: a1,
		Supervisor: supervisor(), Mode: media.MonitorListen, Timeout: 15 * time.Second})
	if err != nil || leg != s1 {
		t.Fatalf("Monitor = %s, %v", leg, err)
	}
	if err := r.SetMonitorMode(ctx(t), s1, media.MonitorBarge); err != nil {
		t.Fatalf("SetMonitorMode: %v", err)
	}
	f.waitPlayed("monitor-early")
}
