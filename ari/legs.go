package ari

import (
	"slices"
	"strings"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// legKind is what a leg is to callfloor, read from the Stasis arguments we
// give every channel we originate (so a restarted controller can tell).
type legKind int

const (
	kindCustomer legKind = iota // arrived from the dialplan (the trunk)
	kindDialed                  // an agent or external number we dialled
	kindMonitor                 // a supervisor's leg joined by Monitor
	kindSnoop                   // a snoop channel serving a monitor
)

// Stasis argument tags (first appArgs element).
const (
	tagAgent      = "agent"
	tagNumber     = "number"
	tagSupervisor = "supervisor"
	tagSnoop      = "snoop"
	tagInbound    = "inbound"
)

// leg is one routing leg. A Dial that forks (app_sip) has several
// originated channels; the first to answer becomes live and the others are
// hung up, so routing sees one leg.
type leg struct {
	id        string // media.LegID
	kind      legKind
	live      string          // channel carrying the leg once answered (or from the start)
	pending   map[string]bool // originated channels not yet answered or gone
	caller    string
	hotline   string
	state     legState
	cause     media.Cause // worst failure among fork members
	hupCause  int         // last ChannelHangupRequest cause on the live channel
	requested media.Cause // cause routing gave in Hangup
	hold      string      // holding bridge of an earlier version's hold, found by a resync
	moh       bool        // music on hold playing on the channel (or, after a resync, maybe)
	// unsure: adopted while still ringing after a restart (not in Stasis,
	// so its arguments are unknown); its StasisStart says what it is.
	unsure bool

	// monitors
	mode      media.MonitorMode // wanted
	applied   media.MonitorMode // set up on Asterisk
	agentChan string            // channel being spied on
	snoop     string            // current snoop channel id
	spy       string            // spy bridge id
	owner     *leg              // for kindSnoop: the monitor it serves
	// started: for a snoop we made, closed once it is in the application
	// (its StasisStart); Asterisk refuses to bridge it before.
	started chan struct{}
}

// legState is where a leg is in its life, as Asterisk reports it: an
// originated channel alerts (Dial RINGING),
// enters Stasis only when answered (StasisStart), and ends with StasisEnd
// (a caller's channel gets nothing else) or ChannelDestroyed (the only
// news of no answer, cause 19, or busy, 17). An inbound leg starts in
// Stasis.
type legState int

const (
	legDialing legState = iota // originated, no news yet
	legRinging                 // the device alerts
	legUp                      // in Stasis: answered, or arrived from the dialplan
	legEnded                   // gone, LegEnded reported
)

// legTransitions lists the moves each state allows; anything else is a
// duplicate or late event and is ignored.
var legTransitions = map[legState][]legState{
	legDialing: {legRinging, legUp, legEnded},
	legRinging: {legUp, legEnded},
	legUp:      {legEnded},
	legEnded:   nil,
}

// to moves the leg to next if the table allows it.
func (l *leg) to(next legState) bool {
	if !slices.Contains(legTransitions[l.state], next) {
		return false
	}
	l.state = next
	return true
}

func (l *leg) up() bool    { return l.state == legUp }
func (l *leg) ended() bool { return l.state == legEnded }

// bridge roles, also the prefix of the names we give bridges so a
// restarted controller recognises (and cleans up) its own.
const (
	roleHold = "hold"
	roleCall = "call"
	roleSpy  = "spy"
)

type brdg struct {
	id, role string
	members  map[string]bool
	spare    bool // empty, listed in Client.spare for reuse
}

// ownRole returns the role of a bridge this application created, from its
// name, or "" for a bridge that is not ours.
func ownRole(name string) string {
	role, _, ok := strings.Cut(name, "-")
	if !ok {
		return ""
	}
	switch role {
	case roleHold, roleCall, roleSpy:
		return role
	}
	return ""
}

// classify reads a leg's kind (and a customer's hotline) from its Stasis
// arguments, channel name and dialled extension.
func classify(args []string, name, exten string) (kind legKind, hotline string) {
	tag := ""
	if len(args) > 0 {
		tag = args[0]
	}
	switch tag {
	case tagAgent, tagNumber:
		return kindDialed, ""
	case tagSupervisor:
		return kindMonitor, ""
	case tagSnoop:
		return kindSnoop, ""
	case tagInbound:
		if len(args) > 1 && args[1] != "" {
			return kindCustomer, args[1]
		}
	}
	if strings.HasPrefix(name, "Snoop/") {
		return kindSnoop, ""
	}
	return kindCustomer, exten
}

// chanInfo is a channel as GET /channels lists it; ari.ChannelData lacks
// the dialplan's app_name and app_data, which say whether a channel is in
// our application and with which arguments.
type chanInfo struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	State  string `json:"state"`
	Caller struct {
		Number string `json:"number"`
	} `json:"caller"`
	Dialplan struct {
		Exten   string `json:"exten"`
		AppName string `json:"app_name"`
		AppData string `json:"app_data"`
	} `json:"dialplan"`
}

// stasisArgs splits a channel's Stasis app_data ("callfloor,agent,a1,x")
// into its arguments; ok is false when the channel is not in our app.
func stasisArgs(app string, ch chanInfo) (args []string, ok bool) {
	if ch.Dialplan.AppName != "Stasis" {
		return nil, false
	}
	parts := strings.Split(ch.Dialplan.AppData, ",")
	if parts[0] != app {
		return nil, false
	}
	return parts[1:], true
}

func callerNumber(ch ari.ChannelData) string {
	if ch.Caller == nil {
		return ""
	}
	return ch.Caller.Number
}

func exten(ch ari.ChannelData) string {
	if ch.Dialplan == nil {
		return ""
	}
	return ch.Dialplan.Exten
}

// argSafe keeps a value from splitting Stasis arguments.
func argSafe(s string) string { return strings.NewReplacer(",", "_", "|", "_").Replace(s) }

// dialPrefix starts the ids of channels this application originates
// (newID), so a restarted controller recognises a device it was ringing
// before Asterisk puts it in Stasis (until then GET /channels lists it
// under the dialplan application AppDial2, with none of our arguments).
const dialPrefix = "cf"

// dialledByUs reports whether a channel id is one newID(dialPrefix) made.
func dialledByUs(id string) bool {
	hexPart, ok := strings.CutPrefix(id, dialPrefix+"-")
	if !ok || len(hexPart) != 16 {
		return false
	}
	for _, r := range hexPart {
		if !strings.ContainsRune("0123456789abcdef", r) {
			return false
		}
	}
	return true
}
