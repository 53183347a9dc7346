package media

// Observer learns the state of a media path's connection, for metrics
// (README.md, Metrics and profiles). Each path takes one at construction
// (ari.WithObserver, esl.WithObserver, sip.WithObserver). Calls come from
// the path's connection loop and must be cheap and never block.
type Observer interface {
	// Connected reports the connection to the media server coming up or
	// going down (the built-in SIP path: listening or stopped). An "up"
	// after a "down" is a reconnect.
	Connected(up bool)
}

// NopObserver ignores everything; paths use it when given none.
type NopObserver struct{}

// Connected implements Observer.
func (NopObserver) Connected(bool) {}
