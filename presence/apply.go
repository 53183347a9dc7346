package presence

import (
	"fmt"
	"time"
)

// The functions in this file are the agent state machine proper: pure
// changes to an *Agent that return the history rows they produce. The
// Service wraps them in optimistic-concurrency commits; routing calls them
// too when it folds an agent change into a call change.

// ApplyCallStatus sets the manual call status. A no-op change returns no
// rows. Choosing any status clears RONA: the agent (or their supervisor)
// has acted, so routing may consider them again (DESIGN.md). Chosen from
// RONA, the status starts its timer from 00:00 with a history row even
// when it is the one the agent already had ("go to available" after a
// missed call is a fresh start; README.md, "Floor rules").
func ApplyCallStatus(a *Agent, to string, now time.Time, by string) []HistoryRow {
	var rows []HistoryRow
	fromRONA := a.SystemStatus == SysRONA
	if fromRONA {
		rows = append(rows, setSystem(a, SysAvailable, now, by))
	}
	if a.CallStatus == to && !fromRONA {
		return rows
	}
	from := a.CallStatus
	a.CallStatus = to
	a.StatusSince = now
	switch {
	case to == StatusAvailable:
		a.NotAvailableSince = time.Time{}
	case from == StatusAvailable || a.NotAvailableSince.IsZero():
		// A new run of not-available statuses starts here; moving between
		// two not-available statuses keeps the run (10 + 20 = 30 min).
		a.NotAvailableSince = now
	}
	return append(rows, HistoryRow{At: now, Field: FieldCallStatus, From: from, To: to, By: by})
}

// ApplyChatStatus sets the manual chat status.
func ApplyChatStatus(a *Agent, to string, now time.Time, by string) []HistoryRow {
	if a.ChatStatus == to {
		return nil
	}
	from := a.ChatStatus
	a.ChatStatus = to
	return []HistoryRow{{At: now, Field: FieldChatStatus, From: from, To: to, By: by}}
}

// ApplySystemStatus moves the system status along the transition table.
// It refuses (ErrConflict) any move the table does not list, and a move to
// the same status. callID is the call the agent is now on (nil clears it).
func ApplySystemStatus(a *Agent, to SystemStatus, callID *string, now time.Time) (HistoryRow, error) {
	if !to.Valid() {
		return HistoryRow{}, fmt.Errorf("system status %q: %w", to, ErrInvalid)
	}
	if !CanTransition(a.SystemStatus, to) {
		return HistoryRow{}, fmt.Errorf("agent %s: system status %s → %s: %w", a.ID, a.SystemStatus, to, ErrConflict)
	}
	row := setSystem(a, to, now, BySystem)
	a.CallID = callID
	switch to {
	case SysAfterCallWork, SysAvailable:
		if a.CallID == nil && (row.From == string(SysTalking) || row.From == string(SysRinging)) {
			a.LastCallEndedAt = now
		}
	}
	if to != SysAfterCallWork {
		a.WrapUpUntil = time.Time{}
	}
	return row, nil
}

func setSystem(a *Agent, to SystemStatus, now time.Time, by string) HistoryRow {
	from := a.SystemStatus
	a.SystemStatus = to
	a.SystemStatusSince = now
	return HistoryRow{At: now, Field: FieldSystemStatus, From: string(from), To: string(to), By: by}
}

// applyOnline recomputes presence from its inputs (heartbeat, device
// registration, login) and returns a history row when it flips.
func applyOnline(a *Agent, now time.Time, by string) []HistoryRow {
	online := a.LoggedIn && now.Before(a.HeartbeatUntil) || now.Before(a.DeviceUntil)
	if online == a.Online {
		return nil
	}
	a.Online = online
	return []HistoryRow{{At: now, Field: FieldOnline, From: fmt.Sprint(!online), To: fmt.Sprint(online), By: by}}
}

// HasCall reports whether the agent is on or being rung for a call, which
// blocks logout and deletion.
func (a *Agent) HasCall() bool {
	return a.CallID != nil || a.SystemStatus == SysRinging || a.SystemStatus == SysTalking
}
