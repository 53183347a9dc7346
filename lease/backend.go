// Package lease gives one replica at a time the right to do something for
// the whole floor (deliver webhooks, publish stats, sweep presence, drive a
// media server), with a fencing token that grows on every change of owner so
// a stale owner's store writes are refused (state.Fence).
//
// A Backend keeps the grants; the store implements it in memory and on
// Redis (package store), both proven by one contract suite (lease/leasetest).
// A Lease runs the holder side: it waits for the grant, renews it well
// inside the TTL, runs the caller's work only while it holds it, cancels
// that work the moment the grant is lost (or can no longer be proven), and
// on shutdown releases the grant so the next replica takes over at once
// instead of waiting out the TTL (README.md, Running several replicas).
package lease

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors of a Backend.
var (
	// ErrHeld: another holder has the lease; Grant says who and for how long.
	ErrHeld = errors.New("lease: held by another replica")
	// ErrLost: the grant being renewed is gone (expired, released, or
	// taken over by a newer owner).
	ErrLost = errors.New("lease: lost")
)

// Grant is one holder's right to a lease.
type Grant struct {
	Holder string
	// Token is the fencing token: it grows on every change of owner and
	// stays the same while one owner renews.
	Token int64
	// TTL is how long the grant lasts from the moment the backend answered.
	TTL time.Duration
}

// Backend keeps leases. Every method takes the lease name; names are
// fixed strings ("floor", "webhooks", "media:asterisk:…").
type Backend interface {
	// TryAcquire grants name to holder for ttl when it is free, expired or
	// already holder's (then it is renewed and keeps its token). A grant to
	// a different holder than the previous one gets a greater token. When
	// another holder has it, the error wraps ErrHeld and the returned Grant
	// is theirs (its TTL is the time left).
	TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (Grant, error)
	// Renew extends holder's grant with token to ttl from now, or fails
	// with ErrLost when that grant is no longer current.
	Renew(ctx context.Context, name, holder string, token int64, ttl time.Duration) error
	// Release ends holder's grant with token at once and wakes the
	// replicas waiting in WaitRelease. Releasing a grant that is already
	// gone is not an error.
	Release(ctx context.Context, name, holder string, token int64) error
	// WaitRelease returns when name is released, after at most wait, or
	// with ctx's error when ctx ends first. A return says "try again now",
	// not that the lease is free.
	WaitRelease(ctx context.Context, name string, wait time.Duration) error
}
