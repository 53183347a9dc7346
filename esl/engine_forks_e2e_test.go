package esl

import (
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// app_sip rings the agent's app device (user/<id>) and their IP phone
// (user/<id>-desk) at once, as two forks of one originate: routing sees
// one leg (the first fork's uuid) whichever fork answers.

const desk = "user/a2-desk@127.0.0.1"

func forkedOriginate(callID string, app, phone int) string {
	o := originateFor(app, callID, "a2", "&park()")
	return o[:len(o)-len(" &park()")] + ",[origination_uuid=" + legUUID(phone) + "]" + desk + " &park()"
}

// TestE2EAppSIPDeskPhoneAnswers: the desk phone answers, the app fork
// loses the race; routing's leg is bridged and later hung up through the
// desk phone's uuid.
func TestE2EAppSIPDeskPhoneAnswers(t *testing.T) {
	f := newE2E(t)
	f.setDistribution("a2", presence.DistAppSIP)
	f.fs.setBehavior(dev("a2"), dialRing)
	f.fs.setBehavior(desk, dialAnswer)
	f.available("a2")
	id := f.arrive(1, hotline)
	cust, app, phone := custUUID(1), legUUID(1), legUUID(2)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		forkedOriginate(id, 1, 2),
		"api uuid_setvar "+cust+" park_after_bridge true",
		"api uuid_bridge "+cust+" "+phone,
	)
	f.wantCall(id, routing.StateAnswered, "a2")
	f.wantAgent("a2", presence.SysTalking, id)
	if f.fs.alive(app) {
		t.Error("the app fork still rings after the desk phone answered")
	}

	f.fs.bye(cust)
	f.wantCommands("api uuid_kill " + phone + " NORMAL_CLEARING")
	f.wantGone(id)
	f.wantAgent("a2", presence.SysAfterCallWork, "")
}

// TestE2EAppSIPNoForkAnswers: the app rings out and the desk phone is not
// registered: the leg ends once both forks have, as a no answer (RONA).
func TestE2EAppSIPNoForkAnswers(t *testing.T) {
	f := newE2E(t)
	f.setDistribution("a2", presence.DistAppSIP)
	f.fs.setBehavior(dev("a2"), dialNoAnswer)
	f.fs.setBehavior(desk, dialUnregistered)
	f.available("a2")
	id := f.arrive(1, hotline)
	cust := custUUID(1)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		forkedOriginate(id, 1, 2),
		// routing stops what may still ring: nothing does any more.
		"api uuid_kill "+legUUID(1)+" NO_ANSWER",
	)
	f.wantAgent("a2", presence.SysRONA, "")
	f.wantCall(id, routing.StateCalling, "a2")
}

// TestE2EAppDeviceTwoContactsBothRing: a1's app device has a web and a
// mobile softphone registered under one SIP user. Each contact is its own
// fork with its own uuid — dialling [origination_uuid=…]user/a1 would let
// FreeSWITCH refuse the second channel as a duplicate uuid and ring only
// the web one (the simulation does as FreeSWITCH 1.11.1 does) — so the
// mobile softphone answers while the web one rings.
func TestE2EAppDeviceTwoContactsBothRing(t *testing.T) {
	const web, mobile = "sofia/internal/sip:a1@127.0.0.1:6001", "sofia/internal/sip:a1@127.0.0.1:6011"
	f := newE2E(t)
	row := func(url, port string) map[string]string {
		return map[string]string{"reg_user": "a1", "realm": "127.0.0.1", "url": url, "expires": "1795292296",
			"network_ip": "127.0.0.1", "network_port": port, "network_proto": "udp"}
	}
	f.fs.setRegistrations(row(web, "7001"), row(mobile, "7011"))
	f.disconnect()
	f.reconnect() // show registrations: a1 has two contacts
	f.fs.setBehavior(web, dialRing)
	f.fs.setBehavior(mobile, dialAnswer)
	f.available("a1")
	id := f.arrive(1, hotline)
	cust := custUUID(1)
	o := originateFor(1, id, "a1", "&park()")
	forked := strings.Replace(o, "user/a1@127.0.0.1", web+",[origination_uuid="+legUUID(2)+"]"+mobile, 1)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		forked,
		"api uuid_setvar "+cust+" park_after_bridge true",
		"api uuid_bridge "+cust+" "+legUUID(2),
	)
	f.wantCall(id, routing.StateAnswered, "a1")
	f.wantAgent("a1", presence.SysTalking, id)
	if f.fs.alive(legUUID(1)) {
		t.Error("the web softphone still rings after the mobile one answered")
	}
}

// TestE2ETCPContactKeepsTransportOnReRegister: a softphone registered over
// TCP has ";transport=tcp" in its contact (and in show registrations'
// url). When its re-REGISTER (same contact) arrives as a sofia::register
// event, its fork must still carry ";transport=tcp": without it a real
// FreeSWITCH 1.11.1 sent the INVITE over UDP and the TCP phone never rang
// (NORMAL_TEMPORARY_FAILURE), found with SIPp over TCP.
func TestE2ETCPContactKeepsTransportOnReRegister(t *testing.T) {
	const web, tcp = "sofia/internal/sip:a1@127.0.0.1:6001", "sofia/internal/sip:a1@127.0.0.1:6011;transport=tcp"
	f := newE2E(t)
	row := func(url, port, proto string) map[string]string {
		return map[string]string{"reg_user": "a1", "realm": "127.0.0.1", "url": url, "expires": "1795292296",
			"network_ip": "127.0.0.1", "network_port": port, "network_proto": proto}
	}
	f.fs.setRegistrations(row(web, "6001", "udp"), row(tcp, "6011", "tcp"))
	f.disconnect()
	f.reconnect() // show registrations: a1 has two contacts

	// The TCP phone refreshes its registration (a5's recorded
	// sofia::register, made a1's TCP contact).
	events, _ := registerReplace(t)
	_, body, _ := strings.Cut(events[0], "\n\n")
	for k, v := range map[string]string{
		"from-user": "a1", "to-user": "a1", "username": "a1", "sip_auth_username": "a1",
		"contact": `"" <sip:a1@127.0.0.1:6011;transport=tcp>`, "call-id": "tcp-6011@127.0.0.1",
		"status": "Registered(TCP)", "network-port": "6011",
	} {
		body = setHeader(body, k, v)
	}
	f.fs.emitRecorded(eventFrame(body))
	f.wantOnline("a1", true, t0.Add(3600*time.Second))
	f.wantCommands() // a known contact: no need to read the table again

	f.fs.setBehavior(web, dialRing)
	f.fs.setBehavior(tcp, dialAnswer)
	f.available("a1")
	id := f.arrive(1, hotline)
	cust := custUUID(1)
	o := originateFor(1, id, "a1", "&park()")
	forked := strings.Replace(o, "user/a1@127.0.0.1", web+",[origination_uuid="+legUUID(2)+"]"+tcp, 1)
	f.wantCommands(
		"api uuid_answer "+cust,
		"api uuid_broadcast "+cust+moh,
		forked,
		"api uuid_setvar "+cust+" park_after_bridge true",
		"api uuid_bridge "+cust+" "+legUUID(2),
	)
	f.wantCall(id, routing.StateAnswered, "a1")
}
