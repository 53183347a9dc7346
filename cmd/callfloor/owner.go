package main

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/relay"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/rtpanchor"
	"github.com/callfloor/callfloor/sip"
	"github.com/callfloor/callfloor/state"
)

// mediaLeaseName names the lease of the media server this replica drives:
// replicas configured for the same Asterisk application, FreeSWITCH
// socket or SIP domain contend for the same lease.
func mediaLeaseName(cfg config.Config) string {
	switch cfg.Media() {
	case "asterisk":
		return "media:asterisk:" + cfg.ARI.URL + "#" + cfg.ARI.App
	case "freeswitch":
		return "media:freeswitch:" + cfg.ESL.Addr
	}
	domain := cfg.SIP.Domain
	if domain == "" {
		domain = "default"
	}
	return "media:sip:" + domain
}

// mediaOwner runs the routing engine's call loops, its dispatcher and the
// media connection only while this replica holds the media server's lease
// (README.md, Running several replicas). Each term gets a fresh media path
// and a fenced engine run; losing the lease ends both at once.
type mediaOwner struct {
	cfg     config.Config
	store   state.Store
	agents  *presence.Service
	engine  *routing.Engine
	log     *slog.Logger
	obs     media.Observer
	packets sip.PacketObserver
	anchor  rtpanchor.Observer
	lease   *lease.Lease
	// bus carries call commands from other replicas to the owner, which
	// answers them with serve (the API's ServeRelayed).
	bus   relay.Bus
	serve relay.Handler

	mu  sync.Mutex
	cur mediaPath // nil while another replica owns the media server
	// ended: SIP legs a past term saw end but could not delete from the
	// store (it was unreachable); the next term deletes them first.
	ended []media.LegID
}

func (o *mediaOwner) current() mediaPath {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cur
}

func (o *mediaOwner) set(m mediaPath) {
	o.mu.Lock()
	o.cur = m
	o.mu.Unlock()
}

// Owns reports whether this replica drives the media server right now.
func (o *mediaOwner) Owns() bool { return o.current() != nil && o.engine.Running() }

// Run contends for the media server until ctx ends.
func (o *mediaOwner) Run(ctx context.Context) error { return o.lease.Run(ctx, o.term) }

// term drives the media server for one term of the lease: the engine
// first (it re-reads live calls and re-arms their timers from the store),
// then the media connection (whose resync reconciles those calls with the
// media server), then the relayed commands.
func (o *mediaOwner) term(termCtx context.Context, t lease.Term) error {
	// The SIP path keeps its answered dialogs in the store, fenced by
	// this term, and restores those of the previous owner (README.md,
	// "What survives a failover").
	o.mu.Lock()
	ended := o.ended
	o.mu.Unlock()
	m, err := newMediaPath(o.cfg, o.store, o.agents, o.engine, o.log, o.obs, o.packets, o.anchor,
		sip.WithDialogStore(sip.StateDialogs(o.store, t.Fence())), sip.WithEndedDialogs(ended))
	if err != nil {
		return err
	}
	o.log.Info("driving the media server", "lease", t.Name, "token", t.Token)
	o.engine.SetMedia(m)
	o.set(m)
	defer func() {
		o.set(nil)
		o.engine.SetMedia(nil)
		if errors.Is(context.Cause(termCtx), lease.ErrLost) {
			o.log.Error("media server lease lost: stopped driving calls", "lease", t.Name, "token", t.Token)
		}
	}()
	ctx, cancel := context.WithCancel(termCtx)
	defer cancel()
	errs := make(chan error, 2)
	var wg sync.WaitGroup
	// Either ending ends the term: the engine without media (or media
	// without the engine) must not go on alone.
	start := func(run func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- run(ctx)
			cancel()
		}()
	}
	started := o.engine.Started()
	start(func(ctx context.Context) error { return o.engine.RunFenced(ctx, t.Fence()) })
	select {
	case <-started:
		// Every path reports what it holds once it runs (media.Snapshot):
		// the SIP path the dialogs it restored, so routing keeps those
		// calls and ends the rest of the previous owner's.
		start(m.Run)
		wg.Add(1)
		go func() {
			defer wg.Done()
			o.serveCommands(ctx, t.Name)
		}()
	case <-ctx.Done():
	}
	wg.Wait()
	if b, ok := m.(builtinSIP); ok {
		o.mu.Lock()
		o.ended = b.UnsavedEnds()
		o.mu.Unlock()
	}
	close(errs)
	var first error
	for err := range errs {
		if first == nil && err != nil {
			first = err
		}
	}
	return first
}

// serveCommands answers the call commands other replicas relay here
// until ctx ends, resubscribing when the store drops the subscription.
func (o *mediaOwner) serveCommands(ctx context.Context, channel string) {
	for ctx.Err() == nil {
		err := o.bus.Serve(ctx, channel, o.serve, nil)
		if ctx.Err() != nil {
			return
		}
		o.log.Warn("relayed commands: subscription ended, resubscribing", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Ready is the replica's readiness: a replica that does not own the media
// server is ready (it serves the API and the event stream); the owner is
// ready when its media path is.
func (o *mediaOwner) Ready(ctx context.Context) error {
	if m := o.current(); m != nil {
		return m.Ready(ctx)
	}
	return nil
}
