// Package stream fans the shared event log (state.Log) out to live
// subscribers: the SSE endpoint, dashboards, tests.
//
// One Hub per process runs ONE reader that tails the log and hands each
// batch to every in-process Subscriber, so a thousand open streams cost one
// blocking log read (one XREAD on Redis), not a thousand. Each subscriber
// has a bounded queue; a subscriber that falls too far behind is cut off
// with ErrSlowConsumer instead of slowing everyone, and resumes from its
// last event id on its next connect.
//
// A subscriber that starts from a position (SSE Last-Event-ID) first
// catches up — from the hub's window of recent events when the position is
// in it, otherwise from the log — and then continues live without a gap or
// a duplicate at the seam. A position the log no longer retains yields a
// Reset item: the client must reload its state.
//
// Visibility follows the REST API: admins see every event, a supervisor the
// groups they supervise, an agent their own groups and themself (Visible).
//
// StatsPublisher coalesces stats: when call/queue/agent events pass by it
// recomputes the stats and appends at most one batch of "stats" events per
// interval.
package stream
