package routing

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callfloor/callfloor/internal/every"
	"github.com/callfloor/callfloor/internal/pause"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// ErrStopped: the engine is not running (Run returned or never started).
var ErrStopped = errors.New("routing engine stopped")

// Engine routes calls. Create it with NewEngine, start it with Run.
type Engine struct {
	st           state.Store
	agents       *presence.Service
	mediaMu      sync.RWMutex
	media        media.Media
	clock        Clock
	log          *slog.Logger
	obs          Observer
	defaultQueue string
	tick         time.Duration
	skipFor      time.Duration
	nShards      int

	shards   []*loop
	dispatch *loop
	// refusals hangs up callers turned away while the other loops run
	// late (overload.go); maxLoopDelay is how late that is; refusedLog
	// lets a refusal be logged every 10 s.
	refusals     *loop
	maxLoopDelay time.Duration
	refusedLog   every.Gate
	kicked       atomic.Bool
	// noneWaiting: the last dispatcher pass found no waiting call, and no
	// pass has started since (one that starts clears it before reading).
	noneWaiting atomic.Bool
	intake      *intake
	held        *heldFacts
	timers      *timerSet
	seq         atomic.Uint64
	watchLog    state.Log
	watchLinger time.Duration
	// passSpacing is the least time between the starts of two passes;
	// lastPass (dispatch loop only) is when the last one started.
	passSpacing  time.Duration
	lastPass     time.Time
	dialing      atomic.Int64 // Dials (and Monitors) in flight
	mediaTimeout time.Duration
	// mediaDownUntil (engine clock, Unix ns): a Dial just failed with
	// ErrMediaUnavailable, so the dispatcher holds offers until then.
	mediaDownUntil atomic.Int64
	// legAudit is how often the legs of live calls are checked (audit.go);
	// suspects are the legs the last audit found gone (dispatcher only).
	legAudit time.Duration
	suspects map[media.LegID]bool
	// queueSeen is the last published view of each queue (dispatcher only).
	queueSeen map[string]string
	// announcer hears waiting callers' positions; waitSeen is what it was
	// last told per call (dispatcher only).
	announcer WaitAnnouncer
	waitSeen  map[string]WaitPosition
	// candBuf is the dispatcher's reused buffer of one call's candidates.
	candBuf []Candidate
	// pass holds the dispatcher's decoded agents and calls between passes.
	pass   *passState
	queues queueCache
	// qgCache: each queue's groups as of the last dispatcher pass.
	qgMu    sync.Mutex
	qgCache map[string][]string
	rndMu   sync.Mutex
	rnd     *rand.Rand

	// pending counts queued and running work; Flush waits for zero.
	pmu     sync.Mutex
	pending int
	idle    chan struct{}

	running atomic.Bool
	// cur is the current (or next) run: Run may be called again once it
	// returned, one run per term of the media server's lease (README.md,
	// Running several replicas).
	cur atomic.Pointer[engineRun]
}

// engineRun is one Run of the engine.
type engineRun struct {
	started chan struct{}
	stopped chan struct{}
	once    sync.Once
	// fence goes on every commit that matters for calls during the run.
	fence state.Fence
	// cancel ends the run early (a fenced commit: a newer owner exists).
	cancel context.CancelCauseFunc
}

func newEngineRun() *engineRun {
	return &engineRun{started: make(chan struct{}), stopped: make(chan struct{})}
}

// Option configures an Engine.
type Option func(*Engine)

// WithIDSequence makes call and monitor ids count on from start
// ("c-<ms>-<start+1>"). By default the count starts at random, so that
// replicas creating calls in the same millisecond never collide; a
// replay that must name ids in advance starts from a known value.
func WithIDSequence(start uint64) Option { return func(e *Engine) { e.seq.Store(start) } }

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(e *Engine) { e.log = l } }

// WithClock replaces the real clock (tests use routingtest.Clock).
func WithClock(c Clock) Option { return func(e *Engine) { e.clock = c } }

