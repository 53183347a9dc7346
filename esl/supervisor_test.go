package esl

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

func monitorOriginate(uuid, agentUUID string, mode media.MonitorMode) string {
	flags := ""
	switch mode {
	case media.MonitorWhisper:
		flags = ",eavesdrop_whisper_bleg=true"
	case media.MonitorBarge:
		flags = ",eavesdrop_whisper_aleg=true,eavesdrop_whisper_bleg=true"
	}
	return "bgapi originate {originate_timeout=15,ignore_early_media=true,park_after_bridge=true," +
		"origination_caller_id_number=84901234567,origination_caller_id_name=84901234567,callfloor_call_id=call-1," +
		"callfloor_mode=" + string(mode) + flags + "}" +
		"[origination_uuid=" + uuid + "]user/sup-sales@127.0.0.1 &eavesdrop(" + agentUUID + ")"
}

func supervisor() media.Target {
	return media.Target{AgentID: "sup-sales", Distribution: presence.DistApp}
}

// connected brings a recorded call to "customer talking to a1".
func connected(t *testing.T, r *running, facts *recorder, cust, a1 string) {
	t.Helper()
	facts.wait(t, arrived(cust))
	answerAndHold(t, r, cust)
	dial(t, r, dialAgent("a1", 15), a1)
	facts.wait(t, answered(a1))
	if err := r.Connect(ctx(t), media.LegID(cust), media.LegID(a1)); err != nil {
		t.Fatalf("Connect: %v", err)
	}
}

func hangup(t *testing.T, r *running, leg string) {
	t.Helper()
	if err := r.Hangup(ctx(t), media.LegID(leg), media.CauseNormal); err != nil {
		t.Fatalf("Hangup %s: %v", leg, err)
	}
}

func TestEavesdropListenWhisperBarge(t *testing.T) {
	const (
		cust = "870450d5-ccff-4814-8d65-7a1ca2819198"
		a1   = "1c874b14-ebec-40f5-9d8c-333eeac61b9f"
		s1   = "237832e2-03be-491c-952d-ec660763a72a"
		s2   = "17aa8817-9e58-4c93-92e6-bdd26f0b57d6"
		s3   = "30f430d2-9892-47fb-ad67-3f9860c6eb6b"
	)
	// The mode switches and mutes were not recorded: their replies are
	// FreeSWITCH's plain "+OK".
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+" local_stream://default aleg"),
		rec(4, originateA(a1, "a1", 15)),
		setPAB(cust),
		rec(5, "api uuid_bridge "+cust+" "+a1),
		rec(6, monitorOriginate(s1, a1, media.MonitorListen)),
		extra("api uuid_recv_dtmf "+s1+" 2", okResponse()),
		extra("api uuid_audio "+s1+" start read mute -1", okResponse()),
		extra("api uuid_audio "+s1+" stop", okResponse()),
		extra("api uuid_recv_dtmf "+s1+" 3", okResponse()),
		rec(7, "api uuid_kill "+s1+" NORMAL_CLEARING"),
		rec(8, monitorOriginate(s2, a1, media.MonitorWhisper)),
		rec(9, "api uuid_kill "+s2+" NORMAL_CLEARING"),
		rec(10, monitorOriginate(s3, a1, media.MonitorBarge)),
		extra("api uuid_recv_dtmf "+s3+" 0", okResponse()),
		rec(11, "api uuid_kill "+s3+" NORMAL_CLEARING"),
		rec(12, "api uuid_kill "+a1+" NORMAL_CLEARING"),
		rec(13, "api uuid_kill "+cust+" NORMAL_CLEARING"),
	)
	f := newFakeFS(t, script(t, "eavesdrop", loadTranscript(t, "eavesdrop.jsonl"), 1, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a1, s1, s2, s3))
	connected(t, r, facts, cust, a1)

	monitor := func(sup string, mode media.MonitorMode) {
		t.Helper()
		leg, err := r.Monitor(ctx(t), media.MonitorRequest{
			CallID: "call-1", Customer: cust, Agent: a1, Supervisor: supervisor(), Mode: mode, Timeout: 15 * time.Second,
		})
		if err != nil || string(leg) != sup {
			t.Fatalf("Monitor %s = %s, %v; want %s", mode, leg, err, sup)
		}
		facts.wait(t, answered(sup))
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	monitor(s1, media.MonitorListen)
	must(r.SetMonitorMode(ctx(t), s1, media.MonitorWhisper))
	must(r.Mute(ctx(t), s1, true)) // pause
	must(r.Mute(ctx(t), s1, false))
	must(r.SetMonitorMode(ctx(t), s1, media.MonitorBarge))
	hangup(t, r, s1)
	facts.wait(t, ended(s1, media.CauseNormal))

	monitor(s2, media.MonitorWhisper)
	hangup(t, r, s2)
	facts.wait(t, ended(s2, media.CauseNormal))

	monitor(s3, media.MonitorBarge)
	must(r.SetMonitorMode(ctx(t), s3, media.MonitorListen))
	hangup(t, r, s3)
	facts.wait(t, ended(s3, media.CauseNormal))

	hangup(t, r, a1)
	facts.wait(t, ended(cust, media.CauseNormal))
	hangup(t, r, cust) // already gone: "-ERR No such channel!" is no error
	f.waitPlayed("eavesdrop")

	assertFacts(t, facts,
		nothingPresent(), arrived(cust), ringing(a1), answered(a1),
		// Supervisor legs: no CHANNEL_PARK, no bridge; killing them
		// leaves the call alone.
		ringing(s1), answered(s1), ended(s1, media.CauseNormal),
		ringing(s2), answered(s2), ended(s2, media.CauseNormal),
		ringing(s3), answered(s3), ended(s3, media.CauseNormal),
		ended(a1, media.CauseNormal),
		ended(cust, media.CauseNormal), // recorded without park_after_bridge
	)
	assertCommands(t, f, wantCommands(steps)...)
}

