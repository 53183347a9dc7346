package routing

import (
	"context"
	"time"

	"github.com/callfloor/callfloor/media"
)

// DefaultMediaTimeout bounds every media command routing sends. Media
// paths must return promptly anyway; this keeps one wedged command (a
// socket that stopped answering) from holding a call loop, and the
// dispatcher waiting on it, forever.
const DefaultMediaTimeout = 10 * time.Second

// WithMediaTimeout changes DefaultMediaTimeout.
func WithMediaTimeout(d time.Duration) Option {
	return func(e *Engine) {
		if d > 0 {
			e.mediaTimeout = d
		}
	}
}

// boundedMedia gives each command its own deadline.
type boundedMedia struct {
	m media.Media
	d time.Duration
}

func (b boundedMedia) Answer(ctx context.Context, leg media.LegID) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.m.Answer(ctx, leg)
}

func (b boundedMedia) Hold(ctx context.Context, leg media.LegID, mode media.HoldMode) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.m.Hold(ctx, leg, mode)
}

func (b boundedMedia) Dial(ctx context.Context, req media.DialRequest) (media.LegID, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.m.Dial(ctx, req)
}

func (b boundedMedia) Connect(ctx context.Context, x, y media.LegID) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.m.Connect(ctx, x, y)
}

func (b boundedMedia) Monitor(ctx context.Context, req media.MonitorRequest) (media.LegID, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.m.Monitor(ctx, req)
}

func (b boundedMedia) SetMonitorMode(ctx context.Context, leg media.LegID, mode media.MonitorMode) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.m.SetMonitorMode(ctx, leg, mode)
}

func (b boundedMedia) Mute(ctx context.Context, leg media.LegID, muted bool) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.m.Mute(ctx, leg, muted)
}

func (b boundedMedia) Hangup(ctx context.Context, leg media.LegID, cause media.Cause) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	return b.m.Hangup(ctx, leg, cause)
}

func (b boundedMedia) Capabilities() media.Capabilities { return b.m.Capabilities() }
