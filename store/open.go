package store

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/relay"
	"github.com/callfloor/callfloor/state"
)

// Backend is what both stores are: the state store with its event log,
// the keeper of the replicas' leases (package lease), which must live in
// the same store for fenced commits (state.Fence) to check them, and the
// bus that carries call commands to the replica driving the media server
// (package relay).
type Backend interface {
	state.StoreLog
	lease.Backend
	relay.Bus
}

var (
	_ Backend = (*Memory)(nil)
	_ Backend = (*Redis)(nil)
)

// Open returns the store redisURL names: "" is a new in-memory store;
// anything else is a Redis URL (see parseRedisURL for the accepted forms:
// redis://, rediss://, redis+sentinel://, redis+cluster://). A Redis store
// is pinged with ctx before Open returns, so a wrong address or password
// fails here rather than on the first request. opts are passed to
// NewMemory or NewRedis. Passwords never reach the log or the error.
func Open(ctx context.Context, redisURL string, logger *slog.Logger, opts ...Option) (Backend, error) {
	return open(ctx, redisURL, logger, false, opts...)
}

// OpenWaiting is Open for a process that should start while Redis is
// down: an unreachable server (state.ErrUnavailable) is logged, not
// returned, and the store answers state.ErrUnavailable until the server
// is back. A refused password or a bad URL still fails.
func OpenWaiting(ctx context.Context, redisURL string, logger *slog.Logger, opts ...Option) (Backend, error) {
	return open(ctx, redisURL, logger, true, opts...)
}

func open(ctx context.Context, redisURL string, logger *slog.Logger, waitOK bool, opts ...Option) (Backend, error) {
	if logger == nil {
		logger = slog.Default()
	}
	opts = append([]Option{WithLogger(logger)}, opts...)
	if redisURL == "" {
		logger.Info("state store: in memory (nothing survives a restart)")
		return NewMemory(opts...), nil
	}
	target, err := parseRedisURL(redisURL)
	if err != nil {
		return nil, err
	}
	client := target.client()
	if err := client.Ping(ctx).Err(); err != nil {
		if !unavailable(err) || !waitOK {
			_ = client.Close()
			if unavailable(err) {
				return nil, fmt.Errorf("store: connect to %s: %w: %w", target, state.ErrUnavailable, redactURLError(err))
			}
			return nil, fmt.Errorf("store: connect to %s: %w", target, redactURLError(err))
		}
		// Unreachable, not refused: the client reconnects by itself, and
		// every call fails with state.ErrUnavailable until the server answers.
		logger.Warn("state store: redis unreachable; starting anyway, not ready until it answers",
			"url", target.String(), "err", redactURLError(err))
	}
	s := NewRedis(client, opts...)
	logger.Info("state store: redis", "mode", target.mode, "url", target.String(),
		"prefix", s.opts.prefix, "event_retention", s.opts.retention)
	return s, nil
}