// TestTakeoverTransfer: with park_after_bridge (what callfloor sets) a
// displaced leg survives parked and routing hangs it up.
func TestTakeoverTransfer(t *testing.T) {
	const (
		cust = "c29c7f64-a46f-43ab-a744-bc6dcf7af7be"
		a1   = "0b08799b-4848-46ef-81d8-54b553f6ca50"
		sup  = "ad9c259c-7a02-40dd-bb35-6c7705f2dbac"
		a2   = "a0f49ac3-5400-43f5-a0d9-af04714d9765"
	)
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+" local_stream://default aleg"),
		// slot 4, the recorder's early uuid_setvar, comes later from Connect.
		rec(5, originateA(a1, "a1", 15)),
		setPAB(cust),
		rec(6, "api uuid_bridge "+cust+" "+a1),
		rec(7, originateA(sup, "sup-sales", 15)),
		rec(8, "api uuid_bridge "+cust+" "+sup), // take over
		rec(9, "api uuid_kill "+a1+" NORMAL_CLEARING"),
		rec(10, originateA(a2, "a2", 15)),
		rec(11, "api uuid_bridge "+cust+" "+a2), // transfer
		rec(12, "api uuid_kill "+sup+" NORMAL_CLEARING"),
		rec(13, "api uuid_kill "+a2+" NORMAL_CLEARING"),
		// slot 14, show channels, was the recorder checking the caller
		// survived; the facts show it here.
		rec(15, "api uuid_kill "+cust+" NORMAL_CLEARING"),
	)
	f := newFakeFS(t, script(t, "takeover-pab", loadTranscript(t, "takeover-transfer-park-after-bridge.jsonl"), 1, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a1, sup, a2))
	connected(t, r, facts, cust, a1)

	dial(t, r, media.DialRequest{CallID: "call-1", Target: supervisor(), Timeout: 15 * time.Second, CallerID: caller}, sup)
	facts.wait(t, answered(sup))
	if err := r.Connect(ctx(t), cust, sup); err != nil {
		t.Fatalf("Connect take over: %v", err)
	}
	hangup(t, r, a1)
	facts.wait(t, ended(a1, media.CauseNormal))
	dial(t, r, dialAgent("a2", 15), a2)
	facts.wait(t, answered(a2))
	if err := r.Connect(ctx(t), cust, a2); err != nil {
		t.Fatalf("Connect transfer: %v", err)
	}
	hangup(t, r, sup)
	facts.wait(t, ended(sup, media.CauseNormal))
	hangup(t, r, a2)
	facts.wait(t, ended(a2, media.CauseNormal))
	hangup(t, r, cust)
	f.waitPlayed("takeover-pab")
	facts.wait(t, ended(cust, media.CauseNormal))

	assertFacts(t, facts,
		nothingPresent(), arrived(cust), ringing(a1), answered(a1),
		ringing(sup), answered(sup),
		ended(a1, media.CauseNormal), // only when routing hung it up
		ringing(a2), answered(a2),
		ended(sup, media.CauseNormal),
		ended(a2, media.CauseNormal), // the caller stays, parked
		ended(cust, media.CauseNormal),
	)
	assertCommands(t, f, wantCommands(steps)...)
}

