package ari

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/callfloor/callfloor/internal/every"
	"github.com/callfloor/callfloor/media"
)

// Config says which Asterisk to use and how agents map to its endpoints.
type Config struct {
	// URL is ARI's base URL, e.g. http://127.0.0.1:8088/ari.
	URL, User, Password string
	// App is the Stasis application name (default "callfloor").
	App string
	// TrunkPattern dials external numbers; "{number}" is replaced
	// (default "PJSIP/{number}@trunk").
	TrunkPattern string
	// DeviceFor turns a device's SIP user (an agent's app device "<id>",
	// IP phone "<id>-desk", or the names the record overrides them with)
	// into the endpoint to dial (default "PJSIP/<user>"). A device named
	// with a technology already ("Local/7001@devices") is dialled as is.
	DeviceFor func(user string) string
	// AgentForEndpoint maps an endpoint back to an agent id for device
	// presence (default: "PJSIP/<id>" → "<id>").
	AgentForEndpoint func(endpoint string) (agentID string, ok bool)
	// Devices lists the SIP users of every agent's devices (app device
	// and IP phone). When set, the application subscribes to those
	// endpoints only, not to the whole technology, and re-reads the list
	// every WithDeviceSync (subscribe.go). Nil: every endpoint of the
	// technology.
	Devices func(ctx context.Context) ([]string, error)
}

// Option tunes a Client.
type Option func(*Client)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithObserver reports the events connection going up and down to o.
func WithObserver(o media.Observer) Option {
	return func(c *Client) {
		if o != nil {
			c.obs = o
		}
	}
}

// WithBackoff sets the reconnect delay bounds (default media.DefaultBackoff).
func WithBackoff(min, max time.Duration) Option {
	return func(c *Client) { c.backoff = media.Backoff{Min: min, Max: max} }
}

// WithPresenceRefresh sets how often registered devices are reported
// again (default 1h). Asterisk only tells of changes, while presence
// lets a registration of unknown expiry lapse after a day (see
// presence.Service.DeviceState), so a device registered for longer must
// be re-reported.
func WithPresenceRefresh(d time.Duration) Option { return func(c *Client) { c.presenceEvery = d } }

// Client is the Asterisk media path. It implements media.Media.
type Client struct {
	cfg     Config
	facts   media.Facts
	log     *slog.Logger
	obs     media.Observer
	backoff media.Backoff
	// presenceEvery is how often registered devices are re-reported.
	presenceEvery time.Duration
	// deviceSync is how often Config.Devices is re-read.
	deviceSync time.Duration
	// contactsMaxAge: how long a device's contacts are used once read.
	contactsMaxAge time.Duration
	lag            eventLag
	refusedLog     every.Gate // logs a refusal every 10 s
	rest           *rest
	wsURL          string

	// subMu serialises subscription changes; subs are the event sources
	// subscribed on the current socket.
	subMu sync.Mutex
	subs  map[string]bool
	// synced: the device list (sorted, joined) the last complete sync
	// used; "" forces the next sync to ask Asterisk.
	synced string

	connected atomic.Bool
	running   atomic.Bool

	queue chan queued // reader → dispatcher, in arrival order
	// handling serialises handling events, resyncs and refreshes between
	// the dispatcher and the socket reader, which handles an event itself
	// when nothing is queued ahead of it (client.go, session); pending
	// counts items enqueued and not yet handled. Lock order: handling → mu.
	handling sync.Mutex
	pending  atomic.Int64
	actions  chan func(context.Context) // follow-up REST work, run in order by one worker
	opMu     sync.Mutex                 // serialises monitor reconfiguration
	mu       sync.Mutex                 // guards the maps below
	legs     map[string]*leg            // by logical leg id
	chans    map[string]*leg            // by Asterisk channel id (fork members, snoops)
	bridges  map[string]*brdg           // bridges this app created, by id
	// spare lists empty call bridges kept for the next calls (bridge.go,
	// retireBridge), newest last.
	spare   []string
	devices map[string]bool // endpoint → last reported registration
	// contacts: endpoint → what it is dialled as, read from Asterisk
	// (contacts.go).
	contacts map[string]contactSet
	cleaned  map[string]bool        // orphans hung up during the current resync
	unhung   map[string]media.Cause // channels whose hang-up failed: retried on resync
}

