package presence

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/callfloor/callfloor/state"
)

// Service is the agent side of the floor: statuses, presence, history,
// groups, the status catalog and tokens. It is safe for concurrent use and
// for several replicas sharing one store: every write is a compare-and-set
// on the record version, retried on conflict.
type Service struct {
	store        state.Store
	now          func() time.Time
	loc          *time.Location
	log          *slog.Logger
	heartbeatTTL time.Duration
	defaultIdle  string
	region       string // default region of national phone numbers ("" = none)
	logoutGuard  func(ctx context.Context, agentID string) error
	decoded      listCache
	recent       recentAgents
}

// Option configures a Service.
type Option func(*Service)

// WithClock replaces time.Now (tests use a fake clock).
func WithClock(now func() time.Time) Option { return func(s *Service) { s.now = now } }

// WithLocation sets the account's time zone used for rendered timestamps.
func WithLocation(loc *time.Location) Option { return func(s *Service) { s.loc = loc } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Service) { s.log = l } }

// WithHeartbeatTTL sets how long one heartbeat keeps an agent online.
func WithHeartbeatTTL(d time.Duration) Option { return func(s *Service) { s.heartbeatTTL = d } }

// WithDefaultRegion sets the region ("VN") national phone numbers
// ("0901000011") are read in; without one only international forms are
// accepted.
func WithDefaultRegion(region string) Option { return func(s *Service) { s.region = region } }

// WithDefaultIdleStatus sets the call status new logins start in.
func WithDefaultIdleStatus(id string) Option { return func(s *Service) { s.defaultIdle = id } }

// WithLogoutGuard installs a check run before logout; routing uses it to
// refuse logging out a supervisor with a running monitor. Return an error
// wrapping ErrConflict to refuse.
func WithLogoutGuard(g func(ctx context.Context, agentID string) error) Option {
	return func(s *Service) { s.logoutGuard = g }
}

