package store

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/state"
)

var (
	//go:embed lua/lease_acquire.lua
	leaseAcquireSource string
	//go:embed lua/lease_renew.lua
	leaseRenewSource string
	//go:embed lua/lease_release.lua
	leaseReleaseSource string

	leaseAcquireScript = redis.NewScript(leaseAcquireSource)
	leaseRenewScript   = redis.NewScript(leaseRenewSource)
	leaseReleaseScript = redis.NewScript(leaseReleaseSource)
)

var _ lease.Backend = (*Redis)(nil)

// TryAcquire implements lease.Backend with lua/lease_acquire.lua. Grant
// expiry is the Redis server's (PEXPIRE), so replicas' clocks do not matter.
func (r *Redis) TryAcquire(ctx context.Context, name, holder string, ttl time.Duration) (lease.Grant, error) {
	if r.isClosed() {
		return lease.Grant{}, state.ErrClosed
	}
	res, err := leaseAcquireScript.Run(ctx, r.client, []string{r.leaseKey(name), r.leaseTokenKey(name)},
		holder, max(ttl.Milliseconds(), 1)).Slice()
	if err != nil {
		return lease.Grant{}, r.wrap("acquire lease", err)
	}
	if len(res) != 4 {
		return lease.Grant{}, fmt.Errorf("redis store: acquire lease %q: reply %v", name, res)
	}
	ok, _ := res[0].(int64)
	who, _ := res[1].(string)
	token, _ := res[2].(int64)
	ms, _ := res[3].(int64)
	g := lease.Grant{Holder: who, Token: token, TTL: time.Duration(max(ms, 0)) * time.Millisecond}
	if ok == 0 {
		return g, fmt.Errorf("lease %q held by %s: %w", name, who, lease.ErrHeld)
	}
	return g, nil
}

// Renew implements lease.Backend with lua/lease_renew.lua.
func (r *Redis) Renew(ctx context.Context, name, holder string, token int64, ttl time.Duration) error {
	if r.isClosed() {
		return state.ErrClosed
	}
	n, err := leaseRenewScript.Run(ctx, r.client, []string{r.leaseKey(name)},
		holder, strconv.FormatInt(token, 10), max(ttl.Milliseconds(), 1)).Int()
	if err != nil {
		return r.wrap("renew lease", err)
	}
	if n == 0 {
		return fmt.Errorf("renew lease %q (token %d): %w", name, token, lease.ErrLost)
	}
	return nil
}

// Release implements lease.Backend with lua/lease_release.lua.
func (r *Redis) Release(ctx context.Context, name, holder string, token int64) error {
	if r.isClosed() {
		return state.ErrClosed
	}
	err := leaseReleaseScript.Run(ctx, r.client, []string{r.leaseKey(name), r.leaseFreeKey(name)},
		holder, strconv.FormatInt(token, 10)).Err()
	if err != nil {
		return r.wrap("release lease", err)
	}
	return nil
}

// maxBlock bounds one BLPOP, under go-redis's default 3 s read timeout.
const maxBlock = 2 * time.Second

// WaitRelease implements lease.Backend: BLPOP on the hand-over list, in
// steps short enough for the client's read timeout.
func (r *Redis) WaitRelease(ctx context.Context, name string, wait time.Duration) error {
	deadline := time.Now().Add(wait)
	for {
		if r.isClosed() {
			return state.ErrClosed
		}
		step := min(time.Until(deadline), maxBlock)
		if step <= 0 {
			return nil
		}
		// BLPOP takes fractional seconds (Redis >= 6); go-redis's BLPop
		// rounds to whole seconds, hence Do.
		err := r.client.Do(ctx, "BLPOP", r.leaseFreeKey(name), strconv.FormatFloat(step.Seconds(), 'f', 3, 64)).Err()
		switch {
		case err == nil:
			return nil
		case errors.Is(err, redis.Nil):
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return r.wrap("wait for lease release", err)
		}
	}
}
