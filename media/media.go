// Package media is what every media path shares: the contract routing
// drives (Media, the facts a path reports, the normalised causes), what
// each distribution mode rings, the fork policy and the order in which a
// resync snapshot becomes facts. ari/, esl/ and sip/ keep only their
// protocol and the mapping of native events onto this package; see
// docs/architecture.md.
package media

import (
	"context"
	"errors"
	"time"

	"github.com/callfloor/callfloor/presence"
)

// This file is the contract between routing and a media path (Asterisk over
// ARI, FreeSWITCH over ESL, or the built-in SIP path). Media paths report
// facts; routing decides and sends commands. A media path never changes
// agent or call state itself.

// LegID names one call leg on the media path: an ARI channel id, a
// FreeSWITCH uuid, or the SIP path's dialog id. Unique per media path.
type LegID string

// Cause says why a leg ended, normalised across media paths so routing can
// tell "no answer" (RONA) from "busy" from "unreachable".
type Cause string

// Hangup causes. Adapters map their native codes: Q.850 16 → CauseNormal,
// 17 → CauseBusy, 18/19 → CauseNoAnswer, 20/27/"USER_NOT_REGISTERED"/ARI
// "Allocation failed" → CauseUnreachable, 21 → CauseRejected,
// 487/ORIGINATOR_CANCEL → CauseCancelled.
const (
	CauseNormal      Cause = "normal"
	CauseNoAnswer    Cause = "no_answer"
	CauseBusy        Cause = "busy"
	CauseUnreachable Cause = "unreachable"
	CauseRejected    Cause = "rejected"
	CauseCancelled   Cause = "cancelled"
	CauseFailed      Cause = "failed"
)

// Errors a Media implementation returns and routing branches on.
var (
	// ErrNotSupported: this media path cannot do the command at all (the
	// SIP proxy cannot mix audio, so it refuses Monitor). The API maps it
	// to 501 with the wrapped message.
	ErrNotSupported = errors.New("not supported by this media path")
	// ErrMediaUnavailable: the media server is not connected right now.
	// The API maps it to 503.
	ErrMediaUnavailable = errors.New("media server unavailable")
	// ErrLegGone: the leg no longer exists on the media path.
	ErrLegGone = errors.New("leg no longer exists")
	// ErrUnreachable: the device cannot be dialled (not registered, no
	// contact). Returned by Dial when the media path knows synchronously;
	// otherwise reported later as LegEnded{Cause: CauseUnreachable}.
	ErrUnreachable = errors.New("device unreachable")
)

// Target is who to ring: an agent or a supervisor, as the media path needs
// them (TargetOf builds it from the agent record). AppDevice and
// DeskDevice are SIP user names ("" = the defaults, presence.Agent's
// AppUser and DeskUser); Phone is the personal E.164 number. Ring says
// which of them the mode rings.
type Target struct {
	AgentID      string
	Distribution presence.Distribution
	AppDevice    string
	DeskDevice   string
	Phone        string
}

// DialRequest asks the media path to ring a target. The media path forks
// to every endpoint Ring names (app_sip: app device and IP phone),
// reports the first answer as the leg's LegAnswered and cancels the rest,
// so routing sees exactly one leg per Dial.
type DialRequest struct {
	CallID string // routing's call id, for correlation and logs
	// Customer is the customer leg this dial will be connected to, when
	// there is one (an inbound call, a transfer, a take-over). A
	// signalling-only path offers that leg's SDP to the dialled device so
	// media flows end to end.
	Customer LegID
	Target   Target
	// Timeout is how long to ring before giving up with CauseNoAnswer.
	Timeout time.Duration
	// CallerID is shown on the dialled device (the customer's number for
	// inbound calls, the hotline for outbound).
	CallerID string
	// Number, when set, dials this external number instead of the target's
	// devices (the customer leg of an outbound click-to-call).
	Number string
}

// HoldMode is what a waiting caller hears.
type HoldMode string

// Hold modes.
const (
	HoldMusic    HoldMode = "music"    // music on hold (caller answered)
	HoldRingback HoldMode = "ringback" // ringing tone (caller may stay unanswered)
)

// MonitorMode is how a supervisor joins a call.
type MonitorMode string

// Monitor modes (DESIGN.md, supervisor actions).
const (
	MonitorListen  MonitorMode = "listen"  // hears both sides, unheard
	MonitorWhisper MonitorMode = "whisper" // only the agent hears the supervisor
	MonitorBarge   MonitorMode = "barge"   // three-way conversation
)

// Valid reports whether m is a known mode.
func (m MonitorMode) Valid() bool {
	switch m {
	case MonitorListen, MonitorWhisper, MonitorBarge:
		return true
	}
	return false
}

