package ari

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
	"github.com/gobwas/ws"
)

// queued is one item for the dispatcher: an event, or the order to
// resynchronise after a (re)connect, kept in arrival order.
type queued struct {
	ev      ari.Event
	at      time.Time
	emitted time.Time // Asterisk's timestamp of the event (zero: none)
	resync  bool
	refresh bool // re-read endpoint registrations (presence.go)
}

// errReplaced: another connection took over this application's events
// (Asterisk keeps one live WebSocket per application).
var errReplaced = fmt.Errorf("ari: another connection replaced this application's event socket: %w", media.ErrBackOffLonger)

// Run connects to Asterisk, subscribes, reads events and keeps
// reconnecting with backoff (resynchronising from GET /channels and
// /bridges each time) until ctx ends. It returns nil once ctx has ended and
// every goroutine it started has stopped.
func (c *Client) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("ari: Run is already running")
	}
	defer c.running.Store(false)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(4)
	go func() { defer wg.Done(); c.dispatch(ctx) }()
	go func() { defer wg.Done(); c.work(ctx) }()
	go func() { defer wg.Done(); c.refreshLoop(ctx) }()
	go func() { defer wg.Done(); c.syncLoop(ctx) }()
	defer c.rest.conns.CloseIdleConnections()
	defer wg.Wait()

	return media.Reconnect(ctx, c.backoff, c.log, "ARI events",
		func(ctx context.Context) (bool, error) {
			connected, err := c.session(ctx)
			if c.connected.Swap(false) {
				c.obs.Connected(false)
			}
			return connected, err
		})
}

// session runs one WebSocket connection: dial, subscribe, queue a resync,
// then read until the socket fails. connected says whether it got that far.
func (c *Client) session(ctx context.Context) (connected bool, err error) {
	// Asterisk sends no pings; TCP keepalive notices a dead peer within
	// about 25 s instead of leaving the read blocked on a half-open socket.
	nd := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true,
		Idle: 10 * time.Second, Interval: 5 * time.Second, Count: 3}}
	d := ws.Dialer{Timeout: 10 * time.Second, NetDial: nd.DialContext,
		Header: ws.HandshakeHeaderHTTP(http.Header{
			"Origin":        {"http://localhost/"},
			"Authorization": {c.rest.auth},
		})}
	conn, br, _, err := d.Dial(ctx, c.wsURL)
	if err != nil {
		return false, fmt.Errorf("ari events dial: %w", err)
	}
	var src io.Reader = conn
	if br != nil { // bytes that came with the handshake's answer
		src = io.MultiReader(br, conn)
	}
	socket := &wsReader{r: bufio.NewReaderSize(src, 64<<10), w: conn, max: 4 << 20}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer func() { stop(); _ = conn.Close() }()

	// Each connection starts from the subscriptions Asterisk lists
	// (subscribe.go).
	c.subscribe(ctx)
	c.lag.reset()
	c.connected.Store(true)
	c.obs.Connected(true)
	c.log.Info("ARI events connected")
	if !c.enqueue(ctx, queued{resync: true}) {
		return true, ctx.Err()
	}
	recent := newRecentEvents()
	for {
		data, err := socket.next() // valid until the next call: decoding copies
		if err != nil {
			return true, fmt.Errorf("ari events read: %w", err)
		}
		if recent.repeat(data) {
			c.obs.EventReceived("duplicate")
			continue // delivered again for another subscription (dedup.go)
		}
		ev, err := decodeEvent(data)
		if err != nil {
			c.obs.EventReceived("undecodable")
			c.log.Warn("skipping ARI event", "err", err, "bytes", len(data))
			continue
		}
		c.obs.EventReceived(ev.GetType())
		if _, ok := ev.(*ari.ApplicationReplaced); ok {
			return true, errReplaced
		}
		q := queued{ev: ev, at: time.Now(), emitted: eventTime(data)}
		if c.handleNow(q) {
			continue
		}
		if !c.enqueue(ctx, q) {
			return true, ctx.Err()
		}
	}
}

// handleNow handles an event on the socket's goroutine when nothing is
// queued ahead of it and the dispatcher is idle, saving the hand-off to
// the dispatcher: one goroutine wake-up per event, a quarter of
// callfloor's wake-ups on Asterisk at 100 calls/s (docs/performance.md).
// Otherwise (a resync or refresh under way, events queued behind it) it
// reports false and the event is queued, in order.
func (c *Client) handleNow(q queued) bool {
	if c.pending.Load() != 0 || !c.handling.TryLock() {
		return false
	}
	defer c.handling.Unlock()
	if c.pending.Load() != 0 { // queued while we took the lock
		return false
	}
	c.handleEvent(q)
	return true
}

