package webhook

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/stream"
)

// Hook is a registered endpoint as the API shows it. Secret is only
// filled in the response to its creation.
type Hook struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Types     []string  `json:"types"` // empty: every type
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
}

// record is the stored form (the secret is needed to sign).
type record struct {
	Hook
	StoredSecret string `json:"stored_secret"`
	// StartAfter is the log position at registration: the hook gets the
	// events after it.
	StartAfter string `json:"start_after"`
}

// Wants reports whether the hook subscribes to events of type t.
func (h *Hook) Wants(t string) bool { return len(h.Types) == 0 || slices.Contains(h.Types, t) }

// Input is the body of POST /v1/webhooks.
type Input struct {
	URL    string   `json:"url"`
	Secret string   `json:"secret"` // optional: generated when empty
	Types  []string `json:"types"`  // optional: every type when empty
}

// Registry manages webhook registrations (admins only).
type Registry struct {
	store state.Store
	log   state.Log
	now   func() time.Time
}

// NewRegistry returns a registry over store and its log (a new hook
// receives the events after the log position at its registration).
func NewRegistry(store state.Store, log state.Log) *Registry {
	return &Registry{store: store, log: log, now: time.Now}
}

func fieldErr(field, reason string) error {
	return &presence.FieldError{Field: field, Reason: reason, Class: presence.ErrInvalid}
}

func admin(actor presence.Actor) error {
	if !actor.IsAdmin() {
		return fmt.Errorf("only admins manage webhooks: %w", presence.ErrForbidden)
	}
	return nil
}

// ValidateURL accepts absolute http(s) URLs with a host, no credentials
// and no fragment.
func ValidateURL(raw string) error {
	if raw == "" || len(raw) > 2048 {
		return fieldErr("url", "must be an http(s) URL of at most 2048 characters")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fieldErr("url", "is not a URL: "+err.Error())
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fieldErr("url", "scheme must be http or https")
	case u.Host == "" || u.Hostname() == "":
		return fieldErr("url", "must name a host")
	case u.User != nil:
		return fieldErr("url", "must not carry credentials; use the signing secret")
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return fieldErr("url", "must not have a fragment")
	}
	return nil
}

// Create registers a webhook. The returned Hook includes the secret,
// which is never shown again.
func (r *Registry) Create(ctx context.Context, actor presence.Actor, in Input) (Hook, error) {
	if err := admin(actor); err != nil {
		return Hook{}, err
	}
	if err := ValidateURL(in.URL); err != nil {
		return Hook{}, err
	}
	types := []string{}
	for _, t := range in.Types {
		if !slices.Contains(stream.Types, t) {
			return Hook{}, fieldErr("types", fmt.Sprintf("unknown event type %q (known: %s)", t, strings.Join(stream.Types, ",")))
		}
		if !slices.Contains(types, t) {
			types = append(types, t)
		}
	}
	sort.Strings(types)
	secret := in.Secret
	switch {
	case secret == "":
		secret = randomHex(32)
	case len(secret) < 16 || len(secret) > 256:
		return Hook{}, fieldErr("secret", "must be 16-256 characters (or omitted to generate one)")
	}
	from, err := r.log.Last(ctx)
	if err != nil {
		return Hook{}, fmt.Errorf("log position: %w", err)
	}
	h := Hook{ID: "wh_" + randomHex(8), URL: in.URL, Types: types, CreatedAt: r.now().UTC().Truncate(time.Second), CreatedBy: actor.ID}
	data, err := json.Marshal(record{Hook: h, StoredSecret: secret, StartAfter: from})
	if err != nil {
		return Hook{}, fmt.Errorf("encode webhook: %w", err)
	}
	if _, err := r.store.Commit(ctx, state.Tx{Puts: []state.Put{{Kind: state.KindWebhook, ID: h.ID, Data: data, IfVersion: state.MustNotExist}}}); err != nil {
		return Hook{}, fmt.Errorf("store webhook: %w", err)
	}
	h.Secret = secret
	return h, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b)
}

// List returns every webhook, without secrets.
func (r *Registry) List(ctx context.Context, actor presence.Actor) ([]Hook, error) {
	if err := admin(actor); err != nil {
		return nil, err
	}
	recs, err := loadAll(ctx, r.store)
	if err != nil {
		return nil, err
	}
	out := make([]Hook, 0, len(recs))
	for _, rec := range recs {
		out = append(out, rec.Hook)
	}
	return out, nil
}

func loadAll(ctx context.Context, st state.Store) ([]record, error) {
	out, err := state.ListAs[record](ctx, st, state.KindWebhook)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Secret = ""
	}
	return out, nil
}

// Get returns one webhook, without its secret.
func (r *Registry) Get(ctx context.Context, actor presence.Actor, id string) (Hook, error) {
	if err := admin(actor); err != nil {
		return Hook{}, err
	}
	rr, err := r.store.Get(ctx, state.KindWebhook, id)
	if errors.Is(err, state.ErrNotFound) {
		return Hook{}, fmt.Errorf("webhook %q: %w", id, presence.ErrNotFound)
	}
	if err != nil {
		return Hook{}, fmt.Errorf("get webhook: %w", err)
	}
	var rec record
	if err := json.Unmarshal(rr.Data, &rec); err != nil {
		return Hook{}, fmt.Errorf("decode webhook %s: %w", id, err)
	}
	rec.Secret = ""
	return rec.Hook, nil
}

// Delete removes a webhook and its delivery log; pending deliveries to it
// are dropped.
func (r *Registry) Delete(ctx context.Context, actor presence.Actor, id string) error {
	if _, err := r.Get(ctx, actor, id); err != nil {
		return err
	}
	_, err := r.store.Commit(ctx, state.Tx{Deletes: []state.Delete{
		{Kind: state.KindWebhook, ID: id, IfVersion: state.AnyVersion},
		{Kind: state.KindMeta, ID: deliveriesID(id), IfVersion: state.AnyVersion},
	}})
	if err != nil {
		return fmt.Errorf("delete webhook: %w", err)
	}
	return nil
}

// Deliveries returns the recent deliveries to a webhook, newest first.
func (r *Registry) Deliveries(ctx context.Context, actor presence.Actor, id string) ([]Delivery, error) {
	if _, err := r.Get(ctx, actor, id); err != nil {
		return nil, err
	}
	ds, _, err := loadDeliveries(ctx, r.store, id)
	return ds, err
}
