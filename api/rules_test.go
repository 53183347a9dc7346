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
