package routing_test

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// TestDeviceStateByAgentOrDevice: a registration reported by agent id
// marks that agent online; one reported for an endpoint that no agent id
// matches goes to the agent whose record names that endpoint as device.
func TestDeviceStateByAgentOrDevice(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addGroup("sales")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addAgent("a3", presence.RoleAgent, "sales")
	desk, dev := "desk-a3", "PJSIP/desk-a3"
	if _, err := f.agents.UpdateAgent(f.ctx, presence.System, "a3", presence.AgentInput{DeskDevice: &desk}); err != nil {
		t.Fatal(err)
	}
	f.report(media.DeviceState{FactBase: f.at(), AgentID: "a1", Device: "PJSIP/a1", Registered: true})
	f.report(media.DeviceState{FactBase: f.at(), AgentID: "desk-a3", Device: dev, Registered: true})
	f.report(media.DeviceState{FactBase: f.at(), AgentID: "nobody", Device: "PJSIP/nobody", Registered: true})
	f.flush()
	if !f.agent("a1").Online || !f.agent("a3").Online {
		t.Fatalf("online: a1 %v, a3 %v", f.agent("a1").Online, f.agent("a3").Online)
	}
	f.report(media.DeviceState{FactBase: f.at(), AgentID: "desk-a3", Device: dev, Registered: false})
	f.flush()
	if f.agent("a3").Online {
		t.Fatal("a3 still online after its desk phone unregistered")
	}
}

// TestDeviceStatePerDevice: an agent is online through devices while any
// of them is registered — the IP phone unregistering leaves the app that
// is still registered counting — and the IP phone's default SIP user
// "<id>-desk" finds its agent with no record naming it.
func TestDeviceStatePerDevice(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.report(media.DeviceState{FactBase: f.at(), AgentID: "a1", Device: "sip:a1@10.0.0.5:5060", Registered: true})
	f.report(media.DeviceState{FactBase: f.at(), AgentID: "a1-desk", Device: "sip:a1-desk@10.0.0.6:5060", Registered: true})
	f.flush()
	if a := f.agent("a1"); !a.Online || len(a.Devices) != 2 {
		t.Fatalf("a1 online %v, devices %v", a.Online, a.Devices)
	}
	f.report(media.DeviceState{FactBase: f.at(), AgentID: "a1-desk", Device: "sip:a1-desk@10.0.0.6:5060", Registered: false})
	f.flush()
	if a := f.agent("a1"); !a.Online || len(a.Devices) != 1 {
		t.Fatalf("after the desk phone left: a1 online %v, devices %v", a.Online, a.Devices)
	}
	f.report(media.DeviceState{FactBase: f.at(), AgentID: "a1", Device: "sip:a1@10.0.0.5:5060", Registered: false})
	f.flush()
	if a := f.agent("a1"); a.Online || a.Devices != nil {
		t.Fatalf("after both left: a1 online %v, devices %v", a.Online, a.Devices)
	}
}
