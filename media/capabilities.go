package media

import (
	"fmt"
	"sort"
)

// Path names, as GET /v1/media reports them.
const (
	PathAsterisk   = "asterisk"
	PathFreeSWITCH = "freeswitch"
	PathSIP        = "sip"
)

// Capabilities is what a media path can do, declared once when the path
// is built. Routing asks before it changes anything, so a refused action
// leaves the call as it was; the API and the console read the same value,
// so a button is hidden for exactly the actions routing would refuse.
type Capabilities struct {
	// Path is PathAsterisk, PathFreeSWITCH or PathSIP.
	Path string
	// Unsupported lists the actions the path cannot do at all, each with
	// a sentence saying why.
	Unsupported map[Action]string
}

// Supports returns nil, or an error wrapping ErrNotSupported that says
// why the path cannot do a.
func (c Capabilities) Supports(a Action) error {
	if why, ok := c.Unsupported[a]; ok {
		return fmt.Errorf("%s: %w", why, ErrNotSupported)
	}
	return nil
}

// Actions lists every action, in the order screens show them.
var Actions = []Action{ActionMonitor, ActionTakeOver, ActionTransfer, ActionClickToCall}

// Missing lists the actions the path cannot do, sorted.
func (c Capabilities) Missing() []Action {
	out := make([]Action, 0, len(c.Unsupported))
	for a := range c.Unsupported {
		out = append(out, a)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
