package routing

import (
	"fmt"
	"github.com/callfloor/callfloor/internal/jsonv1"
	"slices"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// CallState is where a live call is (DESIGN.md, Call).
type CallState string

// Call states.
const (
	// StateCalling: in IVR or waiting in queue, not ringing an agent.
	StateCalling CallState = "calling"
	// StateRinging: ringing one or more agents (or, outbound, the agent or
	// the customer).
	StateRinging CallState = "ringing"
	// StateAnswered: in conversation.
	StateAnswered CallState = "answered"
)

// Directions.
const (
	DirectionInbound  = "inbound"
	DirectionOutbound = "outbound"
)

// OfferKind says why a leg was dialled, which decides what its answer and
// its end mean.
type OfferKind string

// Offer kinds.
const (
	OfferRouted   OfferKind = "routed"    // distribution or transfer: RONA on no answer
	OfferAgentOut OfferKind = "agent_out" // outbound: the agent's own device
	OfferCustomer OfferKind = "customer"  // outbound: the customer's number
	OfferTakeover OfferKind = "takeover"  // a supervisor taking the call over
)

// Offer is one dialled leg that has not been answered yet.
type Offer struct {
	Leg      media.LegID `json:"leg"`
	Agent    string      `json:"agent,omitempty"`
	Kind     OfferKind   `json:"kind"`
	Deadline time.Time   `json:"deadline"`
	// StartedAt is when the offer was made (set when first committed); the
	// ring attempt reported when it ends runs from here.
	StartedAt time.Time `json:"started_at,omitzero"`
}

// Monitor is a supervisor on a call (listen, whisper or barge).
type Monitor struct {
	ID         string            `json:"id"`
	CallID     string            `json:"call_id"`
	Supervisor string            `json:"supervisor"`
	Mode       media.MonitorMode `json:"mode"`
	Paused     bool              `json:"paused"`
	Answered   bool              `json:"answered"`
	// Leg is the supervisor's leg; "" while the monitor follows a call
	// being transferred within the team (re-joined when the new agent
	// answers).
	Leg media.LegID `json:"leg"`
	// Ringing: the monitor is reserved and its supervisor being rung; the
	// leg is recorded in the next change (or the reservation undone).
	Ringing   bool      `json:"ringing,omitempty"`
	Device    string    `json:"device,omitempty"`
	StartedAt time.Time `json:"started_at"`
}

// Call is the stored record of a live call. Exported fields with json
// names are the API's; the rest is routing's bookkeeping.
type Call struct {
	ID             string     `json:"id"`
	CustomerNumber string     `json:"customer_number"`
	Hotline        string     `json:"hotline"`
	Queue          string     `json:"queue"`
	State          CallState  `json:"state"`
	StateSince     time.Time  `json:"state_since"`
	Agent          string     `json:"agent"`
	AnsweredAt     *time.Time `json:"answered_at"`
	StartedAt      time.Time  `json:"started_at"`
	Direction      string     `json:"direction"`
	Campaign       string     `json:"campaign"`
	Monitor        *Monitor   `json:"monitor"`

	// Groups scope the call: groups of the queue's members, or the
	// outbound agent's groups. Visibility and group counters use them.
	Groups []string `json:"groups"`
	// CustomerLeg is the caller (inbound) or the dialled number (outbound).
	CustomerLeg media.LegID `json:"customer_leg"`
	// AgentLeg is the connected agent's (or supervisor's) leg.
	AgentLeg media.LegID `json:"agent_leg"`
	// Offers are dialled legs not yet answered.
	Offers []Offer `json:"offers"`
	// EnqueuedAt is the call's original queue position; RONA keeps it.
	EnqueuedAt time.Time `json:"enqueued_at"`
	// RingStartedAt is when ringing agents first started (average wait).
	RingStartedAt time.Time `json:"ring_started_at,omitzero"`
	// Skip holds agents not to offer this call again before the time given
	// (their Dial failed for a reason that was not theirs, such as the
	// media path being down; an agent the call did not reach is in RONA).
	Skip map[string]time.Time `json:"skip,omitempty"`
	// Unanswered: the customer leg waits unanswered (its queue's wait
	// mode is ringback); it is answered when an agent answers.
	Unanswered bool `json:"unanswered,omitempty"`
	// WasAnswered: an agent answered at some point (a call transferred or
	// taken over is not "missed" when it ends unanswered later).
	WasAnswered bool  `json:"was_answered"`
	Version     int64 `json:"-"`
}

// CallView is a call as GET /v1/calls returns it and the "call" events
// carry it.
type CallView struct {
	ID             string       `json:"id"`
	CustomerNumber string       `json:"customer_number"`
	Hotline        string       `json:"hotline"`
	Queue          string       `json:"queue"`
	State          CallState    `json:"state"`
	StateSince     time.Time    `json:"state_since"`
	StateSeconds   int64        `json:"state_seconds"`
	Agent          *string      `json:"agent"`
	AnsweredAt     *time.Time   `json:"answered_at"`
	StartedAt      time.Time    `json:"started_at"`
	Direction      string       `json:"direction"`
	Campaign       *string      `json:"campaign"`
	Monitor        *MonitorView `json:"monitor"`
	// RingingAgents: every agent being rung for the call while it rings
	// (all of a ring_all queue's free members at once); empty otherwise.
	RingingAgents []string `json:"ringing_agents"`
	// Ended is set only on the final "call_ended" event.
	Ended *EndedInfo `json:"ended,omitempty"`
	// Report is set only on events: the exact times and ended ring
	// attempts the reports projection needs (README.md, Reports).
	Report *CallReport `json:"report,omitempty"`
}

// CallReport is what a "call"/"call_ended" event adds for reports: exact
// (not truncated) times, and the ring attempts that ended in this change.
type CallReport struct {
	At            time.Time      `json:"at"`
	EnqueuedAt    time.Time      `json:"enqueued_at,omitzero"`
	RingStartedAt time.Time      `json:"ring_started_at,omitzero"`
	AnsweredAt    *time.Time     `json:"answered_at,omitempty"`
	Attempts      []AttemptEnded `json:"attempts,omitempty"`
}

// Ring attempt outcomes (README.md, Reports).
const (
	OutcomeAnswered    = "answered"
	OutcomeNoAnswer    = "no_answer"
	OutcomeBusy        = "busy"
	OutcomeUnreachable = "unreachable"
	OutcomeCancelled   = "cancelled"
)

// AttemptEnded is one agent (or supervisor) device rung for the call,
// reported once, in the change that ended the ringing.
type AttemptEnded struct {
	Agent     string    `json:"agent"`
	Kind      OfferKind `json:"kind"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at"`
	Outcome   string    `json:"outcome"`
}

// OutcomeOf maps why a ringing leg ended to a ring attempt outcome: a
// rejected (declined) device counts as busy, a failed one as unreachable.
func OutcomeOf(c media.Cause) string {
	switch c {
	case media.CauseNoAnswer:
		return OutcomeNoAnswer
	case media.CauseBusy, media.CauseRejected:
		return OutcomeBusy
	case media.CauseUnreachable, media.CauseFailed:
		return OutcomeUnreachable
	}
	return OutcomeCancelled
}

// EndedInfo says how a call ended (call_ended events only).
type EndedInfo struct {
	At     time.Time `json:"at"`
	Reason string    `json:"reason"`
}

// MonitorView is the monitor object of API.md.
type MonitorView struct {
	ID         string            `json:"id"`
	CallID     string            `json:"call_id"`
	Supervisor string            `json:"supervisor"`
	Mode       media.MonitorMode `json:"mode"`
	Paused     bool              `json:"paused"`
	Answered   bool              `json:"answered"`
	// Ended and Reason are set on the final "monitor" event, so the
	// supervisor is told why their monitor stopped.
	Ended  bool   `json:"ended,omitempty"`
	Reason string `json:"reason,omitempty"`
}

// View renders the monitor.
func (m *Monitor) View() MonitorView {
	return MonitorView{ID: m.ID, CallID: m.CallID, Supervisor: m.Supervisor, Mode: m.Mode, Paused: m.Paused, Answered: m.Answered}
}

// View renders the call at now in loc.
func (c *Call) View(now time.Time, loc *time.Location) CallView {
	// DESIGN.md: an inbound call still waiting shows its queue wait (from
	// when it entered the queue, which RONA does not reset); otherwise the
	// time in its current state (talk time once answered).
	since := c.StateSince
	if c.Direction == DirectionInbound && !c.WasAnswered && c.State != StateAnswered && !c.EnqueuedAt.IsZero() {
		since = c.EnqueuedAt
	}
	v := CallView{
		ID: c.ID, CustomerNumber: c.CustomerNumber, Hotline: c.Hotline, Queue: c.Queue,
		State: c.State, StateSince: since.In(loc).Truncate(time.Second),
		StateSeconds: seconds(now.Sub(since)), StartedAt: c.StartedAt.In(loc).Truncate(time.Second),
		Direction: c.Direction, RingingAgents: c.ringingAgents(),
	}
	if c.Agent != "" {
		a := c.Agent
		v.Agent = &a
	}
	if c.AnsweredAt != nil {
		t := c.AnsweredAt.In(loc).Truncate(time.Second)
		v.AnsweredAt = &t
	}
	if c.Campaign != "" {
		s := c.Campaign
		v.Campaign = &s
	}
	if c.Monitor != nil {
		m := c.Monitor.View()
		v.Monitor = &m
	}
	return v
}

// ringingAgents lists the agents with an unanswered offer (not the
// outbound customer) while the call rings, in the order they were rung.
func (c *Call) ringingAgents() []string {
	out := []string{}
	if c.State != StateRinging {
		return out
	}
	for _, o := range c.Offers {
		if o.Agent != "" && o.Kind != OfferCustomer && !slices.Contains(out, o.Agent) {
			out = append(out, o.Agent)
		}
	}
	return out
}

// Scope is who may see the call's events.
func (c *Call) Scope() state.Scope {
	return state.Scope{Agent: c.Agent, Queue: c.Queue, Groups: append([]string(nil), c.Groups...)}
}

// offer returns the index of the offer for leg, or -1.
func (c *Call) offer(leg media.LegID) int {
	for i, o := range c.Offers {
		if o.Leg == leg {
			return i
		}
	}
	return -1
}

// removeOffer drops the offer at i.
func (c *Call) removeOffer(i int) Offer {
	o := c.Offers[i]
	c.Offers = append(c.Offers[:i:i], c.Offers[i+1:]...)
	return o
}

// callTransitions is the live call state machine (DESIGN.md, Call):
// from → allowed targets. Ending is not a state: any state may end.
var callTransitions = map[CallState][]CallState{
	// Waiting in the queue: the dispatcher (or a transfer) rings agents.
	StateCalling: {StateRinging},
	// Ringing: an agent (or the outbound customer) answers; or nobody
	// does (RONA, busy, unreachable) and the call goes back to its queue.
	StateRinging: {StateAnswered, StateCalling},
	// Answered: a transfer or take-over rings someone new.
	StateAnswered: {StateRinging},
}

// CanMove reports whether a live call may move from → to.
func CanMove(from, to CallState) bool {
	for _, t := range callTransitions[from] {
		if t == to {
			return true
		}
	}
	return false
}

// setState moves the call along callTransitions and restarts its timer;
// staying in the same state is a no-op.
func (c *Call) setState(s CallState, now time.Time) error {
	if c.State == s {
		return nil
	}
	if !CanMove(c.State, s) {
		return fmt.Errorf("call %s: state %s → %s: %w", c.ID, c.State, s, presence.ErrConflict)
	}
	c.State = s
	c.StateSince = now
	return nil
}

// legs lists every leg the call holds.
func (c *Call) legs() []media.LegID {
	var out []media.LegID
	for _, l := range []media.LegID{c.CustomerLeg, c.AgentLeg} {
		if l != "" {
			out = append(out, l)
		}
	}
	for _, o := range c.Offers {
		if o.Leg != "" {
			out = append(out, o.Leg)
		}
	}
	if c.Monitor != nil && c.Monitor.Leg != "" {
		out = append(out, c.Monitor.Leg)
	}
	return out
}

func decodeCall(r state.Record) (Call, error) {
	var c Call
	if err := jsonv1.Unmarshal(r.Data, &c); err != nil {
		return Call{}, fmt.Errorf("decode call %s: %w", r.ID, err)
	}
	c.Version = r.Version
	return c, nil
}

func seconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}
