package presence

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/mail"
	"time"

	"github.com/nyaruka/phonenumbers"

	"github.com/callfloor/callfloor/state"
)

// AgentInput is a create request, or (with nil fields kept) a patch.
type AgentInput struct {
	ID           *string       `json:"id"`
	Name         *string       `json:"name"`
	Email        *string       `json:"email"`
	Phone        *string       `json:"phone"`
	Role         *Role         `json:"role"`
	Groups       *[]string     `json:"groups"`
	Distribution *Distribution `json:"distribution"`
	AppDevice    *string       `json:"app_device"`
	DeskDevice   *string       `json:"desk_device"`
}

// validDevice reports whether s may name a SIP device: what a SIP user
// part, a PJSIP endpoint and a FreeSWITCH directory user all accept.
func validDevice(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

// ValidE164 reports whether s is a valid phone number written in E.164
// (leading +, digits only, a number that exists in the numbering plan).
func ValidE164(s string) bool {
	if len(s) < 3 || len(s) > 16 || s[0] != '+' {
		return false
	}
	n, err := phonenumbers.Parse(s, "")
	if err != nil || !phonenumbers.IsValidNumber(n) {
		return false
	}
	return phonenumbers.Format(n, phonenumbers.E164) == s
}

// applyInput validates in and applies it to a. Malformed values are 400,
// values that are well-formed but impossible (not E.164, unknown group)
// are 422 — each naming the field.
func (s *Service) applyInput(ctx context.Context, a *Agent, in AgentInput) error {
	if in.Name != nil {
		if err := CheckName("name", *in.Name, MaxNameLen); err != nil {
			return err
		}
		a.Name = *in.Name
	}
	if in.Email != nil {
		if len(*in.Email) > MaxEmailLen {
			return invalid("email", fmt.Sprintf("must be at most %d characters", MaxEmailLen))
		}
		addr, err := mail.ParseAddress(*in.Email)
		if err != nil || addr.Address != *in.Email {
			return invalid("email", "must be a plain address like name@example.com")
		}
		a.Email = *in.Email
	}
	if in.Phone != nil {
		phone, ok := s.NormalizePhone(*in.Phone)
		if !ok {
			return unprocessable("phone", fmt.Sprintf("%q is not a phone number; %s", *in.Phone, s.PhoneFormats()))
		}
		a.Phone = phone
	}
	if in.Role != nil {
		if !in.Role.Valid() {
			return invalid("role", "must be admin, supervisor or agent")
		}
		a.Role = *in.Role
	}
	if in.Distribution != nil {
		if !in.Distribution.Valid() {
			return invalid("distribution", "must be app, app_sip, ip_phone or phone")
		}
		a.Distribution = *in.Distribution
	}
	for _, d := range []struct {
		field string
		in    *string
		out   *string
	}{{"app_device", in.AppDevice, &a.AppDevice}, {"desk_device", in.DeskDevice, &a.DeskDevice}} {
		if d.in == nil {
			continue
		}
		if *d.in != "" && !validDevice(*d.in) {
			return invalid(d.field, "must be a SIP user name: 1-64 letters, digits, '-', '_' or '.' (empty for the default)")
		}
		*d.out = *d.in
	}
	if in.Groups != nil {
		if err := checkList("groups", *in.Groups); err != nil {
			return err
		}
		groups := sortedUnique(*in.Groups)
		for _, g := range groups {
			if _, _, err := s.Group(ctx, g); errors.Is(err, ErrNotFound) {
				return unprocessable("groups", fmt.Sprintf("unknown group %q", g))
			} else if err != nil {
				return err
			}
		}
		a.Groups = groups
	}
	if a.Distribution == DistPhone && a.Phone == "" {
		return unprocessable("phone", "distribution phone needs a personal phone number")
	}
	return nil
}

// CreateAgent adds a user (admin only). New agents start logged out,
// offline, in the default idle status.
func (s *Service) CreateAgent(ctx context.Context, actor Actor, in AgentInput) (Agent, error) {
	if !actor.IsAdmin() {
		return Agent{}, fmt.Errorf("only admins create agents: %w", ErrForbidden)
	}
	if in.ID == nil {
		return Agent{}, invalid("id", "is required")
	}
	if err := checkID("id", *in.ID); err != nil {
		return Agent{}, err
	}
	for field, missing := range map[string]bool{"name": in.Name == nil, "email": in.Email == nil} {
		if missing {
			return Agent{}, invalid(field, "is required")
		}
	}
	now := s.now()
	a := Agent{
		ID: *in.ID, Role: RoleAgent, Groups: []string{}, Distribution: DistApp,
		CallStatus: s.defaultIdle, ChatStatus: ChatUnavailable, SystemStatus: SysAvailable,
		StatusSince: now, NotAvailableSince: now, SystemStatusSince: now,
	}
	if s.defaultIdle == StatusAvailable {
		a.NotAvailableSince = time.Time{}
	}
	if err := s.applyInput(ctx, &a, in); err != nil {
		return Agent{}, err
	}
	var tx state.Tx
	if err := Stage(&tx, &a, nil, now, s.loc); err != nil {
		return Agent{}, err
	}
	guards, err := s.groupGuard(a.Groups)(ctx)
	if err != nil {
		return Agent{}, err
	}
	tx.Puts = append(tx.Puts, guards...)
	_, err = s.store.Commit(ctx, tx)
	if errors.Is(err, state.ErrConflict) {
		if _, gerr := s.Agent(ctx, a.ID); gerr == nil {
			return Agent{}, fmt.Errorf("agent %q already exists: %w", a.ID, ErrConflict)
		}
		return Agent{}, fmt.Errorf("agent %q: a group changed concurrently, retry: %w", a.ID, ErrConflict)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("create agent: %w", err)
	}
	a.Version = 1
	return a, nil
}

// UpdateAgent patches a user's profile (admin only). Statuses are not
// patchable here: they have their own endpoint and history.
func (s *Service) UpdateAgent(ctx context.Context, actor Actor, id string, in AgentInput) (Agent, error) {
	if !actor.IsAdmin() {
		return Agent{}, fmt.Errorf("only admins edit agents: %w", ErrForbidden)
	}
	if in.ID != nil && *in.ID != id {
		return Agent{}, invalid("id", "cannot be changed")
	}
	var guard func(ctx context.Context) ([]state.Put, error)
	if in.Groups != nil {
		guard = s.groupGuard(*in.Groups)
	}
	return s.mutate(ctx, id, func(a *Agent, _ time.Time) ([]HistoryRow, error) {
		return nil, s.applyInput(ctx, a, in)
	}, guard)
}

// DeleteAgent removes a user (admin only); refused while they have a call.
// Their history stays for reports.
func (s *Service) DeleteAgent(ctx context.Context, actor Actor, id string) error {
	if !actor.IsAdmin() {
		return fmt.Errorf("only admins delete agents: %w", ErrForbidden)
	}
	a, err := s.Agent(ctx, id)
	if err != nil {
		return err
	}
	if a.HasCall() {
		return fmt.Errorf("agent %s has a call in progress: %w", id, ErrConflict)
	}
	tx := state.Tx{
		Deletes:   []state.Delete{{Kind: state.KindAgent, ID: id, IfVersion: a.Version}},
		Schedules: []state.Schedule{{Index: DueIndex, Member: id, Remove: true}},
	}
	tokens, err := s.store.List(ctx, state.KindToken)
	if err != nil {
		return fmt.Errorf("list tokens: %w", err)
	}
	for _, r := range tokens {
		var t tokenRecord
		if json.Unmarshal(r.Data, &t) == nil && t.AgentID == id {
			tx.Deletes = append(tx.Deletes, state.Delete{Kind: state.KindToken, ID: r.ID, IfVersion: state.AnyVersion})
		}
	}
	s.recent.forget(id)
	if _, err := s.store.Commit(ctx, tx); errors.Is(err, state.ErrConflict) {
		return fmt.Errorf("agent %s changed concurrently, retry: %w", id, ErrConflict)
	} else if err != nil {
		return fmt.Errorf("delete agent %s: %w", id, err)
	}
	return nil
}

// tokenRecord is what a hashed token maps to; the token itself is never
// stored.
type tokenRecord struct {
	AgentID string `json:"agent_id"`
}

// HashToken is the stored id of a bearer token.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// SetToken binds a bearer token to an agent (stored hashed).
func (s *Service) SetToken(ctx context.Context, token, agentID string) error {
	if len(token) < 6 {
		return invalid("token", "must be at least 6 characters")
	}
	return s.SetTokenHash(ctx, HashToken(token), agentID)
}

// SetTokenHash binds a token given only by its hex SHA-256, so production
// configuration never holds the token itself.
func (s *Service) SetTokenHash(ctx context.Context, sha256Hex, agentID string) error {
	data, _ := json.Marshal(tokenRecord{AgentID: agentID})
	_, err := s.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindToken, ID: sha256Hex, Data: data, IfVersion: state.AnyVersion}}})
	if err != nil {
		return fmt.Errorf("store token: %w", err)
	}
	return nil
}

