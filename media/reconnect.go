package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/callfloor/callfloor/internal/pause"
)

// Backoff bounds the wait between two connection attempts to a media
// server; each failed attempt doubles it, up to Max.
type Backoff struct{ Min, Max time.Duration }

// DefaultBackoff is how every media server connection backs off unless
// configured otherwise.
var DefaultBackoff = Backoff{Min: 250 * time.Millisecond, Max: 10 * time.Second}

// Validate refuses bounds Reconnect cannot use.
func (b Backoff) Validate() error {
	if b.Min <= 0 || b.Max < b.Min {
		return fmt.Errorf("media: bad reconnect backoff %v…%v", b.Min, b.Max)
	}
	return nil
}

// Session runs one connection to a media server until it is lost.
// connected reports whether it got as far as a usable connection (the
// next wait then starts again from Backoff.Min).
type Session func(ctx context.Context) (connected bool, err error)

// ErrStopReconnecting, wrapped in a session's error, ends Reconnect with
// that error: retrying cannot help (FreeSWITCH refused the password).
var ErrStopReconnecting = errors.New("media: reconnecting cannot help")

// ErrBackOffLonger, wrapped in a session's error, makes the next wait the
// longest: someone else holds what the session needs (another controller
// took the Stasis application's event socket).
var ErrBackOffLonger = errors.New("media: back off for the longest wait")

// Reconnect keeps a media server connection up until ctx ends — the one
// loop every path uses, so each backs off and recovers alike. It returns
// nil when ctx ends, or the error of a session that wrapped
// ErrStopReconnecting.
func Reconnect(ctx context.Context, b Backoff, log *slog.Logger, what string, session Session) error {
	delay := b.Min
	for ctx.Err() == nil {
		connected, err := session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, ErrStopReconnecting):
			log.Error(what+": not reconnecting", "err", err)
			return err
		case errors.Is(err, ErrBackOffLonger):
			delay = b.Max
		case connected:
			delay = b.Min
		}
		log.Warn(what+": connection lost, reconnecting", "err", err, "in", delay)
		if !pause.For(ctx, delay) {
			return nil
		}
		delay = min(2*delay, b.Max)
	}
	return nil
}
