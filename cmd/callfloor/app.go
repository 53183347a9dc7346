package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/metrics"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/reports"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
	"github.com/callfloor/callfloor/webhook"
)

// app is the wired process: store, services, API and background loops.
type app struct {
	cfg    config.Config
	log    *slog.Logger
	store  store.Backend
	agents *presence.Service
	engine *routing.Engine
	media  mediaPath
	// owner drives the media server while this replica holds its lease.
	owner *mediaOwner
	hub   *stream.Hub
	api   *api.Server
	// metrics is fed by every package's observer (README.md, Metrics and profiles).
	metrics *metrics.Metrics
	// floor is the lease of the work done once per floor, not per
	// replica: the presence sweep and the stats events.
	floor *lease.Lease
	// leases are every lease this replica contends for (observability).
	leases []*lease.Lease
	// reports is the SQL projection of the event log (README.md, Reports).
	reports *reports.DB
	// loops run until the serve context ends; shutdown waits for all.
	loops []func(ctx context.Context) error
	// pending holds why the floor is not bootstrapped yet (the store was
	// unreachable at start); nil once it is.
	pending atomic.Pointer[error]
}

// bootstrap writes the configured floor (statuses, groups, agents,
// queues) into the store; records that exist are left alone.
func (a *app) bootstrap(ctx context.Context) error {
	if err := config.Bootstrap(ctx, a.cfg, a.agents); err != nil {
		return fmt.Errorf("bootstrap floor: %w", err)
	}
	return config.BootstrapQueues(ctx, a.cfg, a.engine)
}

// bootstrapped is a readiness check: not ready while the floor waits for
// the store.
func (a *app) bootstrapped(context.Context) error {
	if p := a.pending.Load(); p != nil {
		return fmt.Errorf("floor not bootstrapped yet (waiting for the store): %w", *p)
	}
	return nil
}

// awaitBootstrap retries the bootstrap until the store answers or ctx
// ends; the background loops start only after it.
func (a *app) awaitBootstrap(ctx context.Context) error {
	wait := 500 * time.Millisecond
	for a.pending.Load() != nil {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		err := a.bootstrap(ctx)
		switch {
		case err == nil:
			a.pending.Store(nil)
			a.log.Info("store reachable: floor bootstrapped, starting")
		case errors.Is(err, state.ErrUnavailable):
			a.pending.Store(&err)
			wait = min(2*wait, 5*time.Second)
		default:
			return err
		}
	}
	return nil
}

// loopStopDeadline bounds how long shutdown waits for the background loops
// once the HTTP server has drained.
const loopStopDeadline = 10 * time.Second

var errLoopsStuck = errors.New("background loops did not stop within the shutdown deadline")

// floorLease names the lease of the floor-wide singletons.
const floorLease = "floor"

func newApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	m := metrics.New()
	// A replica may start while Redis is down: it serves 503s and an
	// unready /v1/readyz until Redis answers, then bootstraps and runs.
	st, err := store.OpenWaiting(ctx, cfg.RedisURL, log, store.WithObserver(m.Store()))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	a := &app{cfg: cfg, log: log, store: st, metrics: m}
	// Reports: SQLite under the data directory unless a PostgreSQL URL is
	// set; migrations run here, before anything is served.
	a.reports, err = reports.Open(ctx, cfg.Reports.URL, cfg.DataDir)
	if err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("open reports database: %w", err)
	}

	a.agents = presence.NewService(st, append(cfg.PresenceOptions(),
		presence.WithLogger(log),
		// A supervisor with a running monitor cannot log out; routing knows.
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return a.engine.LogoutGuard(ctx, id) }),
	)...)
	a.engine = routing.NewEngine(st, a.agents, nil, routing.WithLogger(log), routing.WithDefaultQueue(cfg.DefaultQueue),
		routing.WithObserver(m.Routing()), routing.WithHeldFacts(cfg.HeldFacts),
		routing.WithMaxLoopDelay(cfg.MaxLoopDelay(routing.DefaultMaxLoopDelay)),
		// Re-run distribution on an agent change that may route a call,
		// including other replicas' (this also covers the API's changes).
		routing.WithAgentEvents(st))
	if err := a.bootstrap(ctx); errors.Is(err, state.ErrUnavailable) {
		a.pending.Store(&err)
		log.Warn("store unreachable at start: the floor is bootstrapped when it answers", "err", err)
	} else if err != nil {
		_ = st.Close()
		return nil, err
	}
	mediaObs := m.Media(cfg.Media())
	media, err := newMediaPath(cfg, st, a.agents, a.engine, log, mediaObs, m.SIPPackets(), m.Anchor())
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	// This instance only declares the path's capabilities (GET /v1/media);
	// the media server is driven by a fresh one per lease term.
	a.media = media

	holder := lease.NewHolderID()
	leaseOpts := []lease.Option{lease.WithHolder(holder), lease.WithTTL(cfg.LeaseTTLDuration()), lease.WithLogger(log)}
	a.owner = &mediaOwner{cfg: cfg, store: st, agents: a.agents, engine: a.engine, log: log, obs: mediaObs, packets: m.SIPPackets(), anchor: m.Anchor(),
		lease: lease.New(st, mediaLeaseName(cfg), append(leaseOpts, lease.WithObserver(m.Lease()))...), bus: st}

	m.Floor(a.engine, a.agents, log)
	a.hub = stream.NewHub(st, stream.WithLogger(log), stream.WithObserver(m.Stream()))
	a.api = api.New(a.agents, st,
		api.WithLogger(log),
		api.WithRoutes(api.RoutingRoutes(a.engine,
			// Commands reaching a standby replica go to the owner; a
			// takeover takes up to one TTL, so wait for two.
			api.WithCommandRelay(a.owner.Owns, st, a.owner.lease.Name(), 2*cfg.LeaseTTLDuration()))),
		api.WithRoutes(api.EventRoutes(a.hub, api.WithStreamPresence(a.agents, 20*time.Second),
			api.WithRecheck(a.agents, 2*time.Second), api.WithEventLogger(log))),
		api.WithRoutes(api.WebhookRoutes(webhook.NewRegistry(st, st))),
		api.WithReadiness(a.bootstrapped),
		api.WithReadiness(a.owner.Ready),
		api.WithRoutes(api.MediaRoutes(media)),
		api.WithRoutes(api.ReportsRoutes(a.reports, a.agents, a.serviceLevels)),
		api.WithAdminHandler("/metrics", m.Handler()),
		api.WithAdminHandler("/debug/pprof/*", pprofHandler()),
	)
	a.owner.serve = a.api.ServeRelayed
	// Work done once per floor runs on the replica holding its lease
	// (README.md, Running several replicas).
	leaseOpts = append(leaseOpts, lease.WithObserver(m.Lease()))
	a.floor = lease.New(st, floorLease, leaseOpts...)
	hooksLease := lease.New(st, webhook.LeaseName, leaseOpts...)
	reportsLease := lease.New(st, reports.LeaseName, leaseOpts...)
	a.leases = append(a.leases, a.owner.lease, a.floor, hooksLease, reportsLease)
	projector := reports.NewProjector(a.reports, st, st, reports.WithLogger(log), reports.WithObserver(m.Reports()))
	retention := reports.Retention{CallsDays: cfg.Reports.CallsDays, AttemptsDays: cfg.Reports.AttemptsDays,
		IntervalsDays: cfg.Reports.IntervalsDays, MonitorsDays: cfg.Reports.MonitorsDays}
	hooks := webhook.NewDispatcher(st, st, hooksLease, webhook.WithLogger(log), webhook.WithObserver(m.Webhook()))
	a.loops = append(a.loops, a.floorLoop, a.owner.Run, a.hub.Run, hooks.Run,
		func(ctx context.Context) error { return projector.Run(ctx, reports.UnderLease(reportsLease)) },
		func(ctx context.Context) error {
			return a.reports.RunRetention(ctx, retention, time.Hour, time.Now, log)
		})
	return a, nil
}

// serviceLevels gives each queue's service level threshold to the queue
// report.
func (a *app) serviceLevels(ctx context.Context) (map[string]int, error) {
	qs, err := a.engine.Queues(ctx, presence.System)
	if err != nil {
		return nil, err
	}
	out := make(map[string]int, len(qs))
	for _, q := range qs {
		out[q.ID] = q.ServiceLevelSeconds
	}
	return out, nil
}

