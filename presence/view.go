package presence

import (
	"encoding/json"
	"fmt"
	"github.com/callfloor/callfloor/internal/jsonv1"
	"strconv"
	"time"

	"github.com/callfloor/callfloor/state"
)

// AgentView is an agent as the API and the event stream show it (API.md's
// item fields plus a few extras).
type AgentView struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Email        string       `json:"email"`
	Phone        string       `json:"phone"`
	Role         Role         `json:"role"`
	Groups       []string     `json:"groups"`
	Distribution Distribution `json:"distribution"`
	// AppDevice and DeskDevice are the SIP users of the agent's two
	// devices, defaults applied (Agent.AppUser, Agent.DeskUser).
	AppDevice         string       `json:"app_device"`
	DeskDevice        string       `json:"desk_device"`
	Online            bool         `json:"online"`
	CallStatus        string       `json:"call_status"`
	ChatStatus        string       `json:"chat_status"`
	SystemStatus      SystemStatus `json:"system_status"`
	StatusSince       time.Time    `json:"status_since"`
	StatusSeconds     int64        `json:"status_seconds"`
	IdleTotalSeconds  int64        `json:"idle_total_seconds"`
	SystemStatusSince time.Time    `json:"system_status_since"`
	WrapUpUntil       *time.Time   `json:"wrapup_until"`
	CallID            *string      `json:"call_id"`
	// Changes is set only on "agent" events: the history rows this change
	// appended (who changed what), which the reports projection reads.
	Changes []HistoryRow `json:"changes,omitempty"`
}

// View renders the agent at now in loc (timestamps carry loc's offset).
func (a *Agent) View(now time.Time, loc *time.Location) AgentView {
	groups := a.Groups
	if groups == nil {
		groups = []string{}
	}
	v := AgentView{
		ID: a.ID, Name: a.Name, Email: a.Email, Phone: a.Phone, Role: a.Role,
		Groups: groups, Distribution: a.Distribution,
		AppDevice: a.AppUser(), DeskDevice: a.DeskUser(),
		Online: a.Online, CallStatus: a.CallStatus, ChatStatus: a.ChatStatus,
		SystemStatus: a.SystemStatus, StatusSince: a.StatusSince.In(loc).Truncate(time.Second),
		StatusSeconds: a.StatusSeconds(now), IdleTotalSeconds: a.IdleTotalSeconds(now),
		SystemStatusSince: a.SystemStatusSince.In(loc).Truncate(time.Second), CallID: a.CallID,
	}
	if !a.WrapUpUntil.IsZero() {
		t := a.WrapUpUntil.In(loc)
		v.WrapUpUntil = &t
	}
	return v
}

// HistorySeries is the series key holding an agent's status history.
func HistorySeries(agentID string) string { return "history:" + agentID }

// EventAgent is the event type of agent changes.
const EventAgent = "agent"

// Stage adds everything one agent change writes to tx: the record (with
// the version the change was read at, so a concurrent writer conflicts),
// its place in the sweep's due index, its history rows, and one "agent"
// event carrying the full view. Routing
// uses it to commit an agent change together with a call change.
func Stage(tx *state.Tx, a *Agent, rows []HistoryRow, now time.Time, loc *time.Location) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("encode agent %s: %w", a.ID, err)
	}
	return stage(tx, a, data, rows, now, loc)
}

// stage is Stage with the agent already encoded as data.
func stage(tx *state.Tx, a *Agent, data []byte, rows []HistoryRow, now time.Time, loc *time.Location) error {
	ifVersion := a.Version
	if ifVersion == 0 {
		ifVersion = state.MustNotExist
	}
	tx.Puts = append(tx.Puts, state.Put{Kind: state.KindAgent, ID: a.ID, Data: data, IfVersion: ifVersion})
	tx.Schedules = append(tx.Schedules, schedule(a))
	if len(rows) > 0 {
		app := state.Append{Series: HistorySeries(a.ID)}
		for _, r := range rows {
			b, err := json.Marshal(r)
			if err != nil {
				return fmt.Errorf("encode history: %w", err)
			}
			app.Entries = append(app.Entries, state.Entry{Score: r.At.UnixMilli(), Data: b})
		}
		tx.Appends = append(tx.Appends, app)
	}
	v := a.View(now, loc)
	v.Changes = rows
	view, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode agent view: %w", err)
	}
	tx.Events = append(tx.Events, state.NewEvent{
		Type:  EventAgent,
		Scope: state.Scope{Agent: a.ID, Groups: append([]string(nil), a.Groups...)},
		Data:  view,
	})
	return nil
}

// DecodeAgent decodes a stored agent record.
func DecodeAgent(r state.Record) (Agent, error) {
	var a Agent
	if err := jsonv1.Unmarshal(r.Data, &a); err != nil {
		return Agent{}, fmt.Errorf("decode agent %s: %w", r.ID, err)
	}
	a.Version = r.Version
	return a, nil
}

// parseBool parses the API's boolean filters.
func parseBool(field, s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, invalid(field, "must be true or false")
	}
	return b, nil
}
