package config

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// Bootstrap creates the configured statuses, groups, agents and tokens
// that do not exist yet. Existing records are left as they are, so a
// restart on a persistent store keeps every status and history row; only
// tokens are re-bound (so rotating one in the file takes effect).
func Bootstrap(ctx context.Context, cfg Config, svc *presence.Service) error {
	admin := presence.System
	if cfg.AvailableAfterOutdial != nil {
		if err := svc.InitSettings(ctx, presence.Settings{AvailableAfterOutdial: *cfg.AvailableAfterOutdial}); err != nil {
			return err
		}
	}
	for _, st := range cfg.Statuses {
		_, err := svc.CreateCallStatus(ctx, admin, presence.CallStatusDef{ID: st.ID, Name: st.Name})
		if err != nil && !errors.Is(err, presence.ErrConflict) {
			return fmt.Errorf("status %s: %w", st.ID, err)
		}
	}
	// Groups first without supervisors (agents name their groups), then
	// agents, then the supervisors (who must exist as agents).
	created := map[string]bool{}
	for _, g := range cfg.Groups {
		name := g.Name
		_, err := svc.PutGroup(ctx, admin, g.ID, true, presence.GroupPatch{Name: &name})
		switch {
		case err == nil:
			created[g.ID] = true
		case !errors.Is(err, presence.ErrConflict):
			return fmt.Errorf("group %s: %w", g.ID, err)
		}
	}
	for _, a := range cfg.Agents {
		if err := bootstrapAgent(ctx, svc, a); err != nil {
			return err
		}
	}
	for _, g := range cfg.Groups {
		if !created[g.ID] {
			continue
		}
		sups := g.Supervisors
		if _, err := svc.PutGroup(ctx, admin, g.ID, false, presence.GroupPatch{Supervisors: &sups}); err != nil {
			return fmt.Errorf("group %s supervisors: %w", g.ID, err)
		}
	}
	return nil
}

func bootstrapAgent(ctx context.Context, svc *presence.Service, a Agent) error {
	id, name, email, phone, app, desk := a.ID, a.Name, a.Email, a.Phone, a.AppDevice, a.DeskDevice
	groups := append([]string{}, a.Groups...)
	in := presence.AgentInput{ID: &id, Name: &name, Email: &email, Groups: &groups}
	if phone != "" {
		in.Phone = &phone
	}
	if app != "" {
		in.AppDevice = &app
	}
	if desk != "" {
		in.DeskDevice = &desk
	}
	if a.Role != "" {
		r := presence.Role(a.Role)
		in.Role = &r
	}
	if a.Distribution != "" {
		d := presence.Distribution(a.Distribution)
		in.Distribution = &d
	}
	if _, err := svc.CreateAgent(ctx, presence.System, in); err != nil && !errors.Is(err, presence.ErrConflict) {
		return fmt.Errorf("agent %s: %w", a.ID, err)
	}
	switch {
	case a.Token != "":
		if err := svc.SetToken(ctx, a.Token, a.ID); err != nil {
			return fmt.Errorf("agent %s token: %w", a.ID, err)
		}
	case a.TokenSHA256 != "":
		if b, err := hex.DecodeString(a.TokenSHA256); err != nil || len(b) != 32 {
			return fmt.Errorf("agent %s: token_sha256 must be 64 hex digits", a.ID)
		}
		if err := svc.SetTokenHash(ctx, a.TokenSHA256, a.ID); err != nil {
			return fmt.Errorf("agent %s token: %w", a.ID, err)
		}
	}
	return nil
}

// QueueCreator is what BootstrapQueues needs (*routing.Engine has it).
type QueueCreator interface {
	CreateQueue(ctx context.Context, actor presence.Actor, in routing.QueueInput) (routing.Queue, error)
}

// BootstrapQueues creates the configured queues that do not exist yet;
// existing ones keep whatever was changed through the API.
func BootstrapQueues(ctx context.Context, cfg Config, engine QueueCreator) error {
	for _, q := range cfg.Queues {
		strategy := routing.Strategy(q.Strategy)
		in := routing.QueueInput{
			ID: &q.ID, Name: &q.Name, Strategy: &strategy, Members: &q.Members, Hotlines: &q.Hotlines,
			RingTimeoutSeconds: &q.RingTimeoutSeconds, WrapupSeconds: &q.WrapupSeconds, ServiceLevelSeconds: &q.ServiceLevelSeconds,
		}
		if q.WaitMode != "" {
			mode := media.HoldMode(q.WaitMode)
			in.WaitMode = &mode
		}
		if _, err := engine.CreateQueue(ctx, presence.System, in); err != nil && !errors.Is(err, presence.ErrConflict) {
			return fmt.Errorf("queue %s: %w", q.ID, err)
		}
	}
	return nil
}

// SIPCredential is one SIP device's digest password and the agent it
// belongs to.
type SIPCredential struct {
	Agent, Password string
}

// SIPPasswords maps each configured agent's device SIP users — the app
// device (default "<id>") and the IP phone (default "<id>-desk") — to
// their digest credentials: "sip-<SIP user>" unless the file says
// otherwise (README.md, "Devices").
func (c *Config) SIPPasswords() map[string]SIPCredential {
	out := make(map[string]SIPCredential, 2*len(c.Agents))
	for _, a := range c.Agents {
		rec := presence.Agent{ID: a.ID, AppDevice: a.AppDevice, DeskDevice: a.DeskDevice}
		for user, pw := range map[string]string{rec.AppUser(): a.SIPPassword, rec.DeskUser(): a.DeskSIPPassword} {
			if pw == "" {
				pw = "sip-" + user
			}
			out[user] = SIPCredential{Agent: a.ID, Password: pw}
		}
	}
	return out
}
