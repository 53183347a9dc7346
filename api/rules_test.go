package api_test

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// ringOut routes a call to agent and has their device report busy: the
// agent goes to rona.
func (r *routingAPI) ringOut(agent, caller string) {
	r.t.Helper()
	r.report(media.CallArrived{FactBase: media.FactBase{At: r.clock.Now()}, Leg: media.LegID("cust-" + caller), Caller: caller, Hotline: "+842800"})
	d, ok := r.media.DialOf(agent)
	if !ok {
		r.t.Fatalf("%s not rung", agent)
	}
	r.report(media.LegEnded{FactBase: media.FactBase{At: r.clock.Now()}, Leg: d.Result, Cause: media.CauseBusy})
	r.want(r.do("GET", "/v1/agents/"+agent, "boss", ""), 200, `"system_status":"rona"`)
}

// Go to available and go to idle, over HTTP.
func TestRONAGoAvailableAndGoIdleAPI(t *testing.T) {
	r := newRoutingAPI(t)
	r.want(r.do("PUT", "/v1/agents/a2/status", "a2", `{"call_status":"lunch_break"}`), 200, "")
	r.want(r.do("POST", "/v1/queues", "boss", `{"id":"main","members":["a1"],"strategy":"longest_idle","hotlines":["+842800"]}`), 201, "")
	r.want(r.do("POST", "/v1/agents/a1/idle", "a1", ""), 409, "a1 is available, not in rona")

	r.ringOut("a1", "+84901000001")
	r.clock.Advance(time.Minute)
	r.want(r.do("PUT", "/v1/agents/a1/status", "a1", `{"call_status":"available"}`), 200, `"status_seconds":0`)
	r.clock.Advance(2 * time.Second) // a dispatcher tick
	r.flush()
	r.want(r.do("GET", "/v1/agents/a1", "a1", ""), 200, `"system_status":"ringing"`) // the waiting call comes back to a1
	d, _ := r.media.DialOf("a1")
	r.report(media.LegEnded{FactBase: media.FactBase{At: r.clock.Now()}, Leg: d.Result, Cause: media.CauseNoAnswer})
	r.want(r.do("GET", "/v1/agents/a1", "boss", ""), 200, `"system_status":"rona"`)

	r.want(r.do("POST", "/v1/agents/a1/idle", "sup2", ""), 403, "outside your groups")
	r.want(r.do("POST", "/v1/agents/a1/idle", "a2", ""), 403, "outside your groups")
	r.want(r.do("POST", "/v1/agents/nobody/idle", "boss", ""), 404, "not_found")
	r.clock.Advance(time.Minute)
	x := r.do("POST", "/v1/agents/a1/idle", "sup1", "")
	r.want(x, 200, `"call_status":"unavailable"`)
	r.want(x, 200, `"system_status":"available"`)
	r.want(x, 200, `"status_seconds":0`)
	r.want(r.do("POST", "/v1/agents/a1/idle", "a1", ""), 409, "not in rona")
	r.want(r.do("GET", "/v1/agents/a1/history", "boss", ""), 200, `"from":"available","to":"unavailable","by":"sup1"`)
}

