package store

import (
	"context"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/state"
)

// Observer learns what the store does, for metrics. Calls come from the
// goroutine that used the store, so they must be cheap and never block.
type Observer interface {
	// Command reports one store command and how long it took: a Redis
	// command by its name (blocking log reads excluded: their time is
	// waiting, not work), an in-memory operation by its method.
	Command(op string, d time.Duration)
	// Appended reports events this process appended to the log.
	Appended(evs []state.Event)
}

// WithObserver reports commands and appended events to o.
func WithObserver(o Observer) Option {
	return func(opts *options) { opts.observer = o }
}

type nopObserver struct{}

func (nopObserver) Command(string, time.Duration) {}
func (nopObserver) Appended([]state.Event)        {}

// observe reports an in-memory operation that started at start.
func (m *Memory) observe(op string, start time.Time) {
	m.obs.Command(op, time.Since(start))
}

// commandHook times every Redis command the client sends.
type commandHook struct{ obs Observer }

func (commandHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h commandHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmd)
		if !blocking(cmd) {
			h.obs.Command(cmd.Name(), time.Since(start))
		}
		return err
	}
}

func (h commandHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		start := time.Now()
		err := next(ctx, cmds)
		h.obs.Command("pipeline", time.Since(start))
		return err
	}
}

// blocking reports an XREAD … BLOCK: the log tail waiting for appends.
func blocking(cmd redis.Cmder) bool {
	if cmd.Name() != "xread" {
		return false
	}
	for _, a := range cmd.Args() {
		if s, ok := a.(string); ok && strings.EqualFold(s, "block") {
			return true
		}
	}
	return false
}
