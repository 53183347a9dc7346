package stream

// Observer learns what the hub does, for metrics. Calls are made with hub
// or subscriber locks held, so they must be cheap and never block.
type Observer interface {
	// Subscribers reports how many subscribers are attached now (SSE
	// clients, plus the process's own stats publisher).
	Subscribers(n int)
	// Delivered reports n events handed to one subscriber's consumer.
	Delivered(n int)
	// SlowConsumer reports a subscriber cut off because its queue overflowed.
	SlowConsumer()
}

// WithObserver reports subscribers, deliveries and cut-offs to o.
func WithObserver(o Observer) HubOption {
	return func(h *Hub) {
		if o != nil {
			h.obs = o
		}
	}
}

type nopObserver struct{}

func (nopObserver) Subscribers(int) {}
func (nopObserver) Delivered(int)   {}
func (nopObserver) SlowConsumer()   {}
