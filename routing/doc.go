// Package routing is the brain of the floor: queues, live calls,
// distribution strategies, RONA, wrap-up, outbound click-to-call,
// supervisor actions (listen, whisper, barge, take over, transfer, hang
// up) and today's counters.
//
// It drives a media path through the Media interface (media.go) and reacts
// to the Facts the media path reports. It imports no adapter, HTTP or
// Redis package: the store (state.Store) is the truth for queues, calls,
// monitors and counters, and agents change through the presence package's
// pure state machine so an agent change, its history rows and its event
// commit in the same state.Tx as the call change that caused it.
//
// Concurrency: every change to a call runs on one ordered loop per shard
// of calls (hash of the call id). A dispatcher loop matches waiting calls
// to routable agents and hands each offer to the call's shard. Agents are
// shared between shards; their records are compare-and-set, so two shards
// can never reserve the same agent (the loser re-reads and skips).
package routing
