package routing

// Observer learns what the engine does, for metrics. Calls are made with
// engine locks held, so they must be cheap and never block.
type Observer interface {
	// QueueDepth reports the work queued or running on the engine's
	// ordered loops (facts, actions, timer consequences, passes).
	QueueDepth(n int)
	// WorkDone reports one item of that work finished.
	WorkDone()
	// ConflictRetry reports a call change retried because a record it
	// read changed before its commit.
	ConflictRetry()
	// DispatchPass reports one distribution pass over every queue.
	DispatchPass()
}

// WithObserver reports the engine's queues, retries and passes to o.
func WithObserver(o Observer) Option {
	return func(e *Engine) {
		if o != nil {
			e.obs = o
		}
	}
}

type nopObserver struct{}

func (nopObserver) QueueDepth(int) {}
func (nopObserver) WorkDone()      {}
func (nopObserver) ConflictRetry() {}
func (nopObserver) DispatchPass()  {}
