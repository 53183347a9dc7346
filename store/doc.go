// Package store implements the persistence contract of package state
// (state.StoreLog) twice: in memory (NewMemory, the default for a single
// process) and on Redis (NewRedis: standalone, Sentinel or Cluster through a
// go-redis UniversalClient). Open picks one from a URL.
//
// Both implementations pass the same contract suite (state/statetest), so
// the core cannot tell them apart except by durability: the memory store
// forgets everything when the process ends, the Redis store does not.
//
// The event log is a bounded ring buffer in memory and a Redis Stream on
// Redis. In both, positions are dense: the n-th event ever appended has
// ordinal n (memory position "n", Redis stream ID "n-0"), which is what makes
// "the reader missed trimmed events" exact to detect.
package store