// GET/PUT /v1/settings: supervisors read, admins change, agents neither.
func TestSettingsAPI(t *testing.T) {
	r := newRoutingAPI(t)
	r.want(r.do("GET", "/v1/settings", "sup1", ""), 200, `{"available_after_outdial":false}`)
	r.want(r.do("GET", "/v1/settings", "a1", ""), 403, "admins and supervisors")
	r.want(r.do("PUT", "/v1/settings", "sup1", `{"available_after_outdial":true}`), 403, "only admins")
	r.want(r.do("PUT", "/v1/settings", "boss", `{"available_after_outdial":"yes"}`), 400, "available_after_outdial")
	r.want(r.do("PUT", "/v1/settings", "boss", `{"available_after":true}`), 400, "unknown_field")
	r.want(r.do("PUT", "/v1/settings", "boss", `{}`), 400, "available_after_outdial")
	r.want(r.do("PUT", "/v1/settings", "boss", `{"available_after_outdial":true}`), 200, `{"available_after_outdial":true}`)
	r.want(r.do("GET", "/v1/settings", "sup1", ""), 200, `{"available_after_outdial":true}`)
	// The setting takes effect: a1 dials from lunch_break and is available after.
	r.want(r.do("PUT", "/v1/agents/a1/status", "a1", `{"call_status":"lunch_break"}`), 200, "")
	x := r.do("POST", "/v1/calls", "a1", `{"agent":"a1","number":"+84901000009"}`)
	r.want(x, 201, "")
	var call struct{ ID string }
	x.into(t, &call)
	d, _ := r.media.DialOf("a1")
	r.report(media.LegAnswered{FactBase: media.FactBase{At: r.clock.Now()}, Leg: d.Result})
	ds := r.media.Dials()
	cust := ds[len(ds)-1].Result
	r.report(media.LegAnswered{FactBase: media.FactBase{At: r.clock.Now()}, Leg: cust})
	r.report(media.LegEnded{FactBase: media.FactBase{At: r.clock.Now()}, Leg: cust, Cause: media.CauseNormal})
	r.want(r.do("GET", "/v1/agents/a1", "a1", ""), 200, `"call_status":"available"`)
}

// Phone numbers as entered: stored and dialled as E.164; anything else is
// a 422 naming the field.
func TestPhoneNumbersAsEnteredAPI(t *testing.T) {
	r := newRoutingAPI(t)
	r.want(r.do("PATCH", "/v1/agents/a1", "boss", `{"phone":"84 90 100 0011"}`), 200, `"phone":"+84901000011"`)
	r.want(r.do("PATCH", "/v1/agents/a1", "boss", `{"phone":"12345"}`), 422, `"field":"phone"`)
	r.want(r.do("POST", "/v1/calls", "a1", `{"agent":"a1","number":"12345"}`), 422, `"field":"number"`)
	r.want(r.do("POST", "/v1/calls", "a1", `{"agent":"a1","number":"84-901-000-009"}`), 201, `"customer_number":"+84901000009"`)
}

// A supervisor monitors one call at a time: a second listen, whisper or
// barge on another call is a 409 naming the call they monitor.
func TestOneMonitorPerSupervisorAPI(t *testing.T) {
	r := newRoutingAPI(t)
	r.want(r.do("POST", "/v1/queues", "boss", `{"id":"main","members":["sales"],"strategy":"longest_idle","hotlines":["+842800"]}`), 201, "")
	var ids []string
	for i, caller := range []string{"+84901000001", "+84901000002"} {
		r.report(media.CallArrived{FactBase: media.FactBase{At: r.clock.Now()}, Leg: media.LegID("cust-" + caller), Caller: caller, Hotline: "+842800"})
		agent := []string{"a1", "a2"}[i]
		d, ok := r.media.DialOf(agent)
		if !ok {
			t.Fatalf("%s not rung", agent)
		}
		r.report(media.LegAnswered{FactBase: media.FactBase{At: r.clock.Now()}, Leg: d.Result})
		var calls []struct{ ID, Agent string }
		r.do("GET", "/v1/calls?agent="+agent, "boss", "").into(t, &calls)
		if len(calls) != 1 {
			t.Fatalf("calls of %s = %+v", agent, calls)
		}
		ids = append(ids, calls[0].ID)
	}
	x := r.do("POST", "/v1/calls/"+ids[0]+"/listen", "sup1", "")
	r.want(x, 201, `"supervisor":"sup1"`)
	var m struct{ ID string }
	x.into(t, &m)
	for _, action := range []string{"listen", "whisper", "barge"} {
		r.want(r.do("POST", "/v1/calls/"+ids[1]+"/"+action, "sup1", ""), 409, "you already monitor call "+ids[0])
	}
	r.want(r.do("DELETE", "/v1/monitors/"+m.ID, "sup1", ""), 204, "")
	r.want(r.do("POST", "/v1/calls/"+ids[1]+"/whisper", "sup1", ""), 201, `"mode":"whisper"`)
}
