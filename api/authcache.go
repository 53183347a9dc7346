package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// authCacheTTL is how long a successful authentication may stand in for
// the store while it is unreachable (SECURITY.md).
const authCacheTTL = time.Minute

// maxAuthCache bounds the cache; past it the cache starts over.
const maxAuthCache = 10000

// authCache keeps requests authenticating while the store is away. It is
// read only when the store is unavailable: while the store answers, a
// deleted user or a changed role is seen at once.
type authCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cachedActor // by token hash
}

type cachedActor struct {
	actor presence.Actor
	at    time.Time
}

// Authenticator resolves a bearer token: *presence.Service.
type tokenAuthenticator interface {
	Authenticate(ctx context.Context, token string) (presence.Actor, error)
}

func newAuthCache(ttl time.Duration, now func() time.Time) *authCache {
	return &authCache{ttl: ttl, now: now, m: map[string]cachedActor{}}
}

func (c *authCache) authenticate(ctx context.Context, auth tokenAuthenticator, token string) (presence.Actor, error) {
	key := presence.HashToken(token)
	actor, err := auth.Authenticate(ctx, token)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err == nil:
		if len(c.m) >= maxAuthCache {
			clear(c.m)
		}
		c.m[key] = cachedActor{actor: actor, at: now}
		return actor, nil
	case errors.Is(err, state.ErrUnavailable):
		if e, ok := c.m[key]; ok && now.Sub(e.at) < c.ttl {
			return e.actor, nil
		}
		return presence.Actor{}, err
	default:
		delete(c.m, key)
		return presence.Actor{}, err
	}
}