var _ media.Media = (*Client)(nil)

// ErrConfig reports an unusable Config.
var ErrConfig = errors.New("ari: bad configuration")

// New checks cfg and returns a Client; Run connects it.
func New(cfg Config, facts media.Facts, opts ...Option) (*Client, error) {
	if facts == nil {
		return nil, fmt.Errorf("%w: nil facts sink", ErrConfig)
	}
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("%w: URL %q must be http(s)://host:port/ari", ErrConfig, cfg.URL)
	}
	if cfg.App == "" {
		cfg.App = "callfloor"
	}
	if strings.ContainsAny(cfg.App, ",/ ") {
		return nil, fmt.Errorf("%w: app name %q", ErrConfig, cfg.App)
	}
	if cfg.TrunkPattern == "" {
		cfg.TrunkPattern = "PJSIP/{number}@trunk"
	}
	if cfg.DeviceFor == nil {
		cfg.DeviceFor = func(id string) string { return "PJSIP/" + id }
	}
	if cfg.AgentForEndpoint == nil {
		cfg.AgentForEndpoint = func(ep string) (string, bool) {
			id, ok := strings.CutPrefix(ep, "PJSIP/")
			return id, ok && id != ""
		}
	}
	base := strings.TrimRight(cfg.URL, "/")
	// Every request reuses a kept-alive connection: at 100 calls/s a few
	// dozen are in flight, and each new one is a new thread in Asterisk's
	// HTTP server (docs/performance.md, "Asterisk side by side").
	conns, err := newConns(u.Scheme, u.Hostname(), u.Port())
	if err != nil {
		return nil, fmt.Errorf("%w: url %q: %w", ErrConfig, cfg.URL, err)
	}
	ws := *u
	ws.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	ws.Path = strings.TrimRight(u.Path, "/") + "/events"
	ws.RawQuery = url.Values{"app": {cfg.App}, "subscribeAll": {"false"}}.Encode()
	ws.User = nil
	c := &Client{
		cfg:            cfg,
		facts:          facts,
		log:            slog.Default(),
		obs:            media.NopObserver{},
		backoff:        media.DefaultBackoff,
		presenceEvery:  time.Hour,
		deviceSync:     DefaultDeviceSync,
		contactsMaxAge: DefaultContactsMaxAge,
		lag:            eventLag{max: DefaultMaxEventLag},
		rest:           &rest{base: base, auth: basicAuth(cfg.User, cfg.Password), conns: conns, timeout: 10 * time.Second},
		wsURL:          ws.String(),
		queue:          make(chan queued, 1024),
		actions:        make(chan func(context.Context), 1024),
		legs:           map[string]*leg{},
		chans:          map[string]*leg{},
		bridges:        map[string]*brdg{},
		devices:        map[string]bool{},
		contacts:       map[string]contactSet{},
		unhung:         map[string]media.Cause{},
	}
	for _, o := range opts {
		o(c)
	}
	c.rest.obs = c.obs
	if err := c.backoff.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if c.deviceSync <= 0 {
		return nil, fmt.Errorf("%w: device sync %v", ErrConfig, c.deviceSync)
	}
	if c.contactsMaxAge < 0 {
		return nil, fmt.Errorf("%w: contacts max age %v", ErrConfig, c.contactsMaxAge)
	}
	if c.presenceEvery <= 0 {
		return nil, fmt.Errorf("%w: presence refresh %v", ErrConfig, c.presenceEvery)
	}
	c.log = c.log.With("component", "ari", "app", cfg.App)
	return c, nil
}

// Connected reports whether the event WebSocket is up and subscribed.
func (c *Client) Connected() bool { return c.connected.Load() }
