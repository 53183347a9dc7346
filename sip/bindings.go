package sip

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/state"
)

// BindingStore keeps the registrar's contacts outside the process, so a
// restarted callfloor (or the replica that takes the SIP listener over)
// still reaches every device registered before: phones re-register only
// when their registration nears its end, up to an hour later.
type BindingStore interface {
	// SaveBindings replaces the contacts of one SIP user; none deletes.
	SaveBindings(ctx context.Context, user string, bs []StoredBinding) error
	// LoadBindings returns every user's stored contacts.
	LoadBindings(ctx context.Context) (map[string][]StoredBinding, error)
}

// StoredBinding is one contact as stored.
type StoredBinding struct {
	URI       string    `json:"uri"`
	Expires   time.Time `json:"expires"`
	CallID    string    `json:"call_id"`
	CSeq      uint32    `json:"cseq"`
	Transport string    `json:"transport"`
	Source    string    `json:"source"`
}

// WithBindingStore persists registrations in bs (default: none, so a
// restart forgets them until the phones re-register).
func WithBindingStore(bs BindingStore) Option { return func(o *options) { o.bindings = bs } }

// StateBindings stores bindings as records of the state store: one
// record per SIP user.
func StateBindings(st state.Store) BindingStore { return stateBindings{st} }

type stateBindings struct{ st state.Store }

func (s stateBindings) SaveBindings(ctx context.Context, user string, bs []StoredBinding) error {
	var tx state.Tx
	if len(bs) == 0 {
		tx.Deletes = []state.Delete{{Kind: state.KindSIPBinding, ID: user, IfVersion: state.AnyVersion}}
	} else {
		data, err := json.Marshal(bs)
		if err != nil {
			return err
		}
		tx.Puts = []state.Put{{Kind: state.KindSIPBinding, ID: user, Data: data, IfVersion: state.AnyVersion}}
	}
	_, err := s.st.Commit(ctx, tx)
	return err
}

func (s stateBindings) LoadBindings(ctx context.Context) (map[string][]StoredBinding, error) {
	recs, err := s.st.List(ctx, state.KindSIPBinding)
	if err != nil {
		return nil, err
	}
	out := make(map[string][]StoredBinding, len(recs))
	for _, r := range recs {
		var bs []StoredBinding
		if err := json.Unmarshal(r.Data, &bs); err != nil {
			return nil, fmt.Errorf("sip binding %s: %w", r.ID, err)
		}
		out[r.ID] = bs
	}
	return out, nil
}

// storedOf converts live bindings for the store.
func storedOf(bs []binding) []StoredBinding {
	out := make([]StoredBinding, len(bs))
	for i, b := range bs {
		out[i] = StoredBinding{URI: b.key, Expires: b.expires, CallID: b.callID, CSeq: b.cseq, Transport: b.transport, Source: b.source}
	}
	return out
}

// restore loads stored bindings that have not lapsed and reports each
// user's devices as registered again (presence may have lapsed them
// while no process ran).
func (r *registrar) restore(ctx context.Context) error {
	bs := r.s.opts.bindings
	if bs == nil {
		return nil
	}
	all, err := bs.LoadBindings(ctx)
	if err != nil {
		return fmt.Errorf("sip: load registrations: %w", err)
	}
	now := r.s.now()
	var errs []error
	r.mu.Lock()
	for user, stored := range all {
		var live []binding
		for _, sb := range stored {
			if !now.Before(sb.Expires) {
				continue
			}
			var u sip.Uri
			if err := sip.ParseUri(sb.URI, &u); err != nil {
				errs = append(errs, fmt.Errorf("user %s contact %q: %w", user, sb.URI, err))
				continue
			}
			live = append(live, binding{uri: u, key: sb.URI, expires: sb.Expires, callID: sb.CallID, cseq: sb.CSeq,
				transport: sb.Transport, source: sb.Source})
		}
		if len(live) > 0 {
			r.aors[user] = live
		}
	}
	var facts []media.DeviceState
	for user, live := range r.aors {
		var fs []media.DeviceState
		for _, b := range live {
			fs = append(fs, media.DeviceState{AgentID: user, Device: b.key})
		}
		facts = append(facts, stateFacts(fs, live, now)...)
	}
	r.mu.Unlock()
	for _, f := range facts {
		r.s.report(f)
	}
	return errors.Join(errs...)
}

// persist saves one user's bindings after a change (outside r.mu). A
// failure is logged: the registration itself stands, only a restart
// before the phone re-registers would forget it.
func (r *registrar) persist(user string, bs []binding) {
	store := r.s.opts.bindings
	if store == nil {
		return
	}
	ctx, cancel := context.WithTimeout(r.s.baseCtx, 5*time.Second)
	defer cancel()
	if err := store.SaveBindings(ctx, user, storedOf(bs)); err != nil {
		r.s.log.Warn("registrar: saving registrations failed", "user", user, "err", err)
	}
}
