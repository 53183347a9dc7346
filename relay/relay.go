// Package relay carries a request to whichever replica serves a named
// channel right now and brings its answer back. A replica that does not
// drive the media server uses it to hand a call command (supervisor
// actions, click-to-call, transfer, hang-up) to the one that does, and
// answers its client with that replica's result (README.md, Running
// several replicas).
//
// Delivery is at most once: a request is handed to the serving replica
// once, never re-sent, so a command is never executed twice by the relay.
// When no replica serves the channel, or the serving one dies before it
// answers, the requester gets ErrNoServer or ErrNoReply at its deadline and
// must not assume either outcome.
//
// The store implements Bus in memory and on Redis (PUBLISH to the serving
// replica, the answer pushed to a per-request list the requester BLPOPs);
// both are proven by relaytest.
package relay

import (
	"context"
	"errors"
)

// Sentinel errors of a Bus.
var (
	// ErrNoServer: no replica served the channel before the deadline.
	ErrNoServer = errors.New("relay: no replica serves the channel")
	// ErrNoReply: the request was handed over but no answer came back
	// before the deadline (the serving replica may have died or stalled).
	ErrNoReply = errors.New("relay: the serving replica did not answer in time")
)

// Handler answers one request. ctx ends when Serve stops.
type Handler func(ctx context.Context, req []byte) []byte

// Bus is a request/answer channel between replicas.
type Bus interface {
	// Serve answers requests on channel with h until ctx ends, then
	// returns once the handlers it started have returned. It is serving
	// once ready is closed (nil: nobody waits).
	Serve(ctx context.Context, channel string, h Handler, ready chan<- struct{}) error
	// Request hands req to the replica serving channel and returns its
	// answer. It waits for a server until ctx's deadline (ErrNoServer),
	// then for the answer (ErrNoReply).
	Request(ctx context.Context, channel string, req []byte) ([]byte, error)
}
