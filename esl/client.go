package esl

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/callfloor/callfloor/media"
)

// Config says where FreeSWITCH is and how agents are dialled.
type Config struct {
	// Addr is the event socket, e.g. "127.0.0.1:8021" (CALLFLOOR_ESL_ADDR).
	Addr string
	// Password is event_socket.conf.xml's password (CALLFLOOR_ESL_PASSWORD).
	Password string
	// GatewayPattern dials an external number; "{number}" is replaced.
	// Default "sofia/gateway/trunk/{number}".
	GatewayPattern string
	// DeviceFor turns a device's SIP user (an agent's app device "<id>",
	// IP phone "<id>-desk", or the record's overrides) into a dial string.
	// Default "user/<user>", the directory user in the default domain. A
	// device named with a technology already ("sofia/…") is dialled as is.
	DeviceFor func(user string) string
	// AgentForUser maps a registering SIP user to an agent id. Default:
	// the user name is the agent id.
	AgentForUser func(user string) (agentID string, ok bool)
}

// Option tunes a Client.
type Option func(*Client)

// WithLogger sets the logger (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(c *Client) { c.log = l } }

// WithObserver reports the connection going up and down to o.
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

// WithHeartbeatTimeout sets how long the connection may stay silent before
// it is declared dead (default 60s: three missed 20 s HEARTBEATs).
// eslgo only notices EOF; a half-open TCP connection would hang forever.
func WithHeartbeatTimeout(d time.Duration) Option { return func(c *Client) { c.hbTimeout = d } }

// subscription is what we ask FreeSWITCH for: channel lifecycle, DTMF,
// job results, liveness and registrations. CHANNEL_STATE is left out: it
// is half of all events and every other channel event carries the state.
var subscription = []string{
	"CHANNEL_CREATE", "CHANNEL_PROGRESS", "CHANNEL_ANSWER", "CHANNEL_BRIDGE", "CHANNEL_UNBRIDGE",
	"CHANNEL_HANGUP", "CHANNEL_HANGUP_COMPLETE", "CHANNEL_PARK", "CHANNEL_CALLSTATE",
	"DTMF", "BACKGROUND_JOB", "HEARTBEAT",
	"CUSTOM", "sofia::register", "sofia::unregister", "sofia::expire",
}

// Client is the FreeSWITCH media path. It implements media.Media.
type Client struct {
	cfg       Config
	facts     media.Facts
	log       *slog.Logger
	obs       media.Observer
	backoff   media.Backoff
	hbTimeout time.Duration
	newUUID   func() string
	now       func() time.Time

	mu      sync.Mutex // guards cur, running, sessCtx and the call state below
	cur     *conn      // the authenticated, subscribed connection, if any
	running bool
	st      tracker
	// sessCtx ends with the current connection; followUps (commands the
	// reader cannot send itself, such as a deferred mute) run under it and
	// session waits for them.
	sessCtx   context.Context
	followUps sync.WaitGroup
}

var _ media.Media = (*Client)(nil)

// New checks cfg and returns a Client; Run connects it.
func New(cfg Config, facts media.Facts, opts ...Option) (*Client, error) {
	if cfg.Addr == "" {
		return nil, errors.New("esl: Config.Addr is required")
	}
	if facts == nil {
		return nil, errors.New("esl: facts sink is required")
	}
	if cfg.GatewayPattern == "" {
		cfg.GatewayPattern = "sofia/gateway/trunk/{number}"
	}
	if !strings.Contains(cfg.GatewayPattern, "{number}") {
		return nil, fmt.Errorf("esl: GatewayPattern %q lacks {number}", cfg.GatewayPattern)
	}
	if cfg.DeviceFor == nil {
		cfg.DeviceFor = func(id string) string { return "user/" + id }
	}
	if cfg.AgentForUser == nil {
		cfg.AgentForUser = func(u string) (string, bool) { return u, u != "" }
	}
	c := &Client{
		cfg: cfg, facts: facts, log: slog.Default(), obs: media.NopObserver{},
		backoff:   media.DefaultBackoff,
		hbTimeout: 60 * time.Second,
		newUUID:   randomUUID, now: time.Now,
	}
	for _, o := range opts {
		o(c)
	}
	if err := c.backoff.Validate(); err != nil {
		return nil, fmt.Errorf("esl: %w", err)
	}
	c.st.init()
	return c, nil
}

// Connected reports whether commands can be sent right now.
func (c *Client) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cur != nil
}

// Run keeps one connection up until ctx ends: connect, authenticate,
// subscribe, resync, read; on any failure wait (backoff) and start over.
// It returns nil when ctx ends, ErrAuthFailed when the password is wrong,
// and only after every goroutine it started has stopped.
func (c *Client) Run(ctx context.Context) error {
	c.mu.Lock()
	if c.running {
		c.mu.Unlock()
		return errors.New("esl: Run called twice")
	}
	c.running = true
	c.mu.Unlock()
	defer func() { c.mu.Lock(); c.running = false; c.mu.Unlock() }()

	return media.Reconnect(ctx, c.backoff, c.log.With("addr", c.cfg.Addr), "esl",
		func(ctx context.Context) (bool, error) {
			start := time.Now()
			err := c.session(ctx)
			if errors.Is(err, ErrAuthFailed) {
				return false, fmt.Errorf("FreeSWITCH refused the password: %w (%w)", err, media.ErrStopReconnecting)
			}
			// Up for longer than the longest wait: a fresh failure.
			return time.Since(start) > c.backoff.Max, err
		})
}