// MonitorRequest asks the media path to ring a supervisor and, on answer,
// join them to the call in Mode. The returned leg is the supervisor's; it
// reports LegRinging / LegAnswered / LegEnded like any other.
type MonitorRequest struct {
	CallID     string
	Customer   LegID // the customer's leg
	Agent      LegID // the agent's leg (the one being spied on / whispered to)
	Supervisor Target
	Mode       MonitorMode
	Timeout    time.Duration
}

// Media is what routing needs from a media path. Every method must return
// promptly (it may start asynchronous work and report the outcome as facts)
// and honour ctx.
type Media interface {
	// Answer answers an inbound leg. A signalling-only path (the SIP
	// proxy) returns ErrNotSupported and keeps the caller in early state.
	Answer(ctx context.Context, leg LegID) error
	// Hold plays music on hold or ringback to a waiting leg.
	Hold(ctx context.Context, leg LegID, mode HoldMode) error
	// Dial rings a target and returns the new leg. Progress arrives as
	// LegRinging, LegAnswered or LegEnded facts for that leg.
	Dial(ctx context.Context, req DialRequest) (LegID, error)
	// Connect puts two answered (or, for a proxy, answering) legs in one
	// conversation, replacing whatever either was connected to before:
	// connecting a customer to a new agent leg detaches the old one (which
	// routing then hangs up).
	Connect(ctx context.Context, a, b LegID) error
	// Monitor rings a supervisor and joins them in req.Mode on answer.
	// Paths without a mixer return ErrNotSupported.
	Monitor(ctx context.Context, req MonitorRequest) (LegID, error)
	// SetMonitorMode switches a running monitor leg to another mode
	// (whisper → barge, say).
	SetMonitorMode(ctx context.Context, supervisor LegID, mode MonitorMode) error
	// Mute stops (or restarts) audio from a leg into the conversation;
	// used to pause and resume a monitor without touching the call.
	Mute(ctx context.Context, leg LegID, muted bool) error
	// Hangup ends a leg. Hanging up a leg that is already gone returns
	// nil (or ErrLegGone, which routing treats the same).
	Hangup(ctx context.Context, leg LegID, cause Cause) error
	// Capabilities says what the path can do; it does not change while
	// the path runs.
	Capabilities() Capabilities
	// Gone reports which of legs the media server no longer has: ends the
	// path never heard of (a BYE lost, a socket cut while the far end
	// hung up). A leg still being set up is not gone. Routing asks
	// periodically and ends a leg found gone twice in a row.
	Gone(ctx context.Context, legs []LegID) ([]LegID, error)
}

// Action names a supervisor action, for ActionChecker.
type Action string

// Supervisor actions a media path may be unable to do at all
// (Capabilities).
const (
	ActionMonitor  Action = "monitor" // listen, whisper, barge
	ActionTakeOver Action = "takeover"
	ActionTransfer Action = "transfer"
	// ActionClickToCall: an outbound call bridging two dialled legs (the
	// agent's device and the customer's number).
	ActionClickToCall Action = "click_to_call"
)

// Fact is something a media path observed. Facts from one media path are
// reported in the order they happened.
type Fact interface {
	// When the media path observed it.
	When() time.Time
}

// FactBase carries the observation time of every fact.
type FactBase struct{ At time.Time }

// When implements Fact.
func (f FactBase) When() time.Time { return f.At }

// CallArrived: a new inbound call reached the floor.
type CallArrived struct {
	FactBase
	Leg     LegID
	Caller  string // the customer's number as presented (E.164 if known)
	Hotline string // the dialled number
}

// LegRinging: a dialled leg is alerting.
type LegRinging struct {
	FactBase
	Leg LegID
}

// LegAnswered: a leg was answered (for a Dial: the first device that
// answered).
type LegAnswered struct {
	FactBase
	Leg LegID
}

// LegEnded: a leg is gone, for Cause.
type LegEnded struct {
	FactBase
	Leg   LegID
	Cause Cause
}

// DTMF: a digit was pressed on a leg.
type DTMF struct {
	FactBase
	Leg   LegID
	Digit string
}

// DeviceState: an agent's device registered or went away. Until is when
// the registration lapses unless refreshed (zero when unknown or when
// Registered is false).
type DeviceState struct {
	FactBase
	AgentID    string
	Device     string // endpoint or contact URI, for logs
	Registered bool
	Until      time.Time
}

// LegsPresent: after (re)connecting, the media path lists every leg it
// still has for this application. Routing ends calls whose legs are not
// in the list, and the media path hangs up legs routing does not know
// (orphans) when routing says so via Hangup.
type LegsPresent struct {
	FactBase
	Legs []LegSnapshot
}

// LegSnapshot is one live leg as the media path sees it after a resync.
type LegSnapshot struct {
	Leg      LegID
	Answered bool
	Caller   string
	Hotline  string // set for customer legs that arrived from the trunk
}

// Facts is where a media path reports what it observed. The routing
// engine implements it; Report must not block for long (it queues).
type Facts interface {
	Report(Fact)
}
