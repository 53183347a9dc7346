package store

import (
	"context"
	"fmt"
	"time"

	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/state"
)

// memLease is one lease grant of the memory store.
type memLease struct {
	holder string
	token  int64
	until  time.Time
}

var _ lease.Backend = (*Memory)(nil)

// leaseState is the lease bookkeeping of a Memory store (guarded by its mu).
type leaseState struct {
	grants map[string]memLease
	// tokens is the last token issued per lease; it outlives the grants
	// so a token never repeats.
	tokens map[string]int64
	// released is closed and replaced when the lease is released.
	released map[string]chan struct{}
}

func (m *Memory) releasedChan(name string) chan struct{} {
	if m.leases.released == nil {
		m.leases.released = map[string]chan struct{}{}
	}
	ch := m.leases.released[name]
	if ch == nil {
		ch = make(chan struct{})
		m.leases.released[name] = ch
	}
	return ch
}

// TryAcquire implements lease.Backend.
func (m *Memory) TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (lease.Grant, error) {
	if err := ctx.Err(); err != nil {
		return lease.Grant{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return lease.Grant{}, state.ErrClosed
	}
	now := m.now()
	g, ok := m.leases.grants[name]
	if ok && now.Before(g.until) && g.holder != holder {
		return lease.Grant{Holder: g.holder, Token: g.token, TTL: g.until.Sub(now)},
			fmt.Errorf("lease %q held by %s: %w", name, g.holder, lease.ErrHeld)
	}
	if !ok || g.holder != holder || !now.Before(g.until) {
		if m.leases.tokens == nil {
			m.leases.tokens = map[string]int64{}
			m.leases.grants = map[string]memLease{}
		}
		m.leases.tokens[name]++
		g = memLease{holder: holder, token: m.leases.tokens[name]}
	}
	g.until = now.Add(ttl)
	m.leases.grants[name] = g
	return lease.Grant{Holder: holder, Token: g.token, TTL: ttl}, nil
}

// Renew implements lease.Backend.
func (m *Memory) Renew(ctx context.Context, name, holder string, token int64, ttl time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return state.ErrClosed
	}
	now := m.now()
	g, ok := m.leases.grants[name]
	if !ok || g.holder != holder || g.token != token || !now.Before(g.until) {
		return fmt.Errorf("renew lease %q (token %d): %w", name, token, lease.ErrLost)
	}
	g.until = now.Add(ttl)
	m.leases.grants[name] = g
	return nil
}

// Release implements lease.Backend.
func (m *Memory) Release(ctx context.Context, name, holder string, token int64) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return state.ErrClosed
	}
	g, ok := m.leases.grants[name]
	if !ok || g.holder != holder || g.token != token {
		return nil
	}
	delete(m.leases.grants, name)
	close(m.releasedChan(name))
	delete(m.leases.released, name)
	return nil
}

// WaitRelease implements lease.Backend.
func (m *Memory) WaitRelease(ctx context.Context, name string, wait time.Duration) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return state.ErrClosed
	}
	ch := m.releasedChan(name)
	m.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-ch:
	case <-t.C:
	case <-m.done:
	}
	return nil
}

// fenceOK reports whether f admits a Tx: no fence, or no newer grant than
// f.Token. Caller holds m.mu.
func (m *Memory) fenceOK(f state.Fence) bool {
	return f.Lease == "" || m.leases.tokens[f.Lease] == f.Token
}
