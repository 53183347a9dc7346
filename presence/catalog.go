package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"

	"github.com/callfloor/callfloor/state"
)

// idPattern is what ids of agents, groups, statuses and queues look like:
// safe in URLs, Redis keys and SIP user parts.
var idPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

func checkID(field, id string) error {
	if !idPattern.MatchString(id) {
		return invalid(field, "must be 1-64 characters of a-z, 0-9, '_', '.', '-', starting with a letter or digit")
	}
	return nil
}

// CallStatuses returns the built-in statuses followed by custom ones.
func (s *Service) CallStatuses(ctx context.Context) ([]CallStatusDef, error) {
	out := make([]CallStatusDef, 0, len(BuiltinCallStatuses)+4)
	for _, id := range BuiltinCallStatuses {
		out = append(out, CallStatusDef{ID: id, Name: builtinName(id), Builtin: true})
	}
	custom, err := state.ListAs[CallStatusDef](ctx, s.store, state.KindStatus)
	if err != nil {
		return nil, err
	}
	return append(out, custom...), nil
}

func builtinName(id string) string {
	switch id {
	case StatusAvailable:
		return "Available"
	case StatusUnavailable:
		return "Unavailable"
	case StatusLunchBreak:
		return "Lunch break"
	case StatusShortBreak:
		return "Short break"
	case StatusAfterCallWork:
		return "After-call work"
	}
	return id
}

// checkCallStatus returns a 422 FieldError for an unknown call status.
func (s *Service) checkCallStatus(ctx context.Context, id string) error {
	if slices.Contains(BuiltinCallStatuses, id) {
		return nil
	}
	if id == string(SysRONA) || id == string(SysRinging) || id == string(SysTalking) {
		return unprocessable("call_status", fmt.Sprintf("%q is a system status that only callfloor sets", id))
	}
	_, err := s.store.Get(ctx, state.KindStatus, id)
	if errors.Is(err, state.ErrNotFound) {
		return unprocessable("call_status", fmt.Sprintf("unknown status id %q", id))
	}
	if err != nil {
		return fmt.Errorf("get status %s: %w", id, err)
	}
	return nil
}

// statusGuard makes a move into custom status id depend on the status
// record inside the agent's commit: the record is rewritten unchanged,
// guarded by the version just read. A concurrent DeleteCallStatus (which
// deletes guarded by the version it read) and the move cannot both
// succeed: the loser re-reads, so the status is refused (422) or the
// delete sees the agent in it (409). nil for built-in statuses.
func (s *Service) statusGuard(id string) func(ctx context.Context) ([]state.Put, error) {
	if slices.Contains(BuiltinCallStatuses, id) {
		return nil
	}
	return func(ctx context.Context) ([]state.Put, error) {
		r, err := s.store.Get(ctx, state.KindStatus, id)
		if errors.Is(err, state.ErrNotFound) {
			return nil, unprocessable("call_status", fmt.Sprintf("unknown status id %q", id))
		}
		if err != nil {
			return nil, fmt.Errorf("get status %s: %w", id, err)
		}
		return []state.Put{{Kind: state.KindStatus, ID: id, Data: r.Data, IfVersion: r.Version}}, nil
	}
}

// groupGuard is statusGuard for the groups an agent is put in: a
// concurrent DeleteGroup and the agent joining cannot both succeed.
func (s *Service) groupGuard(ids []string) func(ctx context.Context) ([]state.Put, error) {
	return func(ctx context.Context) ([]state.Put, error) {
		var puts []state.Put
		for _, id := range sortedUnique(ids) {
			r, err := s.store.Get(ctx, state.KindGroup, id)
			if errors.Is(err, state.ErrNotFound) {
				return nil, unprocessable("groups", fmt.Sprintf("unknown group %q", id))
			}
			if err != nil {
				return nil, fmt.Errorf("get group %s: %w", id, err)
			}
			puts = append(puts, state.Put{Kind: state.KindGroup, ID: id, Data: r.Data, IfVersion: r.Version})
		}
		return puts, nil
	}
}

// CreateCallStatus adds a custom call status (admin only).
func (s *Service) CreateCallStatus(ctx context.Context, actor Actor, d CallStatusDef) (CallStatusDef, error) {
	if !actor.IsAdmin() {
		return CallStatusDef{}, fmt.Errorf("only admins create statuses: %w", ErrForbidden)
	}
	if err := checkID("id", d.ID); err != nil {
		return CallStatusDef{}, err
	}
	if err := CheckName("name", d.Name, MaxNameLen); err != nil {
		return CallStatusDef{}, err
	}
	if slices.Contains(BuiltinCallStatuses, d.ID) || SystemStatus(d.ID).Valid() {
		return CallStatusDef{}, fmt.Errorf("status %q is built in: %w", d.ID, ErrConflict)
	}
	d.Builtin = false
	data, _ := json.Marshal(d)
	_, err := s.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindStatus, ID: d.ID, Data: data, IfVersion: state.MustNotExist}}})
	if errors.Is(err, state.ErrConflict) {
		return CallStatusDef{}, fmt.Errorf("status %q already exists: %w", d.ID, ErrConflict)
	}
	if err != nil {
		return CallStatusDef{}, fmt.Errorf("create status: %w", err)
	}
	return d, nil
}

