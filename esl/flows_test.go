package esl

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// Every test here replays a recorded FreeSWITCH session: the fake sends
// the recorded frames, the test plays routing (calling Media methods when
// the facts say so), and both the exact commands and every fact are
// asserted.

const (
	caller  = "84901234567"
	hotline = "+842873000001"
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

func dialAgent(id string, timeout int) routing.DialRequest {
	return routing.DialRequest{
		CallID:   "call-1",
		Target:   routing.Target{AgentID: id, Distribution: presence.DistApp},
		Timeout:  time.Duration(timeout) * time.Second,
		CallerID: caller,
	}
}

func arrived(leg string) routing.Fact {
	return routing.CallArrived{FactBase: at(), Leg: routing.LegID(leg), Caller: caller, Hotline: hotline}
}
func ringing(leg string) routing.Fact {
	return routing.LegRinging{FactBase: at(), Leg: routing.LegID(leg)}
}
func answered(leg string) routing.Fact {
	return routing.LegAnswered{FactBase: at(), Leg: routing.LegID(leg)}
}
func ended(leg string, c routing.Cause) routing.Fact {
	return routing.LegEnded{FactBase: at(), Leg: routing.LegID(leg), Cause: c}
}
func nothingPresent() routing.Fact { return routing.LegsPresent{FactBase: at()} }

func okResponse() string { return apiResponse("+OK\n") }

func setPAB(uuid string) step {
	return extra("api uuid_setvar "+uuid+" park_after_bridge true", okResponse())
}

// answerAndHold is what routing does when a call arrives.
func answerAndHold(t *testing.T, r *running, leg string) {
	t.Helper()
	if err := r.Answer(ctx(t), routing.LegID(leg)); err != nil {
		t.Fatalf("Answer: %v", err)
	}
	if err := r.Hold(ctx(t), routing.LegID(leg), routing.HoldMusic); err != nil {
		t.Fatalf("Hold: %v", err)
	}
}

func dial(t *testing.T, r *running, req routing.DialRequest, want string) {
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
	facts.wait(t, ended(a1, routing.CauseNormal))

	assertFacts(t, facts,
		nothingPresent(),
		arrived(cust),
		answered(cust),
		ringing(a1),
		answered(a1),
		// The caller hung up; FreeSWITCH then cleared the agent.
		ended(cust, routing.CauseNormal),
		ended(a1, routing.CauseNormal),
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