// handleEvent handles one event. Callers hold c.handling.
func (c *Client) handleEvent(q queued) {
	if !q.emitted.IsZero() {
		c.obs.EventLag(c.lag.observe(q.emitted, time.Now()))
	}
	c.handle(q.ev, q.at)
}

// handledEvents are the only event types the application asks Asterisk
// for (update in events.go handles each; a test keeps the two in step).
// Without the filter a call brings 55–63 events, most of them
// ChannelVarset, and under load Asterisk's queue for the application
// backs up until it stops answering SIP (measured on Asterisk 22.10.1).
// ChannelStateChange is left out: the only state read from it, an
// originated channel ringing, also comes as Dial RINGING on that
// channel (every recorded flow, and real Asterisk: Asterisk's dialing
// API publishes each dial status), so it was three events a call that
// changed nothing.
var handledEvents = []string{
	"StasisStart", "StasisEnd", "Dial", "ChannelHangupRequest",
	"ChannelDestroyed", "ChannelEnteredBridge", "ChannelLeftBridge", "BridgeDestroyed",
	"ChannelDtmfReceived", "EndpointStateChange", "DeviceStateChanged", "ApplicationReplaced",
	"ContactStatusChange",
}

// eventFilter is PUT /applications/{app}/eventFilter's body.
func eventFilter() map[string][]map[string]string {
	allowed := make([]map[string]string, len(handledEvents))
	for i, t := range handledEvents {
		allowed[i] = map[string]string{"type": t}
	}
	return map[string][]map[string]string{"allowed": allowed}
}

// techs lists the endpoint technologies agents' devices use.
func (c *Client) techs() []string {
	tech, _, ok := strings.Cut(c.cfg.DeviceFor("probe"), "/")
	if !ok || tech == "" {
		return nil
	}
	return []string{tech}
}

// enqueue hands an item to the dispatcher; it blocks (back-pressure on
// the socket) rather than dropping, and gives up only when ctx ends.
func (c *Client) enqueue(ctx context.Context, q queued) bool {
	c.pending.Add(1) // before the send: handleNow must see it
	select {
	case c.queue <- q:
		return true
	case <-ctx.Done():
		c.pending.Add(-1)
		return false
	}
}

// decodeEvent decodes one WebSocket message. Unknown types and malformed
// payloads are errors, never panics.
func decodeEvent(data []byte) (ev ari.Event, err error) {
	defer func() {
		if r := recover(); r != nil {
			ev, err = nil, fmt.Errorf("ari: decoder panic: %v", r)
		}
	}()
	if ev, ok, err := decodeCommon(data); ok { // decode.go
		return ev, err
	}
	ev, err = ari.DecodeEvent(data)
	if err != nil {
		return nil, fmt.Errorf("ari: decoding event: %w", err)
	}
	if ev == nil {
		return nil, errors.New("ari: decoding event: nil event")
	}
	return ev, nil
}

// dispatch applies events and resyncs one at a time, in order.
func (c *Client) dispatch(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case q := <-c.queue:
			c.handling.Lock()
			switch {
			case q.resync:
				c.resync(ctx)
			case q.refresh:
				c.refreshPresence(ctx)
			default:
				c.handleEvent(q)
			}
			c.pending.Add(-1) // handled: later events may go straight in
			c.handling.Unlock()
		}
	}
}

// work runs follow-up REST requests (cleanup, monitor set-up) in order so
// that the dispatcher never waits on the network.
func (c *Client) work(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case f := <-c.actions:
			actx, cancel := context.WithTimeout(ctx, 10*time.Second)
			f(actx)
			cancel()
		}
	}
}

// act queues follow-up work for the worker. It is called with c.mu held,
// so it must not block: if the queue is full it logs and skips the work
// (only cleanup and monitor set-up go here; the next resync removes
// orphans).
func (c *Client) act(name string, f func(context.Context)) {
	select {
	case c.actions <- f:
	default:
		c.log.Error("ARI follow-up queue full, skipping (next resync cleans up)", "action", name)
	}
}
