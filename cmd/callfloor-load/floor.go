package main

import (
	"fmt"
	"io"
)

// Defaults of the generated load floor (writeFloor) that the floor run
// relies on.
const (
	loadGroup   = "load"
	loadHotline = "+842873009999"
	loadToken   = "load-admin"
)

// agentID names the i-th load agent (0-based).
func agentID(i int) string { return fmt.Sprintf("l%05d", i+1) }

// agentToken is the API token of a load agent. The load tool acts as each
// agent with its own token (status changes, event streams), as a floor of
// real agents would, so the per-token rate limit (SECURITY.md) applies
// per agent, not to the whole load.
func agentToken(id string) string { return "load-" + id }

// writeFloor writes a callfloor configuration (README.md, Configuration)
// for a load floor: an admin with token load-admin, n agents l00001… in
// group "load" ringing their app device (SIP user = agent id, password
// sip-<id>, API token load-<id>), and queue "load" on hotline loadHotline with no wrap-up, so
// an agent is free again as soon as a call ends. sipMedia is the SIP
// path's media mode (README.md, Media on the built-in SIP path):
// "signalling" measures routing and signalling alone (the load tool's
// phones send no RTP); "anchored" has callfloor carry every call's audio.
func writeFloor(w io.Writer, n int, sipMedia string) error {
	pr := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	pr("# callfloor-load floor: %d agents. Start callfloor with CALLFLOOR_CONFIG=<this file>.\n", n)
	pr("timezone: UTC\nheartbeat_ttl_seconds: 600\ndefault_queue: load\n")
	switch sipMedia {
	case "signalling":
		pr("sip:\n  trunk_sources: [127.0.0.1]\n  media: signalling\n")
	case "anchored":
		// Every call anchored: the cap must not refuse the load.
		pr("sip:\n  trunk_sources: [127.0.0.1]\n  media: anchored\n  max_calls: %d\n", max(n, 300))
	default:
		return fmt.Errorf("sip media %q: signalling or anchored", sipMedia)
	}
	pr("groups:\n  - {id: %s, name: Load}\n", loadGroup)
	pr("agents:\n  - {id: load-admin, name: Load Admin, email: load-admin@example.com, phone: \"+842873000199\", role: admin, groups: [], distribution: app, token: %s}\n", loadToken)
	for i := range n {
		id := agentID(i)
		pr("  - {id: %s, name: Agent %s, email: %s@example.com, phone: \"+8490%07d\", role: agent, groups: [%s], distribution: app, token: %s}\n",
			id, id, id, i+1, loadGroup, agentToken(id))
	}
	pr("queues:\n  - {id: load, name: Load, hotlines: [\"%s\"], members: [%s], strategy: longest_idle, ring_timeout_seconds: 18, wrapup_seconds: 0, service_level_seconds: 20}\n",
		loadHotline, loadGroup)
	return nil
}
