package esl

import (
	"errors"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// Every test here replays a recorded FreeSWITCH session: the fake sends
// the recorded frames, the test plays routing (calling Media methods when
// the facts say so), and both the exact commands and every fact are
// asserted.

const (
	caller   = "84901234567"
	hotline  = "+842873000001"
	hotline2 = "+842873000002"
)

// originateA is the originate callfloor sends to ring agent id with uuid.
func originateA(uuid, id string, timeout int) string {
	return "bgapi originate {originate_timeout=" + itoa(timeout) + ",ignore_early_media=true,park_after_bridge=true," +
		"origination_caller_id_number=84901234567,origination_caller_id_name=84901234567,callfloor_call_id=call-1}" +
		"[origination_uuid=" + uuid + "]user/" + id + "@127.0.0.1 &park()"
}

func itoa(n int) string {
	if n < 10 {
		return string(rune('0' + n))
	}
	return itoa(n/10) + string(rune('0'+n%10))
}

func dialAgent(id string, timeout int) media.DialRequest {
	return media.DialRequest{
		CallID:   "call-1",
		Target:   media.Target{AgentID: id, Distribution: presence.DistApp},
		Timeout:  time.Duration(timeout) * time.Second,
		CallerID: caller,
	}
}

func arrived(leg string) media.Fact { return arrivedOn(leg, hotline) }

func arrivedOn(leg, hl string) media.Fact {
	return media.CallArrived{FactBase: at(), Leg: media.LegID(leg), Caller: caller, Hotline: hl}
}
func ringing(leg string) media.Fact {
	return media.LegRinging{FactBase: at(), Leg: media.LegID(leg)}
}
func answered(leg string) media.Fact {
	return media.LegAnswered{FactBase: at(), Leg: media.LegID(leg)}
}
func ended(leg string, c media.Cause) media.Fact {
	return media.LegEnded{FactBase: at(), Leg: media.LegID(leg), Cause: c}
}
func nothingPresent() media.Fact { return media.LegsPresent{FactBase: at()} }

func okResponse() string { return apiResponse("+OK\n") }

func setPAB(uuid string) step {
	return extra("api uuid_setvar "+uuid+" park_after_bridge true", okResponse())
}

// answerAndHold is what routing does when a call arrives.
func answerAndHold(t *testing.T, r *running, leg string) {
	t.Helper()
	if err := r.Answer(ctx(t), media.LegID(leg)); err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if err := r.Hold(ctx(t), media.LegID(leg), media.HoldMusic); err != nil {
		t.Fatalf("Hold: %v", err)
	}
}

func dial(t *testing.T, r *running, req media.DialRequest, want string) {
	t.Helper()
	leg, err := r.Dial(ctx(t), req)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	if string(leg) != want {
		t.Fatalf("Dial leg = %s, want %s", leg, want)
	}
}

func TestInboundAnswered(t *testing.T) {
	const (
		cust = "c5266ea4-72a7-4ee3-9e79-53f909353ff3"
		a1   = "c82c1f7e-294e-47e9-b1de-8dc5ecd37549"
	)
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+" local_stream://default aleg"),
		rec(4, originateA(a1, "a1", 15)),
		setPAB(cust),
		rec(5, "api uuid_bridge "+cust+" "+a1),
	)
	f := newFakeFS(t, script(t, "inbound-answered", loadTranscript(t, "inbound-answered.jsonl"), 1, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a1))

	facts.wait(t, arrived(cust))
	answerAndHold(t, r, cust)
	dial(t, r, dialAgent("a1", 15), a1)
	facts.wait(t, answered(a1))
	if err := r.Connect(ctx(t), cust, a1); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	f.waitPlayed("inbound-answered")
	facts.wait(t, ended(a1, media.CauseNormal))

	assertFacts(t, facts,
		nothingPresent(),
		arrived(cust),
		ringing(a1),
		answered(a1),
		// The caller hung up; FreeSWITCH then cleared the agent.
		ended(cust, media.CauseNormal),
		ended(a1, media.CauseNormal),
	)
	assertCommands(t, f, wantCommands(steps)...)
}

// wantCommands lists the commands of a script in order.
func wantCommands(steps []step) []string {
	var out []string
	for _, s := range steps {
		out = append(out, s.want)
	}
	return out
}

