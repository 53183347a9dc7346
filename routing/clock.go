package routing

import "time"

// Clock is the engine's time source. Tests use a fake (routingtest.Clock)
// whose timers fire when the test advances it.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine (or the advancing goroutine,
	// for a fake) once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending AfterFunc.
type Timer interface {
	// Stop prevents the timer from firing; it reports whether it did.
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                            { return time.Now() }
func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
