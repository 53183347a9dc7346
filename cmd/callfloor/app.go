package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/metrics"
	"github.com/callfloor/callfloor/presence"
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
	store  state.StoreLog
	agents *presence.Service
	engine *routing.Engine
	media  mediaPath
	hub    *stream.Hub
	api    *api.Server
	// metrics is fed by every package's observer (README.md, Metrics and profiles).
	metrics *metrics.Metrics
	// loops run until the serve context ends; shutdown waits for all.
	loops []func(ctx context.Context) error
}

func newApp(ctx context.Context, cfg config.Config, log *slog.Logger) (*app, error) {
	m := metrics.New()
	st, err := store.Open(ctx, cfg.RedisURL, log, store.WithObserver(m.Store()))
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	a := &app{cfg: cfg, log: log, store: st, metrics: m}
	a.agents = presence.NewService(st,
		presence.WithLogger(log),
		presence.WithLocation(cfg.Location()),
		presence.WithHeartbeatTTL(cfg.HeartbeatTTLDuration()),
		presence.WithDefaultIdleStatus(cfg.DefaultIdleStatus),
		// A supervisor with a running monitor cannot log out; routing knows.
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return a.engine.LogoutGuard(ctx, id) }),
	)
	if err := config.Bootstrap(ctx, cfg, a.agents); err != nil {
		_ = st.Close()
		return nil, fmt.Errorf("bootstrap floor: %w", err)
	}
	a.engine = routing.NewEngine(st, a.agents, nil, routing.WithLogger(log), routing.WithDefaultQueue(cfg.DefaultQueue),
		routing.WithObserver(m.Routing()),
		// Re-run distribution on an agent change that may route a call,
		// including other replicas' (this also covers the API's changes).
		routing.WithAgentEvents(st))
	if err := config.BootstrapQueues(ctx, cfg, a.engine); err != nil {
		_ = st.Close()
		return nil, err
	}
	media, err := newMediaPath(cfg, a.agents, a.engine, log, m.Media(cfg.Media()))
	if err != nil {
		_ = st.Close()
		return nil, err
	}
	a.media = media
	a.engine.SetMedia(media)

	m.Floor(a.engine, a.agents, log)
	a.hub = stream.NewHub(st, stream.WithLogger(log), stream.WithObserver(m.Stream()))
	stats := stream.NewStatsPublisher(a.hub, statsSource{engine: a.engine}, st, stream.WithStatsLogger(log))
	a.api = api.New(a.agents, st,
		api.WithLogger(log),
		api.WithRoutes(api.RoutingRoutes(a.engine)),
		api.WithRoutes(api.EventRoutes(a.hub, api.WithStreamPresence(a.agents, 20*time.Second),
			api.WithRecheck(a.agents, 2*time.Second), api.WithEventLogger(log))),
		api.WithRoutes(api.WebhookRoutes(webhook.NewRegistry(st, st))),
		api.WithReadiness(media.Ready),
		api.WithRoutes(api.MediaRoutes(media)),
		api.WithAdminHandler("/metrics", m.Handler()),
		api.WithAdminHandler("/debug/pprof/*", pprofHandler()),
	)
	// Webhook deliveries: one replica at a time holds the store lease.
	hooks := webhook.NewDispatcher(st, st, webhook.WithLogger(log), webhook.WithObserver(m.Webhook()))
	a.loops = append(a.loops, a.expireLoop, a.engine.Run, media.Run, a.hub.Run, stats.Run, hooks.Run)
	return a, nil
}

// expireLoop sweeps lapsed heartbeats, device registrations and wrap-up
// timers. Several replicas may run it: each change is a versioned write.
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
	errc := make(chan error, len(a.loops)+len(servers))
	for _, loop := range a.loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := loop(loopCtx); err != nil {
				errc <- err
			}
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
	wg.Wait()
	if err := a.store.Close(); err != nil {
		a.log.Warn("close store", "err", err)
	}
	a.log.Info("callfloor stopped")
	return runErr
}
