package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/callfloor/callfloor/state"
)

// Settings are the account's floor settings. They live in the store as
// one record, so every replica applies the same ones.
type Settings struct {
	// AvailableAfterOutdial: an agent who finished an outbound call is
	// available, even if they dialled from a not-available status; when
	// false they return to the status they had (README.md, "Floor rules").
	AvailableAfterOutdial bool `json:"available_after_outdial"`
}

// SettingsInput is a settings patch: nil fields are kept.
type SettingsInput struct {
	AvailableAfterOutdial *bool `json:"available_after_outdial"`
}

const settingsID = "account"

// DefaultSettings apply until an admin (or the YAML file) sets others.
var DefaultSettings = Settings{AvailableAfterOutdial: false}

// Settings reads the account's settings, without access checks (for
// trusted callers such as routing).
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	out, _, err := s.settings(ctx)
	return out, err
}

func (s *Service) settings(ctx context.Context) (Settings, int64, error) {
	r, err := s.store.Get(ctx, state.KindSettings, settingsID)
	if errors.Is(err, state.ErrNotFound) {
		return DefaultSettings, state.MustNotExist, nil
	}
	if err != nil {
		return Settings{}, 0, fmt.Errorf("get settings: %w", err)
	}
	out := DefaultSettings
	if err := json.Unmarshal(r.Data, &out); err != nil {
		return Settings{}, 0, fmt.Errorf("decode settings: %w", err)
	}
	return out, r.Version, nil
}

// GetSettings returns the settings to an admin or a supervisor.
func (s *Service) GetSettings(ctx context.Context, actor Actor) (Settings, error) {
	if !actor.IsAdmin() && actor.Role != RoleSupervisor {
		return Settings{}, fmt.Errorf("account settings are for admins and supervisors: %w", ErrForbidden)
	}
	return s.Settings(ctx)
}

// UpdateSettings changes the settings (admin only).
func (s *Service) UpdateSettings(ctx context.Context, actor Actor, in SettingsInput) (Settings, error) {
	if !actor.IsAdmin() {
		return Settings{}, fmt.Errorf("only admins change account settings: %w", ErrForbidden)
	}
	if in.AvailableAfterOutdial == nil {
		return Settings{}, invalid("available_after_outdial", "give a setting to change")
	}
	for attempt := range maxRetries {
		if attempt > 0 {
			if err := state.RetryWait(ctx, attempt); err != nil {
				return Settings{}, err
			}
		}
		cur, version, err := s.settings(ctx)
		if err != nil {
			return Settings{}, err
		}
		cur.AvailableAfterOutdial = *in.AvailableAfterOutdial
		data, err := json.Marshal(cur)
		if err != nil {
			return Settings{}, fmt.Errorf("encode settings: %w", err)
		}
		_, err = s.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindSettings, ID: settingsID, Data: data, IfVersion: version}}})
		if errors.Is(err, state.ErrConflict) {
			continue
		}
		if err != nil {
			return Settings{}, fmt.Errorf("commit settings: %w", err)
		}
		return cur, nil
	}
	return Settings{}, fmt.Errorf("settings: too many concurrent writers: %w", ErrConflict)
}

// InitSettings stores set unless settings are stored already (the YAML
// bootstrap: a restart on a persistent store keeps what an admin chose).
func (s *Service) InitSettings(ctx context.Context, set Settings) error {
	data, err := json.Marshal(set)
	if err != nil {
		return fmt.Errorf("encode settings: %w", err)
	}
	_, err = s.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindSettings, ID: settingsID, Data: data, IfVersion: state.MustNotExist}}})
	if err != nil && !errors.Is(err, state.ErrConflict) {
		return fmt.Errorf("store settings: %w", err)
	}
	return nil
}
