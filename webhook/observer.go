package webhook

// Observer learns how deliveries go, for metrics. Calls come from the
// delivery workers and must be cheap and never block.
type Observer interface {
	// Attempted reports one POST: err is nil when the receiver took it.
	Attempted(err error)
	// Finished reports a delivery that ended in state StateDelivered or
	// StateFailed (given up after the last attempt).
	Finished(state string)
}

// WithObserver reports attempts and finished deliveries to o.
func WithObserver(o Observer) Option {
	return func(d *Dispatcher) {
		if o != nil {
			d.obs = o
		}
	}
}

type nopObserver struct{}

func (nopObserver) Attempted(error) {}
func (nopObserver) Finished(string) {}
