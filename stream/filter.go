package stream

import (
	"fmt"
	"slices"
	"strings"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// The event types API.md defines.
const (
	TypeAgent     = "agent"
	TypeCall      = "call"
	TypeCallEnded = "call_ended"
	TypeQueue     = "queue"
	TypeStats     = "stats"
	TypeMonitor   = "monitor"
)

// Types lists every event type a client may filter on.
var Types = []string{TypeAgent, TypeCall, TypeCallEnded, TypeQueue, TypeStats, TypeMonitor}

// Visible reports whether actor may see an event with scope sc, following
// the GETs: an admin sees everything; anyone sees events about themself; a
// supervisor the groups they supervise; an agent the groups they belong
// to. An event scoped to no group (floor-wide stats, say) is admin-only.
func Visible(actor presence.Actor, sc state.Scope) bool {
	if actor.IsAdmin() {
		return true
	}
	if sc.Agent != "" && sc.Agent == actor.ID {
		return true
	}
	return len(sc.Groups) > 0 && actor.CanSeeGroups(sc.Groups)
}

// Filter narrows a stream beyond visibility. Empty fields do not filter.
type Filter struct {
	// Types keeps only these event types.
	Types []string
	// Queues drops events scoped to any other queue. Events not about a
	// queue (agents, floor-wide stats) pass: combine with Types to get
	// only one queue's calls.
	Queues []string
}

// ParseFilter parses the ?types=agent,call&queue=sales query values.
// Unknown types are an error naming them, so a typo does not silently
// produce an empty stream.
func ParseFilter(types, queues string) (Filter, error) {
	var f Filter
	for _, t := range splitList(types) {
		if !slices.Contains(Types, t) {
			return Filter{}, fmt.Errorf("unknown event type %q (known: %s)", t, strings.Join(Types, ","))
		}
		if !slices.Contains(f.Types, t) {
			f.Types = append(f.Types, t)
		}
	}
	f.Queues = splitList(queues)
	return f, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Match reports whether e passes the filter.
func (f Filter) Match(e *state.Event) bool {
	if len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) {
		return false
	}
	if len(f.Queues) > 0 && e.Scope.Queue != "" && !slices.Contains(f.Queues, e.Scope.Queue) {
		return false
	}
	return true
}
