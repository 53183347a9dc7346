package media

import "time"

// Observer learns the state of a media path's connection, for metrics
// (README.md, Metrics and profiles). Each path takes one at construction
// (ari.WithObserver, esl.WithObserver, sip.WithObserver). Calls come from
// the path's connection loop and must be cheap and never block.
type Observer interface {
	// Connected reports the connection to the media server coming up or
	// going down (the built-in SIP path: listening or stopped). An "up"
	// after a "down" is a reconnect.
	Connected(up bool)
	// EventLag reports how long after the media server emitted an event
	// the path handled it (queued inside the server, on the socket and in
	// the path's own queue).
	EventLag(d time.Duration)
	// CallRefused counts a new call the path turned away to protect the
	// media server (reason: "event_lag").
	CallRefused(reason string)
	// EventReceived counts an event the path read from the media server,
	// by type (Asterisk: the ARI event type), so the cost of a call on
	// the server's event queue can be measured (docs/performance.md).
	EventReceived(typ string)
	// RequestSent counts a request the path sent to the media server
	// (Asterisk: an ARI REST request), by method.
	RequestSent(method string)
}

// NopObserver ignores everything; paths use it when given none.
type NopObserver struct{}

// Connected implements Observer.
func (NopObserver) Connected(bool) {}

// EventLag implements Observer.
func (NopObserver) EventLag(time.Duration) {}

// CallRefused implements Observer.
func (NopObserver) CallRefused(string) {}

// EventReceived implements Observer.
func (NopObserver) EventReceived(string) {}

// RequestSent implements Observer.
func (NopObserver) RequestSent(string) {}
