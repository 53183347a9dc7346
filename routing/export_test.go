package routing

import "time"

// SameLoop reports whether two calls are handled on the same ordered loop
// (tests that need one call's loop busy while another's is free).
func SameLoop(e *Engine, a, b string) bool { return e.shardOf(a) == e.shardOf(b) }

// Lateness is how long the oldest work queued on the engine's loops has
// waited (overload.go).
func Lateness(e *Engine) time.Duration { return e.lateness() }
