// Package reports projects the event log into SQL for call history and
// reports (README.md, Reports): calls, ring attempts, agent status
// intervals and monitors, on SQLite (the embedded default, a file under
// the data directory) or PostgreSQL.
//
// One Projector reads the store's log in order; each SQL transaction
// writes a batch of events' rows together with the log position after
// them, moved by compare-and-set, so every event is applied exactly once
// across crashes and restarts, and a replay into an empty database
// rebuilds everything the log still holds. A position the log no longer
// holds (trimmed) is a gap: logged at ERROR, counted (Observer, the
// database's cursor) and listed (GET /v1/reports/status), never skipped
// silently. With several replicas one projector runs at a time, holding a
// lease (package lease); the cursor's compare-and-set keeps rows exact even if two overlap.
// Apply skips the statements whose outcome it knows from its own earlier
// commits (memo.go), trusting that only along one unbroken chain of them.
//
// Migrations are versioned and run when a DB is opened. DB's queries
// implement the reports (Calls, Attempts, Monitors, Agents, Queues) and
// Recount, which recomputes today's counters from the rows.
package reports