func TestAgentNoAnswerThenNextAgent(t *testing.T) {
	const (
		cust = "1f082ff6-47c3-4bf4-9e6e-a20b746b50f0"
		a1   = "e202d5ed-9b8f-4cfb-84b4-d94b634438fa"
		a2   = "e4c6c721-0ec0-4429-b9c2-06fdf01d94ce"
	)
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+" local_stream://default aleg"),
		rec(4, originateA(a1, "a1", 4)),
		rec(5, originateA(a2, "a2", 15)),
		setPAB(cust),
		rec(6, "api uuid_bridge "+cust+" "+a2),
	)
	f := newFakeFS(t, script(t, "agent-no-answer", loadTranscript(t, "agent-no-answer.jsonl"), 1, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a1, a2))

	facts.wait(t, arrived(cust))
	answerAndHold(t, r, cust)
	dial(t, r, dialAgent("a1", 4), a1)
	facts.wait(t, ended(a1, media.CauseNoAnswer)) // RONA
	dial(t, r, dialAgent("a2", 15), a2)
	facts.wait(t, answered(a2))
	if err := r.Connect(ctx(t), cust, a2); err != nil {
		t.Fatalf("Connect: %v", err)
	}
	f.waitPlayed("agent-no-answer")
	facts.wait(t, ended(cust, media.CauseNormal))

	assertFacts(t, facts,
		nothingPresent(), arrived(cust),
		ringing(a1),
		// The job's -ERR NO_ANSWER comes after this; the leg ended once.
		ended(a1, media.CauseNoAnswer),
		ringing(a2), answered(a2),
		// a2 hung up; the recording had no park_after_bridge, so
		// FreeSWITCH cleared the caller too.
		ended(a2, media.CauseNormal),
		ended(cust, media.CauseNormal),
	)
	assertCommands(t, f, wantCommands(steps)...)
}

func TestAgentBusy(t *testing.T) {
	const (
		cust = "67f5822c-5ff3-476b-b012-279b15b4b561"
		a1   = "915bc03d-31d6-45a6-916a-0c84205c5fb1"
	)
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+" local_stream://default aleg"),
		rec(4, originateA(a1, "a1", 15)),
		rec(5, "api uuid_kill "+cust+" NORMAL_CLEARING"),
	)
	f := newFakeFS(t, script(t, "agent-busy", loadTranscript(t, "agent-busy.jsonl"), 1, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a1))

	facts.wait(t, arrivedOn(cust, hotline2))
	answerAndHold(t, r, cust)
	dial(t, r, dialAgent("a1", 15), a1)
	facts.wait(t, ended(a1, media.CauseBusy))
	if err := r.Hangup(ctx(t), cust, media.CauseNormal); err != nil {
		t.Fatalf("Hangup: %v", err)
	}
	f.waitPlayed("agent-busy")
	facts.wait(t, ended(cust, media.CauseNormal))

	assertFacts(t, facts,
		nothingPresent(), arrivedOn(cust, hotline2),
		ended(a1, media.CauseBusy), // 486 without a 180 first
		ended(cust, media.CauseNormal),
	)
	assertCommands(t, f, wantCommands(steps)...)
}

func TestAgentUnregisteredAndUnknown(t *testing.T) {
	const (
		cust   = "964a5c3e-a3db-4d87-9196-aaad16def3e2"
		a5     = "c095bcd6-d35d-4571-ac6d-e5a731525f23"
		nobody = "dc17089d-bb25-45e5-a1b1-a408293a5eea"
		stray  = "9e3cb3bc-e135-409d-a483-30ad01c978db"
	)
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+" local_stream://default aleg"),
		rec(4, originateA(a5, "a5", 15)),
		rec(5, originateA(nobody, "nobody", 15)),
		// slot 6, a synchronous "api originate", is not something we send.
		setPAB(cust),
		rec(7, "api uuid_bridge "+cust+" "+stray),
		rec(8, "api uuid_kill "+cust+" NORMAL_CLEARING"),
	)
	f := newFakeFS(t, script(t, "agent-unregistered", loadTranscript(t, "agent-unregistered.jsonl"), 1, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a5, nobody))

	facts.wait(t, arrived(cust))
	answerAndHold(t, r, cust)
	dial(t, r, dialAgent("a5", 15), a5)
	dial(t, r, dialAgent("nobody", 15), nobody)
	// No channel events at all: only the BACKGROUND_JOB -ERR tells.
	facts.wait(t, ended(a5, media.CauseUnreachable))
	facts.wait(t, ended(nobody, media.CauseUnreachable))
	err := r.Connect(ctx(t), cust, stray)
	if !errors.Is(err, media.ErrLegGone) {
		t.Fatalf("Connect to a missing leg: %v, want ErrLegGone", err)
	}
	if err := r.Hangup(ctx(t), cust, media.CauseNormal); err != nil {
		t.Fatalf("Hangup: %v", err)
	}
	f.waitPlayed("agent-unregistered")
	facts.wait(t, ended(cust, media.CauseNormal))

	assertFacts(t, facts,
		nothingPresent(), arrived(cust),
		ended(a5, media.CauseUnreachable),
		ended(nobody, media.CauseUnreachable),
		ended(cust, media.CauseNormal),
	)
	assertCommands(t, f, wantCommands(steps)...)
}
