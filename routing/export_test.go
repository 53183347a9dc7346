package routing

// SameLoop reports whether two calls are handled on the same ordered loop
// (tests that need one call's loop busy while another's is free).
func SameLoop(e *Engine, a, b string) bool { return e.shardOf(a) == e.shardOf(b) }