// TestTakeoverTransferWithoutParkAfterBridge replays FreeSWITCH's default:
// uuid_bridge hangs up the displaced leg by itself. Routing's later
// Hangup of it then meets "-ERR No such channel!", which is no error.
func TestTakeoverTransferWithoutParkAfterBridge(t *testing.T) {
	const (
		cust = "67c24299-09e1-43ab-9033-1460476ab7ca"
		a1   = "42f07d1c-9aa0-4217-9d37-fe5cca299b59"
		sup  = "626a2d2a-9a50-466a-b8c7-25c5d7a77fba"
		a2   = "b51e0208-4fa6-4404-9133-aee72b09f806"
	)
	steps := append(connectSteps(),
		rec(2, "api uuid_answer "+cust),
		rec(3, "api uuid_broadcast "+cust+" local_stream://default aleg"),
		rec(4, originateA(a1, "a1", 15)),
		setPAB(cust),
		rec(5, "api uuid_bridge "+cust+" "+a1),
		rec(6, originateA(sup, "sup-sales", 15)),
		rec(7, "api uuid_bridge "+cust+" "+sup),
		rec(8, "api uuid_kill "+a1+" NORMAL_CLEARING"),
		rec(9, originateA(a2, "a2", 15)),
		rec(10, "api uuid_bridge "+cust+" "+a2),
		rec(11, "api uuid_kill "+sup+" NORMAL_CLEARING"),
		rec(12, "api uuid_kill "+cust+" NORMAL_CLEARING"),
	)
	f := newFakeFS(t, script(t, "takeover", loadTranscript(t, "takeover-transfer.jsonl"), 1, steps))
	facts := newRecorder()
	r := start(t, testConfig(f.addr()), facts, withUUIDs(t, a1, sup, a2))
	connected(t, r, facts, cust, a1)

	dial(t, r, media.DialRequest{CallID: "call-1", Target: supervisor(), Timeout: 15 * time.Second, CallerID: caller}, sup)
	facts.wait(t, answered(sup))
	if err := r.Connect(ctx(t), cust, sup); err != nil {
		t.Fatalf("Connect take over: %v", err)
	}
	facts.wait(t, ended(a1, media.CauseNormal))
	hangup(t, r, a1)
	dial(t, r, dialAgent("a2", 15), a2)
	facts.wait(t, answered(a2))
	if err := r.Connect(ctx(t), cust, a2); err != nil {
		t.Fatalf("Connect transfer: %v", err)
	}
	facts.wait(t, ended(sup, media.CauseNormal))
	hangup(t, r, sup)
	hangup(t, r, cust)
	f.waitPlayed("takeover")
	facts.wait(t, ended(a2, media.CauseNormal))

	assertFacts(t, facts,
		nothingPresent(), arrived(cust), ringing(a1), answered(a1),
		ringing(sup), answered(sup),
		ended(a1, media.CauseNormal),
		ringing(a2), answered(a2),
		ended(sup, media.CauseNormal),
		ended(cust, media.CauseNormal),
		ended(a2, media.CauseNormal),
	)
	assertCommands(t, f, wantCommands(steps)...)
}
