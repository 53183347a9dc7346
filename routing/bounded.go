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

// boundedMedia gives each command its own deadline, and reports how long
// it took to the engine's observer (metrics: command latency by command).
type boundedMedia struct {
	m   media.Media
	d   time.Duration
	obs Observer
}

// observe reports one command that started at start.
func (b boundedMedia) observe(cmd string, start time.Time, err error) {
	b.obs.MediaCommand(cmd, time.Since(start), err)
}

func (b boundedMedia) Answer(ctx context.Context, leg media.LegID) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	err := b.m.Answer(ctx, leg)
	b.observe("answer", start, err)
	return err
}

func (b boundedMedia) Hold(ctx context.Context, leg media.LegID, mode media.HoldMode) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	err := b.m.Hold(ctx, leg, mode)
	b.observe("hold", start, err)
	return err
}

func (b boundedMedia) Dial(ctx context.Context, req media.DialRequest) (media.LegID, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	leg, err := b.m.Dial(ctx, req)
	b.observe("dial", start, err)
	return leg, err
}

func (b boundedMedia) Connect(ctx context.Context, x, y media.LegID) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	err := b.m.Connect(ctx, x, y)
	b.observe("connect", start, err)
	return err
}

func (b boundedMedia) Monitor(ctx context.Context, req media.MonitorRequest) (media.LegID, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	leg, err := b.m.Monitor(ctx, req)
	b.observe("monitor", start, err)
	return leg, err
}

func (b boundedMedia) SetMonitorMode(ctx context.Context, leg media.LegID, mode media.MonitorMode) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	err := b.m.SetMonitorMode(ctx, leg, mode)
	b.observe("set_monitor_mode", start, err)
	return err
}

func (b boundedMedia) Mute(ctx context.Context, leg media.LegID, muted bool) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	err := b.m.Mute(ctx, leg, muted)
	b.observe("mute", start, err)
	return err
}

func (b boundedMedia) Hangup(ctx context.Context, leg media.LegID, cause media.Cause) error {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	err := b.m.Hangup(ctx, leg, cause)
	b.observe("hangup", start, err)
	return err
}

func (b boundedMedia) Capabilities() media.Capabilities { return b.m.Capabilities() }

func (b boundedMedia) Gone(ctx context.Context, legs []media.LegID) ([]media.LegID, error) {
	ctx, cancel := context.WithTimeout(ctx, b.d)
	defer cancel()
	start := time.Now()
	gone, err := b.m.Gone(ctx, legs)
	b.observe("gone", start, err)
	return gone, err
}
