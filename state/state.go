// Package state declares the persistence contract the core (presence,
// routing, the event stream) runs on. The core owns these interfaces; the
// store package implements them in memory and on Redis, so no core package
// ever imports a database client.
//
// The model is deliberately small: versioned JSON records grouped by kind,
// time-ordered series (status history), counter hashes (today's counters) and
// one ordered event log. Everything a single state change touches goes into
// one Tx, which a Store commits atomically: no record change without its
// event, no event without its change.
package state

import (
	"context"
	"errors"
	"time"
)

// Sentinel errors callers branch on.
var (
	// ErrNotFound: no record with that kind and id.
	ErrNotFound = errors.New("state: not found")
	// ErrConflict: a Put or Delete's version precondition failed; nothing
	// in the Tx was applied. Re-read and retry.
	ErrConflict = errors.New("state: version conflict")
	// ErrTrimmed: the log position asked for is older than what the log
	// still retains, so the reader has missed events and must reload.
	ErrTrimmed = errors.New("state: log position trimmed")
	// ErrBadPosition: the log position is not one this log could have issued.
	ErrBadPosition = errors.New("state: malformed log position")
	// ErrUnavailable: the store cannot be reached right now (connection
	// refused or lost, timeout, a server loading or failing over); the
	// same call may succeed later. Nothing is known to have been applied.
	ErrUnavailable = errors.New("state: store unavailable")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("state: store closed")
	// ErrFenced: the Tx carried a Fence and its lease has been granted to
	// a newer owner since; nothing in the Tx was applied. The writer is a
	// stale owner and must stop acting (README.md, Running several replicas).
	ErrFenced = errors.New("state: fenced by a newer lease owner")
)

// Kind groups records of one type. Kinds are fixed strings so both stores
// can use them in key names.
type Kind string

// The record kinds the product stores.
const (
	KindAgent   Kind = "agent"
	KindGroup   Kind = "group"
	KindQueue   Kind = "queue"
	KindStatus  Kind = "status" // admin-defined custom call statuses
	KindToken   Kind = "token"  // id = hex SHA-256 of the bearer token
	KindCall    Kind = "call"
	KindMonitor Kind = "monitor"
	KindWebhook Kind = "webhook"
	// KindSettings holds the account's floor settings (one record).
	KindSettings Kind = "settings"
	KindMeta     Kind = "meta" // small bookkeeping records (routing cursors, leases)
	// KindSIPBinding holds the built-in registrar's contacts of one SIP
	// user (id = the user), so a restart keeps every device reachable.
	KindSIPBinding Kind = "sip_binding"
	// KindSIPDialog holds one answered dialog of the built-in SIP path
	// (id = the leg), so the replica that takes the media lease over
	// keeps the call (README.md, What survives a failover).
	KindSIPDialog Kind = "sip_dialog"
)

// Version preconditions for Put and Delete.
const (
	// AnyVersion skips the version check.
	AnyVersion int64 = -1
	// MustNotExist makes a Put fail with ErrConflict if the record exists.
	MustNotExist int64 = 0
)

// Record is one stored JSON document. Version starts at 1 on create and
// grows by one on every Put.
type Record struct {
	Kind    Kind
	ID      string
	Version int64
	Data    []byte
}

// Put creates or replaces a record. IfVersion is AnyVersion, MustNotExist,
// or the exact version the caller read.
type Put struct {
	Kind      Kind
	ID        string
	Data      []byte
	IfVersion int64
}

// Delete removes a record; deleting a missing record with AnyVersion is not
// an error.
type Delete struct {
	Kind      Kind
	ID        string
	IfVersion int64
}

// Entry is one item of a time-ordered series. Score orders the series
// (callers use Unix milliseconds); equal scores keep insertion order.
type Entry struct {
	Score int64
	Data  []byte
}

// Append adds entries to a named series, e.g. "history:a1".
type Append struct {
	Series  string
	Entries []Entry
}

// Incr adds Delta (may be negative) to one field of a named counter hash,
// e.g. Counter "stats:2026-11-21", Field "missed|queue=sales".
type Incr struct {
	Counter string
	Field   string
	Delta   int64
}

