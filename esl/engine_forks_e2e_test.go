package esl

import (
	"testing"

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
