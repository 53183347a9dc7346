package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"time"

	"github.com/callfloor/callfloor/ari"
	"github.com/callfloor/callfloor/esl"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/rtpanchor"
	"github.com/callfloor/callfloor/sip"
	"github.com/callfloor/callfloor/state"
)

// mediaPath is a media.Media that also runs (connects, listens) and
// says whether it is usable, for /v1/readyz.
type mediaPath interface {
	media.Media
	Run(ctx context.Context) error
	Ready(ctx context.Context) error
}

// newMediaPath builds the media path the configuration selects: Asterisk
// when an ARI URL is set, FreeSWITCH when an ESL address is, otherwise the
// built-in SIP path, whose registrations are kept in the store (sipOpts:
// more options for that path, e.g. its dialog store for one lease term).
func newMediaPath(cfg config.Config, st state.Store, agents *presence.Service, facts media.Facts, log *slog.Logger, obs media.Observer, packets sip.PacketObserver, anchorObs rtpanchor.Observer, sipOpts ...sip.Option) (mediaPath, error) {
	switch cfg.Media() {
	case "asterisk":
		if _, err := url.Parse(cfg.ARI.URL); err != nil {
			return nil, fmt.Errorf("ari url: %w", err)
		}
		// Subscribed to the agents' devices' states (ari/subscribe.go).
		opts := []ari.Option{ari.WithLogger(log), ari.WithObserver(obs)}
		if n := cfg.ARI.ContactsMaxAgeSeconds; n != nil {
			opts = append(opts, ari.WithContactsMaxAge(time.Duration(*n)*time.Second))
		}
		c, err := ari.New(ari.Config{URL: cfg.ARI.URL, User: cfg.ARI.User, Password: cfg.ARI.Password,
			App: cfg.ARI.App, TrunkPattern: cfg.ARI.TrunkPattern, Devices: ari.AgentDevices(agents)},
			facts, opts...)
		if err != nil {
			return nil, fmt.Errorf("asterisk: %w", err)
		}
		return connected{c, "asterisk ARI"}, nil
	case "freeswitch":
		c, err := esl.New(esl.Config{Addr: cfg.ESL.Addr, Password: cfg.ESL.Password,
			GatewayPattern: cfg.ESL.GatewayPattern}, facts, esl.WithLogger(log), esl.WithObserver(obs))
		if err != nil {
			return nil, fmt.Errorf("freeswitch: %w", err)
		}
		return connected{c, "freeswitch ESL"}, nil
	}
	opts := []sip.Option{sip.WithLogger(log), sip.WithObserver(obs), sip.WithPacketObserver(packets),
		sip.WithBindingStore(sip.StateBindings(st))}
	opts = append(opts, sipOpts...)
	var anchor *rtpanchor.Anchor
	if cfg.SIP.Media != config.SIPMediaSignalling {
		var err error
		if anchor, err = newAnchor(cfg, log, anchorObs); err != nil {
			return nil, err
		}
		opts = append(opts, sip.WithMediaAnchor(anchor))
	}
	s, err := sip.New(sip.Config{
		Addr: cfg.SIPAddr, Domain: cfg.SIP.Domain, TrunkSources: cfg.SIP.TrunkSources,
		TrunkUser: cfg.SIP.TrunkUser, TrunkPassword: cfg.SIP.TrunkPassword, OutboundTrunk: cfg.SIP.OutboundTrunk,
		SessionExpires: time.Duration(cfg.SIP.SessionExpiresSeconds) * time.Second,
	}, sipDirectory{agents: agents, passwords: cfg.SIPPasswords()}, facts, opts...)
	if err != nil {
		if anchor != nil {
			anchor.Close()
		}
		return nil, fmt.Errorf("sip: %w", err)
	}
	return builtinSIP{Server: s, anchor: anchor}, nil
}

// newAnchor builds the SIP path's media anchor on the SIP listener's
// address (README.md, "Media on the built-in SIP path").
func newAnchor(cfg config.Config, log *slog.Logger, obs rtpanchor.Observer) (*rtpanchor.Anchor, error) {
	host, _, err := net.SplitHostPort(cfg.SIPAddr)
	if err != nil {
		return nil, fmt.Errorf("sip_addr %q: %w", cfg.SIPAddr, err)
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return nil, fmt.Errorf("sip_addr %q: the media anchor needs an IP address: %w", cfg.SIPAddr, err)
	}
	acfg := rtpanchor.Config{Addr: ip, PortMin: cfg.SIP.RTPPortMin, PortMax: cfg.SIP.RTPPortMax, MaxCalls: cfg.SIP.MaxCalls,
		Inactivity: time.Duration(cfg.SIP.RTPTimeoutSeconds) * time.Second}
	if cfg.SIP.MusicFile != "" {
		if acfg.Music, err = rtpanchor.LoadWAV(cfg.SIP.MusicFile); err != nil {
			return nil, fmt.Errorf("sip.music_file: %w", err)
		}
	}
	a, err := rtpanchor.New(acfg, obs, rtpanchor.WithLogger(log))
	if err != nil {
		return nil, fmt.Errorf("sip media anchor: %w", err)
	}
	return a, nil
}

// mediaClient is what the ARI and ESL clients offer.
type mediaClient interface {
	media.Media
	Run(ctx context.Context) error
	Connected() bool
}

// connected adapts a media server client (ARI, ESL) to mediaPath.
type connected struct {
	mediaClient
	name string
}

func (c connected) Ready(context.Context) error {
	if !c.Connected() {
		return fmt.Errorf("%s not connected: %w", c.name, media.ErrMediaUnavailable)
	}
	return nil
}

// builtinSIP is the SIP path; it is ready once it listens. Its media
// anchor (nil in signalling mode) lives as long as Run.
type builtinSIP struct {
	*sip.Server
	anchor *rtpanchor.Anchor
}

// Run serves SIP and, once every call has ended, closes the anchor. A
// term that ends because the media lease was lost hands the live calls
// over to the next owner instead of ending them (README.md, "What
// survives a failover"): the Server is told before its context ends.
func (b builtinSIP) Run(ctx context.Context) error {
	if b.anchor != nil {
		defer b.anchor.Close()
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(context.Cause(ctx), lease.ErrLost) {
			b.Server.HandOver()
		}
		cancel()
	})
	defer stop()
	return b.Server.Run(runCtx)
}

func (builtinSIP) Ready(context.Context) error { return nil }

// sipDirectory answers digest passwords for SIP devices: the configured
// password (default "sip-<SIP user>") of the app device and IP phone of
// agents that exist in the store.
type sipDirectory struct {
	agents    *presence.Service
	passwords map[string]config.SIPCredential
}

func (d sipDirectory) Password(ctx context.Context, user string) (string, bool, error) {
	cred, ok := d.passwords[user]
	if !ok {
		return "", false, nil
	}
	pw := cred.Password
	if _, err := d.agents.Agent(ctx, cred.Agent); errors.Is(err, presence.ErrNotFound) {
		return "", false, nil
	} else if err != nil {
		return "", false, err
	}
	return pw, true, nil
}