// Scope says who may see an event, so the stream can filter without
// decoding Data. Empty fields mean "not scoped by this".
type Scope struct {
	Agent  string   `json:"agent,omitempty"`
	Queue  string   `json:"queue,omitempty"`
	Groups []string `json:"groups,omitempty"`
}

// NewEvent is an event to append; the log assigns its ID.
type NewEvent struct {
	Type  string // agent, call, call_ended, queue, stats, monitor, …
	Scope Scope
	Data  []byte // the full JSON object, as the matching GET returns it
}

// Event is one entry of the ordered log.
type Event struct {
	ID    string // log position; opaque, ordered within one log
	Type  string
	Scope Scope
	Data  []byte
	At    time.Time // when the log accepted it (store clock)
}

// Fence makes a Tx conditional on a lease (package lease): the store
// refuses the whole Tx with ErrFenced once Lease has been granted with a
// token other than Token, i.e. once a newer owner exists. A lease that
// merely expired, with nobody taking it over, does not fence its last owner.
type Fence struct {
	Lease string
	Token int64
}

// Schedule sets when Member of a due index next needs attention (At, Unix
// milliseconds), replacing its previous due time, or removes it (Remove).
// Sweeps read what is due with Store.Due instead of scanning every record.
type Schedule struct {
	Index  string
	Member string
	At     int64
	Remove bool
}

// Due is one member of a due index and its due time (Unix milliseconds).
type Due struct {
	Member string
	At     int64
}

// Tx is everything one state change writes. A Store applies all of it or
// none of it; version checks are evaluated before anything is written.
type Tx struct {
	Puts      []Put
	Deletes   []Delete
	Appends   []Append
	Incrs     []Incr
	Schedules []Schedule
	Events    []NewEvent
	// Fence, when Fence.Lease is set, is checked with the version
	// preconditions: a stale lease owner's Tx fails with ErrFenced.
	Fence Fence
}

// Empty reports whether the Tx would write nothing.
func (tx *Tx) Empty() bool {
	return len(tx.Puts) == 0 && len(tx.Deletes) == 0 && len(tx.Appends) == 0 &&
		len(tx.Incrs) == 0 && len(tx.Schedules) == 0 && len(tx.Events) == 0
}

// Store is the transactional record store.
type Store interface {
	// Get returns one record or ErrNotFound.
	Get(ctx context.Context, kind Kind, id string) (Record, error)
	// List returns every record of a kind, ordered by id.
	List(ctx context.Context, kind Kind) ([]Record, error)
	// Commit applies tx atomically and returns the appended events with
	// their assigned IDs, in the order given. ErrConflict leaves the store
	// untouched.
	Commit(ctx context.Context, tx Tx) ([]Event, error)
	// Series returns entries of a series with minScore <= Score <= maxScore,
	// oldest first, at most limit (limit <= 0: all).
	Series(ctx context.Context, series string, minScore, maxScore int64, limit int) ([]Entry, error)
	// Counters returns every field of a counter hash (empty map if none).
	Counters(ctx context.Context, counter string) (map[string]int64, error)
	// Due returns the members of a due index with At <= until, earliest
	// first (equal times by member), at most limit (limit <= 0: all).
	Due(ctx context.Context, index string, until int64, limit int) ([]Due, error)
	// Ping reports whether the backing store is reachable (readiness).
	Ping(ctx context.Context) error
}

// Log is the ordered, durable event log that every replica shares.
type Log interface {
	// ReadAfter returns up to limit events strictly after position after
	// ("" = from the oldest retained), oldest first. If after is older
	// than the retained window it returns ErrTrimmed. When there is
	// nothing newer it waits up to wait for the next event (0: return at
	// once) and returns an empty slice on timeout; it returns early with
	// ctx's error when ctx ends.
	ReadAfter(ctx context.Context, after string, limit int, wait time.Duration) ([]Event, error)
	// Last returns the position of the newest event ("" if the log is
	// empty), so a fresh reader can start from "now".
	Last(ctx context.Context) (string, error)
}

// StoreLog is what a backend provides: both halves plus Close.
type StoreLog interface {
	Store
	Log
	Close() error
}
