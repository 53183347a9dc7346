package routing

import "time"

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
	// MediaCommand reports one command sent to the media path ("dial",
	// "hangup", … as media.Media names them, snake_case), how long it
	// took and how it ended.
	MediaCommand(cmd string, d time.Duration, err error)
	// LoopDelay reports how long one item waited on its loop before it
	// ran; CallRefused, a new call turned away (ReasonOverload).
	LoopDelay(d time.Duration)
	CallRefused(reason string)
	// FactsHeld reports how many media facts wait for the store to
	// answer again (held.go); FactDropped, one dropped past the bound.
	FactsHeld(n int)
	FactDropped()
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
func (nopObserver) FactsHeld(int)  {}
func (nopObserver) FactDropped()   {}

func (nopObserver) LoopDelay(time.Duration) {}
func (nopObserver) CallRefused(string)      {}

func (nopObserver) MediaCommand(string, time.Duration, error) {}
