package sip

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/rtpanchor"
)

// Directory gives the digest password of a SIP user (an agent id). ok is
// false when the user does not exist.
type Directory interface {
	Password(ctx context.Context, user string) (password string, ok bool, err error)
}

// Config configures the SIP path.
type Config struct {
	// Addr is the loopback (or other) address the registrar and proxy
	// listen on, UDP and TCP both. Default "127.0.0.1:5060".
	Addr string
	// Domain is the SIP domain and digest realm. Default: Addr's host.
	Domain string
	// TrunkSources are the addresses (IPs or CIDRs) whose INVITEs are
	// accepted as trunk calls without authentication. Default 127.0.0.1.
	TrunkSources []string
	// TrunkUser and TrunkPassword, when set, let a trunk outside
	// TrunkSources authenticate its INVITEs with digest.
	TrunkUser, TrunkPassword string
	// OutboundTrunk is the URI pattern for external numbers (the phone
	// distribution mode, outbound calls); "{number}" is replaced by the
	// number, e.g. "sip:{number}@127.0.0.1:5090". Empty: no outbound trunk.
	OutboundTrunk string
	// MinExpires and MaxExpires bound registration lifetimes (defaults
	// 60s and 3600s). A shorter request is refused with 423, a longer one
	// is shortened.
	MinExpires, MaxExpires time.Duration
	// SessionExpires is the session interval (RFC 4028) callfloor asks
	// for on the dialogs it dials and grants at most on those it answers;
	// a dialog whose peer stops answering refreshes is ended as a ghost
	// (README.md, "Ghost calls"). Default and minimum 90 s.
	SessionExpires time.Duration
}

// Defaults used when the Config leaves a field zero.
const (
	DefaultAddr       = "127.0.0.1:5060"
	DefaultMinExpires = 60 * time.Second
	DefaultMaxExpires = time.Hour
	// defaultExpires is granted when a REGISTER names no expiry (RFC 3261
	// section 10.2.1.1 suggests one hour).
	defaultExpires = time.Hour
)

// Option tunes a Server.
type Option func(*options)

type options struct {
	log             *slog.Logger
	now             func() time.Time
	sweepEvery      time.Duration
	nonceTTL        time.Duration
	maxAuthFailures int
	backoffBase     time.Duration
	backoffMax      time.Duration
	drainTimeout    time.Duration
	anchor          *rtpanchor.Anchor
	obs             media.Observer
	packets         PacketObserver
	bindings        BindingStore
	dialogs         DialogStore
	endedDialogs    []media.LegID
	session         sessionTiming
}

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithObserver reports the path listening (up) and stopping (down) to o.
func WithObserver(ob media.Observer) Option { return func(o *options) { o.obs = ob } }

// WithSweepInterval sets how often expired registrations and nonces are
// swept (default 1s).
func WithSweepInterval(d time.Duration) Option { return func(o *options) { o.sweepEvery = d } }

// WithNonceTTL sets how long a digest nonce stays valid (default 5 min).
func WithNonceTTL(d time.Duration) Option { return func(o *options) { o.nonceTTL = d } }

// WithMaxAuthFailures sets how many wrong digest responses one source may
// send for one user before it gets 403 instead of a new challenge
// (default 3).
func WithMaxAuthFailures(n int) Option { return func(o *options) { o.maxAuthFailures = n } }

// WithAuthBackoff sets how long the first refused wrong answer from one
// source for one user is held back (doubling with each further one, up
// to max). Defaults 250 ms and 2 s; zero base disables holding.
func WithAuthBackoff(base, max time.Duration) Option {
	return func(o *options) { o.backoffBase, o.backoffMax = base, max }
}

// WithDrainTimeout bounds how long shutdown waits for calls to end
// (default 5s).
func WithDrainTimeout(d time.Duration) Option { return func(o *options) { o.drainTimeout = d } }

// WithMediaAnchor makes the path carry every call's audio through a (the
// caller owns and closes it): SDP names the anchor's ports, waiting
// callers hear early media (music or ringback), and listen, whisper,
// barge, take over and click-to-call bridging work with no media server.
func WithMediaAnchor(a *rtpanchor.Anchor) Option { return func(o *options) { o.anchor = a } }

// withSessionTiming replaces the session timer settings, below RFC
// 4028's floor too (tests).
func withSessionTiming(expires, probeTimeout time.Duration) Option {
	return func(o *options) {
		o.session = sessionTiming{expires: expires, minSE: min(expires, MinSessionExpires), probeTimeout: probeTimeout}
	}
}

// withClock replaces time.Now (tests).
func withClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// normalize fills defaults and validates cfg.
func (cfg *Config) normalize() error {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	host, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return fmt.Errorf("sip: addr %q: %w", cfg.Addr, err)
	}
	if _, err := netip.ParseAddr(host); err != nil {
		return fmt.Errorf("sip: addr %q: host must be an IP address: %w", cfg.Addr, err)
	}
	if port == "" || port == "0" {
		return fmt.Errorf("sip: addr %q: a fixed port is required", cfg.Addr)
	}
	if cfg.Domain == "" {
		cfg.Domain = host
	}
	if len(cfg.TrunkSources) == 0 {
		cfg.TrunkSources = []string{"127.0.0.1"}
	}
	if cfg.MinExpires <= 0 {
		cfg.MinExpires = DefaultMinExpires
	}
	if cfg.MaxExpires <= 0 {
		cfg.MaxExpires = DefaultMaxExpires
	}
	if cfg.SessionExpires == 0 {
		cfg.SessionExpires = DefaultSessionExpires
	}
	if cfg.SessionExpires < MinSessionExpires {
		return fmt.Errorf("sip: session expires %s below RFC 4028's minimum %s", cfg.SessionExpires, MinSessionExpires)
	}
	if cfg.MinExpires > cfg.MaxExpires {
		return fmt.Errorf("sip: min expires %s above max expires %s", cfg.MinExpires, cfg.MaxExpires)
	}
	if (cfg.TrunkUser == "") != (cfg.TrunkPassword == "") {
		return errors.New("sip: trunk user and trunk password go together")
	}
	if cfg.OutboundTrunk != "" && !strings.Contains(cfg.OutboundTrunk, "{number}") {
		return fmt.Errorf("sip: outbound trunk %q lacks {number}", cfg.OutboundTrunk)
	}
	return nil
}

// parseSources turns IPs and CIDRs into prefixes.
func parseSources(srcs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(srcs))
	for _, s := range srcs {
		s = strings.TrimSpace(s)
		if strings.Contains(s, "/") {
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return nil, fmt.Errorf("sip: trunk source %q: %w", s, err)
			}
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("sip: trunk source %q: %w", s, err)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}
