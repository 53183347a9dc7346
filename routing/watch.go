package routing

import (
	"context"
	"errors"
	"time"

	"github.com/callfloor/callfloor/internal/jsonv1"
	"github.com/callfloor/callfloor/internal/pause"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// WithAgentEvents makes the engine follow the shared event log and
// re-evaluate the queues whenever an agent changes in a way that may route
// a call (a status set through the API, a wrap-up ended early, a change
// made on another replica), so nobody has to remember to call Kick.
// Without it the periodic tick catches such changes within one tick.
func WithAgentEvents(log state.Log) Option { return func(e *Engine) { e.watchLog = log } }

// WithAgentWatchLinger sets how long the agent watch pauses after a read
// that returned events before it reads again (default 10 ms). On a busy
// floor every store commit appends events; without the pause each one
// would wake the watch, most of them only to be skipped (docs/
// performance.md, Wake-ups). An agent freed after a quiet spell still
// kicks at once; the tick bounds the wait either way.
func WithAgentWatchLinger(d time.Duration) Option {
	return func(e *Engine) { e.watchLinger = max(d, 0) }
}

// mayRoute reports whether an agent event (the agent's view) can let a
// call be routed: only an agent now routable, and only while a call may
// be waiting. Any other change (a break, a call status change of a busy
// agent) cannot place a call, so it costs no distribution pass and floor
// re-read; the queue views it changes are republished by the next tick
// (docs/performance.md, Routing).
func (e *Engine) mayRoute(view []byte) bool {
	var a struct {
		CallStatus   string                `json:"call_status"`
		SystemStatus presence.SystemStatus `json:"system_status"`
		CallID       *string               `json:"call_id"`
	}
	if err := jsonv1.Unmarshal(view, &a); err != nil {
		return true // not a view we understand: let the pass decide
	}
	if a.CallStatus != presence.StatusAvailable || a.SystemStatus != presence.SysAvailable || a.CallID != nil {
		return false
	}
	return !e.noneWaiting.Load()
}

// watchBatch is how many events one read of the agent watch returns at most.
const watchBatch = 256

// watchAgents tails the log after pos and kicks on agent events.
func (e *Engine) watchAgents(ctx context.Context, pos string) {
	for ctx.Err() == nil {
		evs, err := e.watchLog.ReadAfter(ctx, pos, watchBatch, 5*time.Second)
		switch {
		case ctx.Err() != nil:
			return
		case errors.Is(err, state.ErrTrimmed) || errors.Is(err, state.ErrBadPosition):
			// Fell behind the retained window: start from now, and look
			// at everything once since something may have been missed.
			if pos, err = e.watchLog.Last(ctx); err == nil {
				e.Kick()
			}
			continue
		case err != nil:
			e.log.Warn("agent watch: read log", "err", err)
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
			}
			continue
		}
		kick := false
		for _, ev := range evs {
			pos = ev.ID
			kick = kick || ev.Type == presence.EventAgent && e.mayRoute(ev.Data)
		}
		if kick {
			e.Kick()
		}
		// A full read means the watch is behind: read on without pausing.
		if len(evs) > 0 && len(evs) < watchBatch && !pause.For(ctx, e.watchLinger) {
			return
		}
	}
}
