// Package presence models agents: who they are, whether they are online,
// the call and chat status they chose, the system status callfloor derives
// from their calls, how long they have been in each, and the history of
// every change. It is pure core: it persists through state.Store and knows
// nothing of HTTP, Redis or media servers.
package presence

import "time"

// Distribution is how an agent is rung.
type Distribution string

// Distribution modes (DESIGN.md).
const (
	DistApp     Distribution = "app"      // the agent's app (a SIP/WebRTC endpoint)
	DistAppSIP  Distribution = "app_sip"  // app and SIP phone together; first answer wins
	DistIPPhone Distribution = "ip_phone" // the IP phone only
	DistPhone   Distribution = "phone"    // the personal number through a trunk
)

// Valid reports whether d is a known mode.
func (d Distribution) Valid() bool {
	switch d {
	case DistApp, DistAppSIP, DistIPPhone, DistPhone:
		return true
	}
	return false
}

// Role is what a user may do.
type Role string

// Roles.
const (
	RoleAdmin      Role = "admin"
	RoleSupervisor Role = "supervisor"
	RoleAgent      Role = "agent"
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r == RoleAdmin || r == RoleSupervisor || r == RoleAgent }

// Built-in manual call statuses. Admins may add custom ones; every status
// other than StatusAvailable means "not available" for routing.
const (
	StatusAvailable     = "available"
	StatusUnavailable   = "unavailable"
	StatusLunchBreak    = "lunch_break"
	StatusShortBreak    = "short_break"
	StatusAfterCallWork = "after_call_work"
)

// BuiltinCallStatuses lists the built-in manual call statuses in display order.
var BuiltinCallStatuses = []string{StatusAvailable, StatusUnavailable, StatusLunchBreak, StatusShortBreak, StatusAfterCallWork}

// Chat statuses.
const (
	ChatAvailable   = "available"
	ChatUnavailable = "unavailable"
)

// SystemStatus is derived by callfloor from what the media path reports.
type SystemStatus string

// System statuses (DESIGN.md).
const (
	SysAvailable     SystemStatus = "available"       // free: no call, not wrapping up
	SysRinging       SystemStatus = "ringing"         // a call rings the agent, or the agent's outbound call rings
	SysTalking       SystemStatus = "talking"         // in a call
	SysAfterCallWork SystemStatus = "after_call_work" // wrap-up timer after a call
	SysRONA          SystemStatus = "rona"            // a routed call was not answered in time
)

// Valid reports whether s is a known system status.
func (s SystemStatus) Valid() bool {
	switch s {
	case SysAvailable, SysRinging, SysTalking, SysAfterCallWork, SysRONA:
		return true
	}
	return false
}

// Agent is one user of the floor: agents, supervisors and admins are all
// agents with a role. JSON names are the API's wire names.
type Agent struct {
	ID           string       `json:"id"`
	Name         string       `json:"name"`
	Email        string       `json:"email"`
	Phone        string       `json:"phone"`
	Role         Role         `json:"role"`
	Groups       []string     `json:"groups"`
	Distribution Distribution `json:"distribution"`
	// AppDevice and DeskDevice name the agent's two SIP devices when they
	// differ from the defaults (AppUser, DeskUser): the app (web or mobile
	// softphone; several contacts may register under it) and the IP phone.
	AppDevice  string `json:"app_device,omitempty"`
	DeskDevice string `json:"desk_device,omitempty"`

	Online       bool         `json:"online"`
	CallStatus   string       `json:"call_status"`
	ChatStatus   string       `json:"chat_status"`
	SystemStatus SystemStatus `json:"system_status"`
	CallID       *string      `json:"call_id"`

	// StatusSince is when CallStatus last changed.
	StatusSince time.Time `json:"status_since"`
	// NotAvailableSince starts a run of consecutive not-available call
	// statuses; zero while available. Drives idle_total_seconds.
	NotAvailableSince time.Time `json:"not_available_since,omitzero"`
	// SystemStatusSince is when SystemStatus last changed.
	SystemStatusSince time.Time `json:"system_status_since"`
	// WrapUpUntil is when after_call_work ends by itself (zero otherwise).
	WrapUpUntil time.Time `json:"wrapup_until,omitzero"`
	// LastCallEndedAt orders agents for the longest_idle strategy.
	LastCallEndedAt time.Time `json:"last_call_ended_at,omitzero"`

	// Presence inputs: online while any is live.
	HeartbeatUntil time.Time `json:"heartbeat_until,omitzero"`
	DeviceUntil    time.Time `json:"device_until,omitzero"`
	// Devices holds when each registered device's registration lapses;
	// DeviceUntil is the latest of them.
	Devices  DeviceLeases `json:"devices,omitempty"`
	LoggedIn bool         `json:"logged_in"`
	Version  int64        `json:"-"`
}

// DeskSuffix turns an agent id into the default SIP user of its IP phone.
const DeskSuffix = "-desk"

// AppUser is the SIP user of the agent's app device: AppDevice, else the
// agent id. The same name is a PJSIP endpoint on Asterisk, a directory
// user on FreeSWITCH and a registrar user on the built-in SIP path.
func (a *Agent) AppUser() string {
	if a.AppDevice != "" {
		return a.AppDevice
	}
	return a.ID
}

// DeskUser is the SIP user of the agent's IP phone: DeskDevice, else
// "<id>-desk".
func (a *Agent) DeskUser() string {
	if a.DeskDevice != "" {
		return a.DeskDevice
	}
	return a.ID + DeskSuffix
}

// OwnsDevice reports whether user names one of the agent's devices.
func (a *Agent) OwnsDevice(user string) bool { return user == a.AppUser() || user == a.DeskUser() }

// StatusSeconds is how long the agent has been in its call status.
func (a *Agent) StatusSeconds(now time.Time) int64 { return seconds(now.Sub(a.StatusSince)) }

// IdleTotalSeconds is the running total over consecutive not-available
// statuses (10 min unavailable then 20 min lunch_break = 30 min); 0 while
// available.
func (a *Agent) IdleTotalSeconds(now time.Time) int64 {
	if a.CallStatus == StatusAvailable || a.NotAvailableSince.IsZero() {
		return 0
	}
	return seconds(now.Sub(a.NotAvailableSince))
}

// Routable reports whether routing may offer the agent a call right now:
// manual status available and system status available.
func (a *Agent) Routable() bool {
	return a.CallStatus == StatusAvailable && a.SystemStatus == SysAvailable && a.CallID == nil
}

// InGroup reports whether the agent belongs to group g.
func (a *Agent) InGroup(g string) bool {
	for _, x := range a.Groups {
		if x == g {
			return true
		}
	}
	return false
}

func seconds(d time.Duration) int64 {
	if d < 0 {
		return 0
	}
	return int64(d / time.Second)
}

// HistoryField names what a history row changed.
type HistoryField string

// History fields (API.md).
const (
	FieldCallStatus   HistoryField = "call_status"
	FieldChatStatus   HistoryField = "chat_status"
	FieldSystemStatus HistoryField = "system_status"
	FieldOnline       HistoryField = "online"
)

// HistoryRow is one appended status change.
type HistoryRow struct {
	At    time.Time    `json:"at"`
	Field HistoryField `json:"field"`
	From  string       `json:"from"`
	To    string       `json:"to"`
	By    string       `json:"by"` // agent id of who changed it, or "system"
}

// BySystem is the History "by" of changes callfloor made itself.
const BySystem = "system"