// ErrUnauthenticated: the bearer token is missing or unknown.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticate resolves a bearer token to its actor.
func (s *Service) Authenticate(ctx context.Context, token string) (Actor, error) {
	if token == "" {
		return Actor{}, fmt.Errorf("no bearer token: %w", ErrUnauthenticated)
	}
	r, err := s.store.Get(ctx, state.KindToken, HashToken(token))
	if errors.Is(err, state.ErrNotFound) {
		return Actor{}, fmt.Errorf("unknown token: %w", ErrUnauthenticated)
	}
	if err != nil {
		return Actor{}, fmt.Errorf("look up token: %w", err)
	}
	var t tokenRecord
	if err := json.Unmarshal(r.Data, &t); err != nil {
		return Actor{}, fmt.Errorf("decode token: %w", err)
	}
	a, err := s.Agent(ctx, t.AgentID)
	if errors.Is(err, ErrNotFound) {
		return Actor{}, fmt.Errorf("token of a deleted agent: %w", ErrUnauthenticated)
	}
	if err != nil {
		return Actor{}, err
	}
	return s.ActorFor(ctx, a)
}

// ActorFor builds the actor of an agent record: role, groups, and the
// groups whose supervisor list names them.
func (s *Service) ActorFor(ctx context.Context, a Agent) (Actor, error) {
	act := Actor{ID: a.ID, Role: a.Role, Groups: a.Groups}
	if a.Role == RoleAgent {
		return act, nil
	}
	groups, err := s.allGroups(ctx)
	if err != nil {
		return Actor{}, err
	}
	for _, g := range groups {
		for _, sup := range g.Supervisors {
			if sup == a.ID {
				act.Supervises = append(act.Supervises, g.ID)
			}
		}
	}
	return act, nil
}