// floorLoop runs the floor-wide singletons while this replica holds the
// floor lease: the presence sweep and the stats events (whose commits
// carry the lease's fence, so a stale holder publishes nothing).
func (a *app) floorLoop(ctx context.Context) error {
	return a.floor.Run(ctx, func(ctx context.Context, term lease.Term) error {
		// Agents written before the due index existed are filed now.
		if err := a.agents.Reindex(ctx); err != nil && ctx.Err() == nil {
			a.log.Warn("presence reindex", "err", err)
		}
		stats := stream.NewStatsPublisher(a.hub, statsSource{engine: a.engine},
			fencedCommitter{store: a.store, fence: term.Fence()}, stream.WithStatsLogger(a.log))
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); _ = stats.Run(ctx) }()
		err := a.expireLoop(ctx)
		wg.Wait()
		return err
	})
}

// fencedCommitter commits with a lease term's fence.
type fencedCommitter struct {
	store state.Store
	fence state.Fence
}

func (f fencedCommitter) Commit(ctx context.Context, tx state.Tx) ([]state.Event, error) {
	tx.Fence = f.fence
	return f.store.Commit(ctx, tx)
}

// expireLoop sweeps lapsed heartbeats, device registrations and wrap-up
// timers (only the agents the due index says are due).
func (a *app) expireLoop(ctx context.Context) error {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := a.agents.Expire(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("presence sweep", "err", err)
			}
		}
	}
}

// serve listens, runs the loops, and on ctx end shuts down in two phases:
// first stop taking requests and let in-flight ones (and event streams)
// finish, then stop the background loops and close the store.
func (a *app) serve(ctx context.Context, ready func(httpAddr string)) error {
	ln, err := net.Listen("tcp", a.cfg.HTTPAddr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", a.cfg.HTTPAddr, err)
	}
	if !config.IsLoopback(a.cfg.HTTPAddr) && len(a.cfg.DemoTokens()) > 0 {
		a.log.Warn("DEMO TOKENS ARE ACTIVE ON A NON-LOOPBACK ADDRESS: anyone who can reach this port is admin; use token_sha256 in your own config",
			"addr", a.cfg.HTTPAddr, "demo_tokens", len(a.cfg.DemoTokens()))
	}
	// Timeouts, the connection cap and body limits: api.DefaultLimits, SECURITY.md.
	srv, limited := a.api.HTTPServer(ln)
	servers := []*http.Server{srv}
	listeners := []net.Listener{limited}
	for addr, h := range a.opsListeners() {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, l := range listeners {
				_ = l.Close()
			}
			return fmt.Errorf("listen %s: %w", addr, err)
		}
		a.log.Info("operations listener", "addr", l.Addr().String())
		servers = append(servers, &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second})
		listeners = append(listeners, l)
	}

	loopCtx, stopLoops := context.WithCancel(context.Background())
	defer stopLoops()
	var wg sync.WaitGroup
	errc := make(chan error, len(a.loops)+len(servers)+1)
	startLoops := func() {
		for _, loop := range a.loops {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := loop(loopCtx); err != nil {
					errc <- err
				}
			}()
		}
	}
	if a.pending.Load() == nil {
		// Bootstrapped at start (the usual case): the loops — the SIP
		// listener among them — run before the banner says we are up.
		startLoops()
	} else {
		wg.Add(1)
		go func() {
			defer wg.Done() // after startLoops' Adds: the count never drops to 0 here
			if err := a.awaitBootstrap(loopCtx); err != nil {
				if loopCtx.Err() == nil {
					errc <- err
				}
				return
			}
			startLoops()
		}()
	}
	for i, srv := range servers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(listeners[i]); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("http: %w", err)
			}
		}()
	}
	ready(ln.Addr().String())
	a.log.Info("callfloor started", "http", ln.Addr().String(), "media", a.cfg.Media())

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
	}
	a.log.Info("shutting down: draining requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.RegisterOnShutdown(stopLoops) // event streams end with the loops
	for _, srv := range servers {
		if err := srv.Shutdown(shutdownCtx); err != nil {
			a.log.Warn("http shutdown", "err", err)
		}
	}
	stopLoops()
	// Loops stop at once (leases are released as they end, so another
	// replica takes over without waiting out the TTL); a loop stuck past
	// the deadline is reported and the process exits regardless.
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(loopStopDeadline):
		a.log.Error("shutting down: background loops did not stop in time; exiting anyway", "deadline", loopStopDeadline)
		return errors.Join(runErr, errLoopsStuck)
	}
	if err := a.store.Close(); err != nil {
		a.log.Warn("close store", "err", err)
	}
	if err := a.reports.Close(); err != nil {
		a.log.Warn("close reports database", "err", err)
	}
	a.log.Info("callfloor stopped")
	return runErr
}