// WithDefaultQueue names the queue that takes calls to unknown hotlines.
func WithDefaultQueue(id string) Option { return func(e *Engine) { e.defaultQueue = id } }

// WithShards sets how many ordered call loops run (default 8).
func WithShards(n int) Option {
	return func(e *Engine) {
		if n > 0 {
			e.nShards = n
		}
	}
}

// DefaultPassSpacing is the least time between two distribution passes.
const DefaultPassSpacing = 10 * time.Millisecond

// WithPassSpacing sets the least time between the starts of two
// distribution passes (default DefaultPassSpacing; 0: none). Every call
// arrival, freed agent and ended offer kicks a pass, and each pass reads
// the floor, the calls and today's counters and republishes the queue
// views: on a busy floor the kicks of those 10 ms share one pass, while
// a kick after a quiet spell still runs at once (docs/performance.md,
// Wake-ups).
func WithPassSpacing(d time.Duration) Option {
	return func(e *Engine) { e.passSpacing = max(d, 0) }
}

// WithTick sets how often the dispatcher re-evaluates every queue even
// without a kick (default 1 s): it catches agents freed by other replicas
// and wrap-ups that ran out while nobody was watching.
func WithTick(d time.Duration) Option {
	return func(e *Engine) {
		if d > 0 {
			e.tick = d
		}
	}
}

// WithRandSeed makes the random strategy reproducible (tests).
func WithRandSeed(a, b uint64) Option {
	return func(e *Engine) { e.rnd = rand.New(rand.NewPCG(a, b)) }
}

// NewEngine builds an engine over the store, the agent service and a media
// path (which may be nil until SetMedia; commands then fail with
// ErrMediaUnavailable).
func NewEngine(st state.Store, agents *presence.Service, media media.Media, opts ...Option) *Engine {
	e := &Engine{
		st: st, agents: agents, media: media, clock: realClock{}, log: slog.Default(), obs: nopObserver{}, announcer: nopAnnouncer{},
		tick: time.Second, skipFor: 5 * time.Second, nShards: 8, mediaTimeout: DefaultMediaTimeout, legAudit: DefaultLegAudit,
		watchLinger: 10 * time.Millisecond, passSpacing: DefaultPassSpacing,
		rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 0x9e3779b97f4a7c15)),
	}
	e.cur.Store(newEngineRun())
	e.held = newHeldFacts() // before the options: WithHeldFacts sets its bound
	for _, o := range opts {
		o(e)
	}
	e.shards = make([]*loop, e.nShards)
	for i := range e.shards {
		e.shards[i] = newLoop()
	}
	e.dispatch = newLoop()
	e.refusals = newLoop()
	e.pass = newPassState()
	e.intake = newIntake()
	e.timers = newTimerSet()
	return e
}

// SetMedia replaces the media path (wiring sets it once the adapter is up).
func (e *Engine) SetMedia(m media.Media) {
	e.mediaMu.Lock()
	e.media = m
	e.mediaMu.Unlock()
}

func (e *Engine) mediaPath() media.Media {
	e.mediaMu.RLock()
	defer e.mediaMu.RUnlock()
	if e.media == nil {
		return noMedia{}
	}
	return boundedMedia{m: e.media, d: e.mediaTimeout, obs: e.obs}
}

// Run starts the shard loops, the dispatcher and the periodic tick, after
// re-reading live calls from the store (a restarted controller picks up
// where it stopped). It returns once ctx ends and every goroutine it
// started has stopped. Run may be called again after it returned.
func (e *Engine) Run(ctx context.Context) error { return e.RunFenced(ctx, state.Fence{}) }

// ErrFencedOut: a commit of this run was refused because a newer owner of
// the media server's lease exists; the run stopped at once.
var ErrFencedOut = errors.New("routing: a newer owner took over; stopped driving calls")