// DeleteCallStatus removes a custom status. Refused while an agent is in it.
func (s *Service) DeleteCallStatus(ctx context.Context, actor Actor, id string) error {
	if !actor.IsAdmin() {
		return fmt.Errorf("only admins delete statuses: %w", ErrForbidden)
	}
	if slices.Contains(BuiltinCallStatuses, id) {
		return fmt.Errorf("status %q is built in: %w", id, ErrConflict)
	}
	// The delete is guarded by the status version read before the agents:
	// an agent moving into the status meanwhile bumps it (statusGuard), and
	// the next round sees that agent.
	for attempt := range maxRetries {
		if attempt > 0 {
			if err := state.RetryWait(ctx, attempt); err != nil {
				return err
			}
		}
		r, err := s.store.Get(ctx, state.KindStatus, id)
		if errors.Is(err, state.ErrNotFound) {
			return fmt.Errorf("status %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("get status: %w", err)
		}
		agents, err := s.Agents(ctx)
		if err != nil {
			return err
		}
		for _, a := range agents {
			if a.CallStatus == id {
				return fmt.Errorf("agent %s is in status %q: %w", a.ID, id, ErrConflict)
			}
		}
		_, err = s.store.Commit(ctx, state.Tx{Deletes: []state.Delete{{Kind: state.KindStatus, ID: id, IfVersion: r.Version}}})
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete status %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("status %q changed concurrently, retry: %w", id, ErrConflict)
}

// Groups returns the groups the actor may see.
func (s *Service) Groups(ctx context.Context, actor Actor) ([]Group, error) {
	all, err := s.allGroups(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, g := range all {
		if actor.CanSeeGroups([]string{g.ID}) {
			out = append(out, g)
		}
	}
	return out, nil
}

func (s *Service) allGroups(ctx context.Context) ([]Group, error) {
	return state.ListAs[Group](ctx, s.store, state.KindGroup)
}

// Group returns one group without access checks.
func (s *Service) Group(ctx context.Context, id string) (Group, int64, error) {
	r, err := s.store.Get(ctx, state.KindGroup, id)
	if errors.Is(err, state.ErrNotFound) {
		return Group{}, 0, fmt.Errorf("group %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Group{}, 0, fmt.Errorf("get group: %w", err)
	}
	var g Group
	if err := json.Unmarshal(r.Data, &g); err != nil {
		return Group{}, 0, fmt.Errorf("decode group %s: %w", id, err)
	}
	return g, r.Version, nil
}

// GroupPatch is a partial update; nil fields stay.
type GroupPatch struct {
	Name        *string   `json:"name"`
	Supervisors *[]string `json:"supervisors"`
}

// PutGroup creates (create=true) or patches a group (admin only).
// Supervisors must be existing agents with role supervisor or admin.
func (s *Service) PutGroup(ctx context.Context, actor Actor, id string, create bool, p GroupPatch) (Group, error) {
	if !actor.IsAdmin() {
		return Group{}, fmt.Errorf("only admins manage groups: %w", ErrForbidden)
	}
	if err := checkID("id", id); err != nil {
		return Group{}, err
	}
	var g Group
	ifVersion := state.MustNotExist
	if !create {
		var err error
		if g, ifVersion, err = s.Group(ctx, id); err != nil {
			return Group{}, err
		}
	} else {
		g = Group{ID: id, Supervisors: []string{}}
	}
	if p.Name != nil {
		g.Name = *p.Name
	}
	if g.Name == "" {
		return Group{}, invalid("name", "is required")
	}
	if err := CheckName("name", g.Name, MaxNameLen); err != nil {
		return Group{}, err
	}
	if p.Supervisors != nil {
		if err := checkList("supervisors", *p.Supervisors); err != nil {
			return Group{}, err
		}
		sups := sortedUnique(*p.Supervisors)
		for _, sid := range sups {
			a, err := s.Agent(ctx, sid)
			if errors.Is(err, ErrNotFound) {
				return Group{}, unprocessable("supervisors", fmt.Sprintf("unknown agent %q", sid))
			}
			if err != nil {
				return Group{}, err
			}
			if a.Role == RoleAgent {
				return Group{}, unprocessable("supervisors", fmt.Sprintf("agent %q has role agent; make them supervisor first", sid))
			}
		}
		g.Supervisors = sups
	}
	data, _ := json.Marshal(g)
	_, err := s.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindGroup, ID: id, Data: data, IfVersion: ifVersion}}})
	if errors.Is(err, state.ErrConflict) {
		if create {
			return Group{}, fmt.Errorf("group %q already exists: %w", id, ErrConflict)
		}
		return Group{}, fmt.Errorf("group %q changed concurrently, retry: %w", id, ErrConflict)
	}
	if err != nil {
		return Group{}, fmt.Errorf("save group: %w", err)
	}
	return g, nil
}

// DeleteGroup removes a group (admin only); refused while agents are in it.
func (s *Service) DeleteGroup(ctx context.Context, actor Actor, id string) error {
	if !actor.IsAdmin() {
		return fmt.Errorf("only admins manage groups: %w", ErrForbidden)
	}
	// Guarded by the group version read before the agents: an agent
	// joining meanwhile bumps it (groupGuard), and the next round sees it.
	for attempt := range maxRetries {
		if attempt > 0 {
			if err := state.RetryWait(ctx, attempt); err != nil {
				return err
			}
		}
		_, ver, err := s.Group(ctx, id)
		if err != nil {
			return err
		}
		agents, err := s.Agents(ctx)
		if err != nil {
			return err
		}
		for _, a := range agents {
			if a.InGroup(id) {
				return fmt.Errorf("agent %s is still in group %q: %w", a.ID, id, ErrConflict)
			}
		}
		_, err = s.store.Commit(ctx, state.Tx{Deletes: []state.Delete{{Kind: state.KindGroup, ID: id, IfVersion: ver}}})
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete group %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("group %q changed concurrently, retry: %w", id, ErrConflict)
}
