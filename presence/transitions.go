package presence

import (
	"errors"
	"fmt"
)

// Sentinel errors callers branch on (the API maps them to status codes).
var (
	ErrNotFound      = errors.New("not found")                    // 404
	ErrForbidden     = errors.New("forbidden")                    // 403
	ErrInvalid       = errors.New("invalid")                      // 400: malformed input
	ErrUnprocessable = errors.New("unprocessable")                // 422: well-formed but impossible
	ErrConflict      = errors.New("conflicts with current state") // 409
)

// FieldError says which input field is wrong and why. It wraps ErrInvalid
// or ErrUnprocessable so callers can branch on the class.
type FieldError struct {
	Field  string
	Reason string
	Class  error // ErrInvalid or ErrUnprocessable
}

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Reason) }
func (e *FieldError) Unwrap() error { return e.Class }

func invalid(field, reason string) error {
	return &FieldError{Field: field, Reason: reason, Class: ErrInvalid}
}

func unprocessable(field, reason string) error {
	return &FieldError{Field: field, Reason: reason, Class: ErrUnprocessable}
}

// systemTransitions is the system status state machine: from → allowed
// targets. Anything not listed is refused with ErrConflict. Only callfloor
// moves system status (from media facts); nobody sets it by hand.
var systemTransitions = map[SystemStatus][]SystemStatus{
	// Free: a routed or outbound call starts ringing; a call the agent
	// placed straight from a desk phone may be reported already talking.
	SysAvailable: {SysRinging, SysTalking},
	// Ringing ends in an answer, in the caller/agent giving up, or in RONA
	// when a routed call times out unanswered.
	SysRinging: {SysTalking, SysAvailable, SysRONA},
	// A call ends into wrap-up (queue has wrapup_seconds) or straight to free.
	SysTalking: {SysAfterCallWork, SysAvailable},
	// Wrap-up ends by its timer or early by the agent; an outbound call
	// placed during wrap-up ends it.
	SysAfterCallWork: {SysAvailable, SysRinging},
	// RONA holds until the agent (or their supervisor) chooses a status.
	SysRONA: {SysAvailable},
}

// CanTransition reports whether the system status may move from → to.
func CanTransition(from, to SystemStatus) bool {
	for _, t := range systemTransitions[from] {
		if t == to {
			return true
		}
	}
	return false
}

// Actor is who is making a request: the authenticated user, resolved to
// their role, the groups they belong to and the groups they supervise.
type Actor struct {
	ID         string
	Role       Role
	Groups     []string
	Supervises []string
}

// System is the actor for changes callfloor makes itself.
var System = Actor{ID: BySystem, Role: RoleAdmin}

// IsAdmin reports whether the actor has the admin role.
func (a Actor) IsAdmin() bool { return a.Role == RoleAdmin }

// SupervisesGroup reports whether the actor supervises group g (admins
// supervise everything).
func (a Actor) SupervisesGroup(g string) bool {
	if a.IsAdmin() {
		return true
	}
	if a.Role != RoleSupervisor {
		return false
	}
	return contains(a.Supervises, g)
}

// CanManage reports whether the actor may change the agent's statuses or
// log them out: the agent themself, an admin, or a supervisor of one of
// the agent's groups.
func (a Actor) CanManage(ag *Agent) bool {
	if a.IsAdmin() || a.ID == ag.ID {
		return true
	}
	if a.Role != RoleSupervisor {
		return false
	}
	return intersects(a.Supervises, ag.Groups)
}

// CanSeeGroups reports whether a resource scoped to groups is visible: an
// admin sees everything; a supervisor the groups they supervise; an agent
// the groups they belong to. An unscoped resource (no groups) is visible
// to admins only, except to a user it is about.
func (a Actor) CanSeeGroups(groups []string) bool {
	if a.IsAdmin() {
		return true
	}
	if a.Role == RoleSupervisor && intersects(a.Supervises, groups) {
		return true
	}
	return intersects(a.Groups, groups)
}

// CanSee reports whether the actor may see the agent.
func (a Actor) CanSee(ag *Agent) bool {
	return a.ID == ag.ID || a.CanSeeGroups(ag.Groups)
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if contains(b, x) {
			return true
		}
	}
	return false
}

// Group is a team of agents with its supervisors.
type Group struct {
	ID          string   `json:"id"`
	Name        string   `json:"name"`
	Supervisors []string `json:"supervisors"`
}

// CallStatusDef is a manual call status, built-in or admin-defined.
type CallStatusDef struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Builtin bool   `json:"builtin"`
}
