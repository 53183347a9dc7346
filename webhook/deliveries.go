package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/callfloor/callfloor/state"
)

// Delivery states.
const (
	StatePending   = "pending"   // not yet delivered; retrying
	StateDelivered = "delivered" // the receiver answered 2xx
	StateFailed    = "failed"    // given up after the last attempt
)

// Delivery is the state of one event's delivery to one webhook.
type Delivery struct {
	ID          string     `json:"id"` // "<webhook id>/<event id>", also sent as X-Callfloor-Delivery
	EventID     string     `json:"event_id"`
	Type        string     `json:"type"`
	Resource    string     `json:"resource"`
	State       string     `json:"state"`
	Attempts    int        `json:"attempts"`
	LastStatus  int        `json:"last_status,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
	NextAttempt *time.Time `json:"next_attempt_at,omitempty"`
	DeliveredAt *time.Time `json:"delivered_at"`
	CreatedAt   time.Time  `json:"created_at"`
}

func (d *Delivery) finished() bool { return d.State == StateDelivered || d.State == StateFailed }

// keepDeliveries is how many recent deliveries each webhook's log keeps.
const keepDeliveries = 100

func deliveriesID(hookID string) string { return "webhook-deliveries:" + hookID }

// loadDeliveries reads a webhook's delivery log (newest first) and its version.
func loadDeliveries(ctx context.Context, st state.Store, hookID string) ([]Delivery, int64, error) {
	rr, err := st.Get(ctx, state.KindMeta, deliveriesID(hookID))
	if errors.Is(err, state.ErrNotFound) {
		return []Delivery{}, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("get deliveries: %w", err)
	}
	var ds []Delivery
	if err := json.Unmarshal(rr.Data, &ds); err != nil {
		return nil, 0, fmt.Errorf("decode deliveries of %s: %w", hookID, err)
	}
	return ds, rr.Version, nil
}

// deliveryLog is a webhook's recent deliveries, newest first, bounded.
type deliveryLog struct {
	items []*Delivery
	dirty bool
}

func (l *deliveryLog) find(id string) *Delivery {
	for _, d := range l.items {
		if d.ID == id {
			return d
		}
	}
	return nil
}

// add records a new delivery, dropping the oldest finished ones beyond
// the bound (an unfinished one is never dropped: it is still being worked on).
func (l *deliveryLog) add(d *Delivery) {
	l.items = append([]*Delivery{d}, l.items...)
	for i := len(l.items) - 1; i >= 0 && len(l.items) > keepDeliveries; i-- {
		if l.items[i].finished() {
			l.items = append(l.items[:i], l.items[i+1:]...)
		}
	}
	l.dirty = true
}

func (l *deliveryLog) encode() ([]byte, error) {
	out := make([]Delivery, len(l.items))
	for i, d := range l.items {
		out[i] = *d
	}
	return json.Marshal(out)
}