// session runs one connection from dial to loss.
func (c *Client) session(ctx context.Context) error {
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	nc, err := d.DialContext(dctx, "tcp", c.cfg.Addr)
	cancel()
	if err != nil {
		return fmt.Errorf("esl: dial %s: %w", c.cfg.Addr, err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	if err := handshake(ctx, nc, br, c.cfg.Password, subscription); err != nil {
		nc.Close()
		return err
	}
	cn := newConn(nc, br)
	sctx, stopFollowUps := context.WithCancel(ctx)
	c.mu.Lock()
	c.sessCtx = sctx
	c.mu.Unlock()
	defer c.followUps.Wait()
	defer stopFollowUps()
	readerDone := make(chan error, 1)
	go func() { readerDone <- c.readLoop(cn) }()

	// Commands are accepted from here on, also while the resync runs:
	// events may already be announcing calls. The resync ignores legs
	// created after its snapshot was asked for.
	c.mu.Lock()
	c.cur = cn
	c.mu.Unlock()
	c.obs.Connected(true)
	defer func() {
		c.mu.Lock()
		c.cur = nil
		c.mu.Unlock()
		c.obs.Connected(false)
	}()
	c.log.Info("esl: connected", "addr", c.cfg.Addr)

	if err := c.resync(ctx, cn); err != nil {
		cn.stop()
		<-readerDone
		return fmt.Errorf("esl: resync: %w", err)
	}

	select {
	case err := <-readerDone:
		return err
	case <-ctx.Done():
		cn.stop()
		<-readerDone
		return ctx.Err()
	}
}

// readLoop is the one goroutine that reads a connection. Frames are
// handled in wire order, so events need no Event-Sequence sorting (eslgo
// runs each listener in its own goroutine and loses that order).
func (c *Client) readLoop(cn *conn) (err error) {
	defer cn.stop()
	for {
		_ = cn.nc.SetReadDeadline(time.Now().Add(c.hbTimeout))
		f, err := readFrame(cn.br)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return fmt.Errorf("esl: no frame for %v (heartbeat watchdog): %w", c.hbTimeout, err)
			}
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("esl: connection closed by FreeSWITCH: %w", err)
			}
			return err
		}
		switch f.contentType {
		case typeReply, typeAPIResponse:
			if !cn.deliver(f) {
				c.log.Warn("esl: reply with no command waiting", "type", f.contentType)
			}
		case typeEventPlain:
			ev, err := parseEvent(f.body)
			if err != nil {
				c.log.Warn("esl: dropping unparsable event", "err", err)
				continue
			}
			c.handleEvent(ev)
		case typeDisconnect:
			return fmt.Errorf("esl: FreeSWITCH sent disconnect-notice: %w", errDisconnected)
		default:
			c.log.Debug("esl: ignoring frame", "type", f.contentType)
		}
	}
}

// api runs one command on the current connection and checks its reply.
func (c *Client) api(ctx context.Context, cmd string, onReply func(*frame)) (string, error) {
	c.mu.Lock()
	cn := c.cur
	c.mu.Unlock()
	if cn == nil {
		return "", media.ErrMediaUnavailable
	}
	f, err := cn.send(ctx, cmd, onReply)
	if errors.Is(err, errDisconnected) {
		return "", fmt.Errorf("%w: %v", media.ErrMediaUnavailable, err)
	}
	if err != nil {
		return "", err
	}
	return checkReply(cmd, f)
}

// report hands facts to routing, in order. Only the reader goroutine
// calls it, so facts keep wire order.
func (c *Client) report(fs []media.Fact) {
	for _, f := range fs {
		c.facts.Report(f)
	}
}

func randomUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// handleEvent applies one event and reports what it yields.
func (c *Client) handleEvent(ev *event) {
	now := c.now()
	c.mu.Lock()
	facts := c.st.apply(ev, now, c.cfg.AgentForUser)
	mutes := c.st.dueMutes
	c.st.dueMutes = nil
	sctx := c.sessCtx
	c.mu.Unlock()
	c.report(facts)
	c.sendDueMutes(sctx, mutes)
	c.refreshRegistrations(sctx)
}

// sendDueMutes sends the mutes of legs that answered after being muted
// (Mute). The reader cannot wait for a reply to its own command, so each
// goes from a follow-up goroutine that the session waits for.
func (c *Client) sendDueMutes(sctx context.Context, mutes []string) {
	if sctx == nil { // no session (a unit test feeding events)
		sctx = context.Background()
	}
	for _, uuid := range mutes {
		c.followUps.Add(1)
		go func() {
			defer c.followUps.Done()
			ctx, cancel := context.WithTimeout(sctx, 10*time.Second)
			defer cancel()
			if _, err := c.api(ctx, muteCommand(uuid, true), nil); err != nil {
				c.log.Warn("esl: mute on answer", "uuid", uuid, "err", err)
			}
		}()
	}
}