// RunFenced is Run for one term of a lease: every commit that matters for
// calls carries fence, and the first one the store refuses (a newer owner
// exists) stops the run at once; Run then returns ErrFencedOut.
func (e *Engine) RunFenced(ctx context.Context, fence state.Fence) error {
	if !e.running.CompareAndSwap(false, true) {
		return errors.New("routing: Run called twice")
	}
	r := e.cur.Load()
	r.fence = fence
	if fence.Token > 0 {
		// Replicas take turns creating calls and monitors on one store,
		// possibly within one millisecond: ids of a term start from its
		// token (unique per term), so no two owners mint the same id.
		e.seq.Store(uint64(fence.Token) * idsPerTerm)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.cancel = cancel
	defer e.endRun(r)
	e.intake.reset()
	e.resetHeld()
	if err := e.recover(ctx); err != nil {
		return fmt.Errorf("routing: recover live calls: %w", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		e.replayHeld(ctx)
	}()
	for _, l := range append([]*loop{e.dispatch, e.refusals}, e.shards...) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.run(ctx, e.started, e.done)
		}()
	}
	if e.watchLog != nil {
		// The starting position is read before Started closes, so a change
		// made right after Started is never behind the watcher's start.
		from, err := e.watchLog.Last(ctx)
		if err != nil && ctx.Err() == nil {
			e.log.Warn("agent watch: read log position", "err", err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.watchAgents(ctx, from)
		}()
	}
	e.armTick()
	e.push(e.dispatch, func(context.Context) { e.suspects = nil }) // a new term starts afresh
	e.armAudit()
	e.Kick()
	close(r.started)
	<-ctx.Done()
	e.stop(r)
	wg.Wait()
	if errors.Is(context.Cause(ctx), ErrFencedOut) {
		return ErrFencedOut
	}
	return nil
}

// endRun ends a run and prepares the next one.
func (e *Engine) endRun(r *engineRun) {
	e.stop(r)
	e.cur.Store(newEngineRun())
	e.kicked.Store(false)
	e.running.Store(false)
}

// stop marks the run stopped, stops every timer and drops queued work.
func (e *Engine) stop(r *engineRun) {
	r.once.Do(func() {
		close(r.stopped)
		e.timers.stopAll()
	})
	for _, l := range append([]*loop{e.dispatch, e.refusals}, e.shards...) {
		for range l.drain() {
			e.done()
		}
	}
}

// commit commits a change that matters for calls with the run's fence; a
// refusal by the fence stops the run at once.
func (e *Engine) commit(ctx context.Context, tx state.Tx) ([]state.Event, error) {
	r := e.cur.Load()
	tx.Fence = r.fence
	evs, err := e.st.Commit(ctx, tx)
	if errors.Is(err, state.ErrFenced) && r.cancel != nil {
		e.log.Error("a newer owner of the media server exists: stopped driving calls",
			"lease", r.fence.Lease, "token", r.fence.Token)
		r.cancel(ErrFencedOut)
	}
	return evs, err
}

// Started is closed once Run has recovered live calls and its loops run.
func (e *Engine) Started() <-chan struct{} { return e.cur.Load().started }

// Running reports whether a Run is driving calls right now.
func (e *Engine) Running() bool { return e.running.Load() && !e.isStopped() }

func (e *Engine) stoppedC() <-chan struct{} { return e.cur.Load().stopped }

func (e *Engine) isStopped() bool {
	select {
	case <-e.stoppedC():
		return true
	default:
		return false
	}
}

// armTick re-runs the dispatcher every e.tick.
func (e *Engine) armTick() {
	e.timers.set("tick", e.clock.AfterFunc(e.tick, func() {
		if e.isStopped() {
			return
		}
		e.Kick()
		e.armTick()
	}))
}

// Kick asks the dispatcher to re-evaluate every queue. Calls coalesce: at
// most one pass is queued at a time. The API calls it after any status
// change it makes (an agent became available).
func (e *Engine) Kick() {
	if e.isStopped() || !e.kicked.CompareAndSwap(false, true) {
		return
	}
	e.push(e.dispatch, func(ctx context.Context) {
		// Passes start at least passSpacing apart: the kicks that come
		// meanwhile (kicked is still set) join this pass instead of each
		// running one (WithPassSpacing).
		if !pause.For(ctx, e.passSpacing-time.Since(e.lastPass)) {
			return
		}
		e.kicked.Store(false)
		e.lastPass = time.Now()
		e.dispatchPass(ctx)
	})
}

// shardOf picks the ordered loop of a call.
func (e *Engine) shardOf(callID string) *loop {
	h := fnv.New32a()
	h.Write([]byte(callID))
	return e.shards[int(h.Sum32()%uint32(len(e.shards)))]
}

// submit queues work on the call's loop.
func (e *Engine) submit(callID string, f func(ctx context.Context)) {
	if e.isStopped() {
		return
	}
	e.push(e.shardOf(callID), f)
}

func (e *Engine) push(l *loop, f func(ctx context.Context)) {
	e.pmu.Lock()
	if e.pending == 0 {
		e.idle = make(chan struct{})
	}
	e.pending++
	e.obs.QueueDepth(e.pending)
	e.pmu.Unlock()
	// Real time, not e.now(): how late a loop runs is the host's matter,
	// and a test's fake clock must not make it look years late.
	l.push(f, time.Now())
}

func (e *Engine) done() {
	e.pmu.Lock()
	e.pending--
	if e.pending == 0 && e.idle != nil {
		close(e.idle)
		e.idle = nil
	}
	e.obs.QueueDepth(e.pending)
	e.obs.WorkDone()
	e.pmu.Unlock()
}

// on runs f on the call's loop and waits for its result: every API action
// on a call goes through here so it is ordered with the call's facts.
func (e *Engine) on(ctx context.Context, callID string, f func(ctx context.Context) error) error {
	return e.onReserved(ctx, callID, func(ctx context.Context, _ func(error)) error { return f(ctx) })
}

// onReserved is on for work whose caller waits for its first part only:
// f calls reserved with that part's result and may go on (the call's
// loop stays busy with it, so the call's order holds). A return before
// reserved is called answers the caller with f's error.
func (e *Engine) onReserved(ctx context.Context, callID string, f func(ctx context.Context, reserved func(error)) error) error {
	return e.startReserved(ctx, callID, f)()
}

// startReserved queues f as onReserved does and returns at once; the
// function it returns waits for the reservation's answer. The dispatcher
// starts the offers of a pass together and then waits for them all, so a
// pass lasts as long as its slowest reservation, not their sum.
func (e *Engine) startReserved(ctx context.Context, callID string, f func(ctx context.Context, reserved func(error)) error) (wait func() error) {
	if e.isStopped() || !e.running.Load() {
		return func() error { return ErrStopped }
	}
	stopped := e.stoppedC()
	res := make(chan error, 1)
	e.submit(callID, func(ctx context.Context) {
		answered := false
		reserved := func(err error) {
			if !answered {
				answered = true
				res <- err
			}
		}
		reserved(f(ctx, reserved)) // no-op when f already answered
	})
	return func() error {
		select {
		case err := <-res:
			return err
		case <-ctx.Done():
			return ctx.Err()
		case <-stopped:
			return ErrStopped
		}
	}
}

// Flush waits until every queued fact, action, timer consequence and
// dispatcher pass has been handled: tests inject a fact, Flush, then
// assert, with no sleeps.
func (e *Engine) Flush(ctx context.Context) error {
	for {
		e.pmu.Lock()
		idle := e.idle
		e.pmu.Unlock()
		if idle == nil {
			return nil
		}
		select {
		case <-idle:
		case <-ctx.Done():
			return ctx.Err()
		case <-e.stoppedC():
			return ErrStopped
		}
	}
}

// idsPerTerm spaces the id sequences of successive lease terms.
const idsPerTerm = 1_000_000

func (e *Engine) newID(prefix string) string {
	return fmt.Sprintf("%s-%d-%d", prefix, e.clock.Now().UnixMilli(), e.seq.Add(1))
}

func (e *Engine) now() time.Time { return e.clock.Now() }

func (e *Engine) loc() *time.Location { return e.agents.Location() }

// loop is one ordered work queue. push never blocks (Report must not).
type loop struct {
	mu    sync.Mutex
	items []loopItem
	wake  chan struct{}
}

// loopItem is one piece of work and when it was queued: how long the
// head item has waited is how late the loop runs (overload.go).
type loopItem struct {
	f  func(context.Context)
	at time.Time
}

func newLoop() *loop { return &loop{wake: make(chan struct{}, 1)} }

func (l *loop) push(f func(context.Context), at time.Time) {
	l.mu.Lock()
	l.items = append(l.items, loopItem{f: f, at: at})
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

func (l *loop) drain() []loopItem {
	l.mu.Lock()
	defer l.mu.Unlock()
	items := l.items
	l.items = nil
	return items
}

// oldest is when the item that has waited longest was queued (zero when
// none waits).
func (l *loop) oldest() time.Time {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.items) == 0 {
		return time.Time{}
	}
	return l.items[0].at
}

// run runs the queued items in order until ctx ends; started learns
// when each one was queued, done that it finished.
func (l *loop) run(ctx context.Context, started func(queued time.Time), done func()) {
	for {
		l.mu.Lock()
		var it loopItem
		if len(l.items) > 0 {
			it = l.items[0]
			l.items[0] = loopItem{}
			l.items = l.items[1:]
		}
		l.mu.Unlock()
		if it.f == nil {
			select {
			case <-ctx.Done():
				return
			case <-l.wake:
			}
			continue
		}
		started(it.at)
		if ctx.Err() == nil {
			it.f(ctx)
		}
		done()
	}
}

// timerSet tracks pending timers by key so they can be replaced, cancelled
// and all stopped at shutdown.
type timerSet struct {
	mu     sync.Mutex
	timers map[string]Timer
}

func newTimerSet() *timerSet { return &timerSet{timers: make(map[string]Timer)} }

func (ts *timerSet) set(key string, t Timer) {
	ts.mu.Lock()
	if old, ok := ts.timers[key]; ok {
		old.Stop()
	}
	ts.timers[key] = t
	ts.mu.Unlock()
}

func (ts *timerSet) cancel(key string) {
	ts.mu.Lock()
	if t, ok := ts.timers[key]; ok {
		t.Stop()
		delete(ts.timers, key)
	}
	ts.mu.Unlock()
}

func (ts *timerSet) stopAll() {
	ts.mu.Lock()
	for k, t := range ts.timers {
		t.Stop()
		delete(ts.timers, k)
	}
	ts.mu.Unlock()
}

// noMedia stands in until SetMedia: every command is refused as
// unavailable, so the API answers 503 instead of pretending.
type noMedia struct{}

func (noMedia) Answer(context.Context, media.LegID) error { return media.ErrMediaUnavailable }
func (noMedia) Hold(context.Context, media.LegID, media.HoldMode) error {
	return media.ErrMediaUnavailable
}
func (noMedia) Dial(context.Context, media.DialRequest) (media.LegID, error) {
	return "", media.ErrMediaUnavailable
}
func (noMedia) Connect(context.Context, media.LegID, media.LegID) error {
	return media.ErrMediaUnavailable
}
func (noMedia) Monitor(context.Context, media.MonitorRequest) (media.LegID, error) {
	return "", media.ErrMediaUnavailable
}
func (noMedia) SetMonitorMode(context.Context, media.LegID, media.MonitorMode) error {
	return media.ErrMediaUnavailable
}
func (noMedia) Mute(context.Context, media.LegID, bool) error { return media.ErrMediaUnavailable }
func (noMedia) Hangup(context.Context, media.LegID, media.Cause) error {
	return media.ErrMediaUnavailable
}
func (noMedia) Capabilities() media.Capabilities { return media.Capabilities{} }
func (noMedia) Gone(context.Context, []media.LegID) ([]media.LegID, error) {
	return nil, media.ErrMediaUnavailable
}