// NewService returns a Service over store.
func NewService(store state.Store, opts ...Option) *Service {
	s := &Service{
		store: store, now: time.Now, loc: time.UTC, log: slog.Default(),
		heartbeatTTL: 60 * time.Second, defaultIdle: StatusUnavailable,
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// Now is the service clock.
func (s *Service) Now() time.Time { return s.now() }

// Location is the account's time zone.
func (s *Service) Location() *time.Location { return s.loc }

// Store is the underlying store (routing commits through it).
func (s *Service) Store() state.Store { return s.store }

// Agent returns one agent, without access checks (for trusted callers).
func (s *Service) Agent(ctx context.Context, id string) (Agent, error) {
	r, err := s.store.Get(ctx, state.KindAgent, id)
	if errors.Is(err, state.ErrNotFound) {
		return Agent{}, fmt.Errorf("agent %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Agent{}, fmt.Errorf("get agent %s: %w", id, err)
	}
	return s.decoded.agent(r)
}

// Agents returns every agent, ordered by id, without access checks.
func (s *Service) Agents(ctx context.Context) ([]Agent, error) {
	if feed, ok := s.store.(changeFeed); ok {
		return s.decoded.fromFeed(ctx, feed)
	}
	recs, err := s.store.List(ctx, state.KindAgent)
	if err != nil {
		return nil, fmt.Errorf("list agents: %w", err)
	}
	return s.decoded.decodeAll(recs)
}

// Get returns an agent the actor may see; agents outside the actor's
// groups are reported as 403, not 404, so ids are not probed silently.
func (s *Service) Get(ctx context.Context, actor Actor, id string) (Agent, error) {
	a, err := s.Agent(ctx, id)
	if err != nil {
		return Agent{}, err
	}
	if !actor.CanSee(&a) {
		return Agent{}, fmt.Errorf("agent %s is outside your groups: %w", id, ErrForbidden)
	}
	return a, nil
}

// Filter narrows List. Empty fields do not filter.
type Filter struct {
	Group, Online, CallStatus, ChatStatus, SystemStatus string
}

// List returns the agents the actor may see that match f.
func (s *Service) List(ctx context.Context, actor Actor, f Filter) ([]Agent, error) {
	match, err := f.matcher(actor)
	if err != nil {
		return nil, err
	}
	all, err := s.Agents(ctx)
	if err != nil {
		return nil, err
	}
	out := all[:0]
	for _, a := range all {
		if match(&a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// ListPage is List one page at a time, ordered by id: the matching agents
// after cursor (the last id of the previous page), at most limit (0 or
// more than MaxPage means MaxPage), and the cursor of the following page
// ("" at the end). With a change feed it filters the kept agents in place
// and copies only the page, so a page of a 10,000-agent floor no longer
// copies the floor (docs/performance.md, Agents list).
func (s *Service) ListPage(ctx context.Context, actor Actor, f Filter, cursor string, limit int) ([]Agent, string, error) {
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	match, err := f.matcher(actor)
	if err != nil {
		return nil, "", err
	}
	if feed, ok := s.store.(changeFeed); ok {
		return s.decoded.page(ctx, feed, match, cursor, limit)
	}
	all, err := s.List(ctx, actor, f)
	if err != nil {
		return nil, "", err
	}
	i, _ := slices.BinarySearchFunc(all, cursor, func(a Agent, c string) int { return strings.Compare(a.ID, c) })
	for i < len(all) && all[i].ID <= cursor {
		i++
	}
	all = all[i:]
	if len(all) <= limit {
		return all, "", nil
	}
	return all[:limit], all[limit-1].ID, nil
}

// matcher checks f and returns whether an agent is one the actor may see
// that matches it.
func (f Filter) matcher(actor Actor) (func(a *Agent) bool, error) {
	var online *bool
	if f.Online != "" {
		b, err := parseBool("online", f.Online)
		if err != nil {
			return nil, err
		}
		online = &b
	}
	if f.SystemStatus != "" && !SystemStatus(f.SystemStatus).Valid() {
		return nil, invalid("system_status", "must be one of available, ringing, talking, after_call_work, rona")
	}
	return func(a *Agent) bool {
		switch {
		case !actor.CanSee(a):
		case f.Group != "" && !a.InGroup(f.Group):
		case online != nil && a.Online != *online:
		case f.CallStatus != "" && a.CallStatus != f.CallStatus:
		case f.ChatStatus != "" && a.ChatStatus != f.ChatStatus:
		case f.SystemStatus != "" && string(a.SystemStatus) != f.SystemStatus:
		default:
			return true
		}
		return false
	}, nil
}

// maxRetries bounds optimistic-concurrency retries; a conflict this many
// times in a row means something is hammering one agent.
const maxRetries = 16

// Mutate reads the agent, lets fn change it and return history rows, and
// commits the change with its history and event, retrying on a version
// conflict. fn returning an error aborts without writing. A change that
// produces no rows and no record difference is not written.
func (s *Service) Mutate(ctx context.Context, id string, fn func(a *Agent, now time.Time) ([]HistoryRow, error)) (Agent, error) {
	return s.mutate(ctx, id, fn, nil)
}

// mutate is Mutate with a guard: records the change depends on, re-read
// on every attempt and committed in the same Tx (see statusGuard).
func (s *Service) mutate(ctx context.Context, id string, fn func(a *Agent, now time.Time) ([]HistoryRow, error),
	guard func(ctx context.Context) ([]state.Put, error)) (Agent, error) {
	for attempt := range maxRetries {
		if attempt > 0 {
			if err := state.RetryWait(ctx, attempt); err != nil {
				return Agent{}, err
			}
		}
		a, err := s.mutateOnce(ctx, id, fn, guard, attempt == 0)
		if errors.Is(err, errStale) {
			// The kept copy was stale or decided nothing: the stored
			// record decides, at once (no other writer is known to race).
			a, err = s.mutateOnce(ctx, id, fn, guard, false)
		}
		if errors.Is(err, errRetry) {
			continue
		}
		return a, err
	}
	return Agent{}, fmt.Errorf("agent %s: too many concurrent writers: %w", id, ErrConflict)
}

// errStale and errRetry are mutateOnce's verdicts: decide again on the
// stored record, or retry after a wait (another writer won the race).
var (
	errStale = errors.New("kept agent copy is stale")
	errRetry = errors.New("agent changed concurrently")
)

// mutateOnce is one attempt of mutate. With kept it starts from the copy
// this service last read or wrote (recentAgents) instead of reading the
// store: the commit's compare-and-set on the version still refuses it if
// anyone (routing, another replica) wrote the agent since, and then, as
// when the copy refuses or changes nothing, the caller asks again with
// kept false (errStale). That spares one round trip per change, a
// quarter of an ingest's CPU on Redis (docs/performance.md, Ingest).
func (s *Service) mutateOnce(ctx context.Context, id string, fn func(a *Agent, now time.Time) ([]HistoryRow, error),
	guard func(ctx context.Context) ([]state.Put, error), kept bool) (Agent, error) {
	a, before, ok := s.recent.get(id)
	if !kept || !ok {
		kept = false
		r, err := s.store.Get(ctx, state.KindAgent, id)
		if errors.Is(err, state.ErrNotFound) {
			s.recent.forget(id)
			return Agent{}, fmt.Errorf("agent %q: %w", id, ErrNotFound)
		}
		if err != nil {
			return Agent{}, fmt.Errorf("get agent %s: %w", id, err)
		}
		if a, err = DecodeAgent(r); err != nil {
			return Agent{}, err
		}
		// Encoded here, not r.Data: what counts as "no change" is the
		// agent as this code encodes it, whatever wrote the record.
		if before, err = json.Marshal(a); err != nil {
			return Agent{}, fmt.Errorf("encode agent %s: %w", a.ID, err)
		}
		s.recent.put(id, a, before)
	}
	now := s.now()
	rows, err := fn(&a, now)
	if err != nil {
		if kept {
			return Agent{}, errStale
		}
		return Agent{}, err
	}
	after, err := json.Marshal(a)
	if err != nil {
		return Agent{}, fmt.Errorf("encode agent %s: %w", a.ID, err)
	}
	if len(rows) == 0 && string(before) == string(after) {
		if kept {
			return Agent{}, errStale
		}
		return a, nil
	}
	var tx state.Tx
	if err := stage(&tx, &a, after, rows, now, s.loc); err != nil {
		return Agent{}, err
	}
	if guard != nil {
		puts, err := guard(ctx)
		if err != nil {
			return Agent{}, err
		}
		tx.Puts = append(tx.Puts, puts...)
	}
	_, err = s.store.Commit(ctx, tx)
	switch {
	case errors.Is(err, state.ErrConflict) && kept:
		s.recent.forget(id)
		return Agent{}, errStale
	case errors.Is(err, state.ErrConflict):
		s.recent.forget(id)
		return Agent{}, errRetry
	case err != nil:
		s.recent.forget(id) // applied or not: unknown
		return Agent{}, fmt.Errorf("commit agent %s: %w", id, err)
	}
	a.Version++
	s.recent.put(id, a, after)
	return a, nil
}

// SetStatus changes the manual call and/or chat status. The agent
// themself, an admin, or a supervisor of one of the agent's groups may do
// it. Unknown statuses are 422 with the field named.
func (s *Service) SetStatus(ctx context.Context, actor Actor, id string, call, chat *string) (Agent, error) {
	if call == nil && chat == nil {
		return Agent{}, invalid("call_status", "give call_status, chat_status or both")
	}
	if call != nil {
		if err := s.checkCallStatus(ctx, *call); err != nil {
			return Agent{}, err
		}
	}
	if chat != nil && *chat != ChatAvailable && *chat != ChatUnavailable {
		return Agent{}, unprocessable("chat_status", fmt.Sprintf("unknown chat status %q (available or unavailable)", *chat))
	}
	var guard func(ctx context.Context) ([]state.Put, error)
	if call != nil {
		guard = s.statusGuard(*call)
	}
	return s.mutate(ctx, id, func(a *Agent, now time.Time) ([]HistoryRow, error) {
		if !actor.CanManage(a) {
			return nil, fmt.Errorf("agent %s is outside your groups: %w", id, ErrForbidden)
		}
		var rows []HistoryRow
		if call != nil {
			rows = append(rows, ApplyCallStatus(a, *call, now, actor.ID)...)
		}
		if chat != nil {
			rows = append(rows, ApplyChatStatus(a, *chat, now, actor.ID)...)
		}
		return rows, nil
	}, guard)
}

// Heartbeat records that the agent's app is alive; it logs the agent in
// (default idle status) if they were logged out.
func (s *Service) Heartbeat(ctx context.Context, actor Actor, id string) (Agent, error) {
	return s.Mutate(ctx, id, func(a *Agent, now time.Time) ([]HistoryRow, error) {
		if actor.ID != a.ID && !actor.CanManage(a) {
			return nil, fmt.Errorf("heartbeat for %s: %w", id, ErrForbidden)
		}
		var rows []HistoryRow
		if !a.LoggedIn {
			a.LoggedIn = true
			rows = append(rows, ApplyCallStatus(a, s.defaultIdle, now, actor.ID)...)
		} else if a.Online && a.HeartbeatUntil.Sub(now) > s.heartbeatTTL/2 {
			// Still well inside the TTL: extending it would write a record
			// and an event that nobody can see. Skip until half has passed.
			return nil, nil
		}
		a.HeartbeatUntil = now.Add(s.heartbeatTTL)
		return append(rows, applyOnline(a, now, actor.ID)...), nil
	})
}

// KeepAlive is an open event stream's presence: it extends a logged-in
// agent's heartbeat like Heartbeat, but never logs anyone in and never
// touches a status — a stream opened after a logout leaves the agent
// logged out, in the status the logout left.
func (s *Service) KeepAlive(ctx context.Context, actor Actor, id string) (Agent, error) {
	return s.Mutate(ctx, id, func(a *Agent, now time.Time) ([]HistoryRow, error) {
		if actor.ID != a.ID && !actor.CanManage(a) {
			return nil, fmt.Errorf("keep-alive for %s: %w", id, ErrForbidden)
		}
		if !a.LoggedIn || a.Online && a.HeartbeatUntil.Sub(now) > s.heartbeatTTL/2 {
			return nil, nil
		}
		a.HeartbeatUntil = now.Add(s.heartbeatTTL)
		return applyOnline(a, now, actor.ID), nil
	})
}

// Logout logs the agent out: offline for the app, default idle status.
// Refused with ErrConflict while the agent has a call, or when the logout
// guard (a running monitor) refuses.
func (s *Service) Logout(ctx context.Context, actor Actor, id string) (Agent, error) {
	if s.logoutGuard != nil {
		if err := s.logoutGuard(ctx, id); err != nil {
			return Agent{}, err
		}
	}
	return s.Mutate(ctx, id, func(a *Agent, now time.Time) ([]HistoryRow, error) {
		if !actor.CanManage(a) {
			return nil, fmt.Errorf("agent %s is outside your groups: %w", id, ErrForbidden)
		}
		if a.HasCall() {
			return nil, fmt.Errorf("agent %s has a call in progress: %w", id, ErrConflict)
		}
		a.LoggedIn = false
		a.HeartbeatUntil = time.Time{}
		rows := ApplyCallStatus(a, s.defaultIdle, now, actor.ID)
		return append(rows, applyOnline(a, now, actor.ID)...), nil
	})
}

// DeviceState records that one of the agent's devices (a SIP user or an
// endpoint, as the media path names it) registered until a time, or went
// away. The agent is online through devices while any of them is
// registered: the IP phone unregistering leaves an app that is still
// registered counting.
func (s *Service) DeviceState(ctx context.Context, id, device string, registered bool, until time.Time) (Agent, error) {
	return s.Mutate(ctx, id, func(a *Agent, now time.Time) ([]HistoryRow, error) {
		if registered && until.IsZero() {
			until = now.Add(24 * time.Hour) // media server did not say; it reports unregistration
		}
		setDevice(a, device, registered, until, now)
		return applyOnline(a, now, BySystem), nil
	})
}

// setDevice updates one device's registration and DeviceUntil, the latest
// of the registrations still running.
func setDevice(a *Agent, device string, registered bool, until, now time.Time) {
	if registered {
		a.Devices = a.Devices.set(device, until)
	}
	a.Devices = slices.DeleteFunc(a.Devices, func(l DeviceLease) bool {
		return !registered && l.Device == device || !now.Before(l.Until)
	})
	a.DeviceUntil = time.Time{}
	for _, l := range a.Devices {
		if l.Until.After(a.DeviceUntil) {
			a.DeviceUntil = l.Until
		}
	}
	if len(a.Devices) == 0 {
		a.Devices = nil
	}
}

// EndWrapUp ends the agent's after_call_work early (the agent is ready).
func (s *Service) EndWrapUp(ctx context.Context, actor Actor, id string) (Agent, error) {
	return s.Mutate(ctx, id, func(a *Agent, now time.Time) ([]HistoryRow, error) {
		if !actor.CanManage(a) {
			return nil, fmt.Errorf("agent %s is outside your groups: %w", id, ErrForbidden)
		}
		if a.SystemStatus != SysAfterCallWork {
			return nil, fmt.Errorf("agent %s is %s, not in after_call_work: %w", id, a.SystemStatus, ErrConflict)
		}
		row, err := ApplySystemStatus(a, SysAvailable, nil, now)
		if err != nil {
			return nil, err
		}
		return []HistoryRow{row}, nil
	})
}

// GoIdle takes the agent out of RONA into the default idle status ("go to
// idle": they missed a call and step away rather than take the next one).
// The agent themself, an admin or a supervisor of their group may do it;
// an agent not in RONA is a conflict (any status can be chosen at any time
// through SetStatus).
func (s *Service) GoIdle(ctx context.Context, actor Actor, id string) (Agent, error) {
	return s.Mutate(ctx, id, func(a *Agent, now time.Time) ([]HistoryRow, error) {
		if !actor.CanManage(a) {
			return nil, fmt.Errorf("agent %s is outside your groups: %w", id, ErrForbidden)
		}
		if a.SystemStatus != SysRONA {
			return nil, fmt.Errorf("agent %s is %s, not in rona; choose a status with PUT /v1/agents/%s/status: %w", id, a.SystemStatus, id, ErrConflict)
		}
		return ApplyCallStatus(a, s.defaultIdle, now, actor.ID), nil
	})
}

// History returns the agent's status changes with from <= at <= to,
// oldest first. Zero from/to mean unbounded.
func (s *Service) History(ctx context.Context, actor Actor, id string, from, to time.Time) ([]HistoryRow, error) {
	rows, _, err := s.HistoryPage(ctx, actor, id, from, to, 0, "")
	return rows, err
}

// MaxPage is the largest page a list or history request returns, and
// the default when it asks for none.
const MaxPage = 1000

// HistoryPage is History one page at a time: at most limit rows (0 or
// more than MaxPage means MaxPage), starting after cursor ("" for the
// first page). next is the cursor of the following page, "" at the end.
// A cursor is the score (ms) of the last row returned and how many rows
// with that score were returned, so rows sharing a millisecond are
// neither skipped nor repeated.
func (s *Service) HistoryPage(ctx context.Context, actor Actor, id string, from, to time.Time, limit int, cursor string) (rows []HistoryRow, next string, err error) {
	if _, err := s.Get(ctx, actor, id); err != nil {
		return nil, "", err
	}
	lo, hi := int64(0), int64(1)<<62
	if !from.IsZero() {
		lo = from.UnixMilli()
	}
	if !to.IsZero() {
		hi = to.UnixMilli()
	}
	if lo > hi {
		return nil, "", invalid("from", "must not be after to")
	}
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	skip := 0
	if cursor != "" {
		score, n, ok := parseCursor(cursor)
		if !ok || score < lo {
			return nil, "", invalid("cursor", "is not a cursor this history returned")
		}
		lo, skip = score, n
	}
	entries, err := s.store.Series(ctx, HistorySeries(id), lo, hi, skip+limit+1)
	if err != nil {
		return nil, "", fmt.Errorf("history %s: %w", id, err)
	}
	// Drop the rows of the cursor's millisecond already returned.
	for skip > 0 && len(entries) > 0 && entries[0].Score == lo {
		entries, skip = entries[1:], skip-1
	}
	more := len(entries) > limit
	if more {
		entries = entries[:limit]
	}
	rows = make([]HistoryRow, 0, len(entries))
	for _, e := range entries {
		var r HistoryRow
		if err := json.Unmarshal(e.Data, &r); err != nil {
			return nil, "", fmt.Errorf("decode history %s: %w", id, err)
		}
		r.At = r.At.In(s.loc)
		rows = append(rows, r)
	}
	if more {
		last := entries[len(entries)-1].Score
		n := 0
		for i := len(entries) - 1; i >= 0 && entries[i].Score == last; i-- {
			n++
		}
		if cursor != "" && last == lo {
			n += countPrefix(cursor)
		}
		next = fmt.Sprintf("%d.%d", last, n)
	}
	return rows, next, nil
}

// parseCursor reads "<ms>.<n>".
func parseCursor(c string) (score int64, n int, ok bool) {
	a, b, found := strings.Cut(c, ".")
	if !found {
		return 0, 0, false
	}
	score, err1 := strconv.ParseInt(a, 10, 64)
	n64, err2 := strconv.ParseInt(b, 10, 32)
	if err1 != nil || err2 != nil || score < 0 || n64 < 0 {
		return 0, 0, false
	}
	return score, int(n64), true
}

// countPrefix is the n of a valid cursor (rows of its millisecond already
// returned), for a page that ends in that same millisecond.
func countPrefix(c string) int {
	_, n, _ := parseCursor(c)
	return n
}

// sortedUnique returns xs sorted without duplicates.
func sortedUnique(xs []string) []string {
	out := slices.Clone(xs)
	slices.Sort(out)
	return slices.Compact(out)
}
