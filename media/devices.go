package media

import (
	"fmt"

	"github.com/callfloor/callfloor/presence"
)

// EndpointKind says which of an agent's ways to be reached an Endpoint is.
type EndpointKind string

// Endpoint kinds (README.md, "Devices").
const (
	EndpointApp   EndpointKind = "app"   // the app device: web or mobile softphone
	EndpointDesk  EndpointKind = "desk"  // the IP phone on the desk
	EndpointPhone EndpointKind = "phone" // the personal number, through the trunk
)

// Endpoint is one thing a dial rings. A media path turns it into its own
// dial string: PJSIP/<user> on Asterisk, user/<user> on FreeSWITCH, every
// registered contact of <user> on the built-in SIP path, and the trunk
// pattern for a number.
type Endpoint struct {
	Kind   EndpointKind
	User   string // SIP user, for EndpointApp and EndpointDesk
	Number string // E.164, for EndpointPhone
}

// Ring lists what a target's distribution mode rings, the same on every
// path: app → the app device; ip_phone → the IP phone; app_sip → both,
// first answer wins; phone → the personal number through the trunk. A
// mode with nothing to ring is ErrUnreachable (routing then treats the
// agent as not reached: RONA).
func Ring(t Target) ([]Endpoint, error) {
	names := presence.Agent{ID: t.AgentID, AppDevice: t.AppDevice, DeskDevice: t.DeskDevice}
	app := Endpoint{Kind: EndpointApp, User: names.AppUser()}
	desk := Endpoint{Kind: EndpointDesk, User: names.DeskUser()}
	var eps []Endpoint
	switch t.Distribution {
	case presence.DistApp, "":
		eps = []Endpoint{app}
	case presence.DistIPPhone:
		eps = []Endpoint{desk}
	case presence.DistAppSIP:
		eps = []Endpoint{app, desk}
	case presence.DistPhone:
		if t.Phone == "" {
			return nil, fmt.Errorf("agent %s rings by phone but has no personal number: %w", t.AgentID, ErrUnreachable)
		}
		return []Endpoint{{Kind: EndpointPhone, Number: t.Phone}}, nil
	default:
		return nil, fmt.Errorf("agent %s: distribution %q: %w", t.AgentID, t.Distribution, ErrNotSupported)
	}
	out := eps[:0]
	for _, ep := range eps {
		if ep.User != "" {
			out = append(out, ep)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("agent %s has no %s device: %w", t.AgentID, t.Distribution, ErrUnreachable)
	}
	return out, nil
}

// TargetOf is how an agent is rung under their own distribution mode.
func TargetOf(a presence.Agent) Target {
	return Target{AgentID: a.ID, Distribution: a.Distribution, AppDevice: a.AppUser(), DeskDevice: a.DeskUser(), Phone: a.Phone}
}
