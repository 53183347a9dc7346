package api

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/stream"
)

// Presence is what the event stream needs to keep a connected agent
// online: *presence.Service satisfies it. KeepAlive never logs anyone in
// nor changes a status (an open stream is presence only).
type Presence interface {
	KeepAlive(ctx context.Context, actor presence.Actor, id string) (presence.Agent, error)
}

// Authenticator re-resolves a stream's token to its actor:
// *presence.Service satisfies it.
type Authenticator interface {
	Authenticate(ctx context.Context, token string) (presence.Actor, error)
}

// WithRecheck makes every stream re-check its subscriber every `every`
// (default 2 s) and whenever the subscriber's own record changes: a token
// that no longer authenticates (deleted user, revoked token) ends the
// stream with "event: cutoff" reason unauthenticated; a changed role or
// group set changes what the stream carries at once.
func WithRecheck(a Authenticator, every time.Duration) EventOption {
	return func(es *eventServer) {
		es.auth = a
		if every > 0 {
			es.recheck = every
		}
	}
}

// EventOption configures the event stream endpoint.
type EventOption func(*eventServer)

// WithKeepalive sets how long an idle stream waits before sending a
// comment line (default 15 s, as API.md says).
func WithKeepalive(d time.Duration) EventOption {
	return func(es *eventServer) { es.keepalive = max(d, time.Millisecond) }
}

// WithWriteTimeout bounds each write to a client (default 10 s); a client
// that cannot take a write within half that time to that time (the
// deadline is renewed once half of it has passed) is disconnected.
func WithWriteTimeout(d time.Duration) EventOption {
	return func(es *eventServer) { es.writeTimeout = max(d, time.Millisecond) }
}

// WithStreamPresence makes an open stream count as the agent's presence:
// a logged-in user is kept alive on connect and every `every` (default
// 20 s, well inside presence's heartbeat TTL) while the stream stays
// open. It never logs a user in or changes a status.
func WithStreamPresence(p Presence, every time.Duration) EventOption {
	return func(es *eventServer) {
		es.presence = p
		if every > 0 {
			es.heartbeat = every
		}
	}
}

// WithMaxLifetime ends a stream after d (default 30 min, each stream a
// little earlier at random so reconnects spread out) with "event: cutoff"
// reason max_lifetime; clients reconnect with Last-Event-ID and miss
// nothing. It bounds how long one connection holds what it was granted.
func WithMaxLifetime(d time.Duration) EventOption {
	return func(es *eventServer) { es.lifetime = max(d, time.Millisecond) }
}

// WithEventLogger sets the logger of the event stream.
func WithEventLogger(l *slog.Logger) EventOption { return func(es *eventServer) { es.log = l } }

type eventServer struct {
	hub          *stream.Hub
	keepalive    time.Duration
	writeTimeout time.Duration
	presence     Presence
	heartbeat    time.Duration
	lifetime     time.Duration
	auth         Authenticator
	recheck      time.Duration
	log          *slog.Logger
}

// EventRoutes serves GET /v1/events (API.md, Events) from hub. Mount it
// with WithRoutes(EventRoutes(hub)).
func EventRoutes(h *stream.Hub, opts ...EventOption) func(v1 *echo.Group, auth echo.MiddlewareFunc) {
	es := &eventServer{hub: h, keepalive: 15 * time.Second, writeTimeout: 10 * time.Second,
		heartbeat: 20 * time.Second, lifetime: 30 * time.Minute, recheck: 2 * time.Second, log: slog.Default()}
	for _, o := range opts {
		o(es)
	}
	return func(v1 *echo.Group, auth echo.MiddlewareFunc) {
		v1.GET("/events", es.serve, auth)
	}
}

// cutoffReasons names why the server ended a stream (sent as an
// "event: cutoff" before closing; the client reconnects with its last id).
var cutoffReasons = []struct {
	err    error
	reason string
}{
	{stream.ErrSlowConsumer, "slow_consumer"},
	{stream.ErrHubStopped, "server_shutdown"},
	{stream.ErrResync, "resync"},
}

func (es *eventServer) serve(c echo.Context) error {
	req := c.Request()
	q := c.QueryParams()
	filter, err := stream.ParseFilter(q.Get("types"), q.Get("queue"))
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_types", Field: "types", Message: err.Error()}
	}
	after := req.Header.Get("Last-Event-ID")
	if after == "" {
		after = q.Get("last_event_id")
	}
	actor := ActorOf(c)
	ctx := req.Context()
	sub, err := es.hub.Subscribe(ctx, stream.Subscription{Actor: actor, Filter: filter, After: strings.TrimSpace(after)})
	if errors.Is(err, stream.ErrHubStopped) {
		return Errorf(http.StatusServiceUnavailable, "unavailable", "event stream is shutting down; retry")
	}
	if err != nil {
		return err
	}
	defer sub.Close()

	w := c.Response()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	// No chunked framing: each flush is then exactly one write(2) of the
	// frames, and the connection closes when the stream ends (the set-up
	// the SSE specification recommends; net/http supports it this way).
	h.Set("Transfer-Encoding", "identity")
	w.WriteHeader(http.StatusOK)
	out := &sseWriter{rc: http.NewResponseController(w), w: w, timeout: es.writeTimeout}
	// The server's ReadTimeout bounds reading a request; this one is read,
	// and a lapsed read deadline would cancel the stream's context.
	if err := out.rc.SetReadDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil
	}
	lifetime := time.NewTimer(es.lifetime - time.Duration(rand.Int64N(int64(es.lifetime/10)+1)))
	defer lifetime.Stop()
	// retry: tells EventSource how soon to reconnect after a cut-off.
	if err := out.send([]byte(": connected\nretry: 2000\n\n")); err != nil {
		return nil
	}

	var beat <-chan time.Time
	if es.presence != nil {
		es.beat(ctx, actor)
		t := time.NewTicker(es.heartbeat)
		defer t.Stop()
		beat = t.C
	}
	var recheck <-chan time.Time
	if es.auth != nil {
		t := time.NewTicker(es.recheck)
		defer t.Stop()
		recheck = t.C
	}
	token := tokenOf(c)
	idle := time.NewTimer(es.keepalive)
	defer idle.Stop()
	var items []stream.Item
	for {
		// A change to the subscriber's own record is re-checked before
		// anything else is sent, so a narrower role applies to the very
		// next events.
		select {
		case <-sub.SelfChanged():
			if es.auth != nil {
				if actor, err = es.reauth(ctx, out, sub, token, actor); err != nil {
					return nil
				}
			}
		default:
		}
		items, err = sub.Take(ctx, items[:0])
		if len(items) > 0 {
			if out.send(encodeItems(&out.buf, items)) != nil {
				return nil // client gone or too slow to take a write
			}
			idle.Reset(es.keepalive)
		}
		if err != nil {
			es.cutoff(ctx, out, err)
			return nil
		}
		if len(items) > 0 {
			continue // more may be ready (catch-up reads one batch per Take)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-sub.C():
		case <-lifetime.C:
			_ = out.send([]byte("event: cutoff\ndata: {\"reason\":\"max_lifetime\"}\n\n"))
			return nil
		case <-recheck:
			if actor, err = es.reauth(ctx, out, sub, token, actor); err != nil {
				return nil
			}
		case <-sub.SelfChanged():
			if es.auth != nil {
				if actor, err = es.reauth(ctx, out, sub, token, actor); err != nil {
					return nil
				}
			}
		case <-beat:
			es.beat(ctx, actor)
		case <-idle.C:
			if out.send([]byte(": keepalive\n\n")) != nil {
				return nil
			}
			idle.Reset(es.keepalive)
		}
	}
}

// reauth re-resolves the stream's token. A token that no longer
// authenticates ends the stream (the error is returned after the cutoff
// is sent); any other failure (store briefly away) keeps the current
// actor until the next check.
func (es *eventServer) reauth(ctx context.Context, out *sseWriter, sub *stream.Subscriber, token string, cur presence.Actor) (presence.Actor, error) {
	next, err := es.auth.Authenticate(ctx, token)
	switch {
	case errors.Is(err, presence.ErrUnauthenticated):
		_ = out.send([]byte("event: cutoff\ndata: {\"reason\":\"unauthenticated\"}\n\n"))
		return cur, err
	case err != nil:
		if ctx.Err() == nil {
			es.log.Debug("stream re-check failed; keeping the current rights", "agent", cur.ID, "err", err)
		}
		return cur, nil
	}
	sub.SetActor(next)
	return next, nil
}

func (es *eventServer) beat(ctx context.Context, actor presence.Actor) {
	if _, err := es.presence.KeepAlive(ctx, actor, actor.ID); err != nil && ctx.Err() == nil {
		es.log.Debug("stream presence heartbeat failed", "agent", actor.ID, "err", err)
	}
}

// cutoff tells the client why the stream ends, when there is a reason
// worth sending (not when the client itself left).
func (es *eventServer) cutoff(ctx context.Context, out *sseWriter, err error) {
	if ctx.Err() != nil {
		return
	}
	reason := "unavailable"
	for _, r := range cutoffReasons {
		if errors.Is(err, r.err) {
			reason = r.reason
		}
	}
	if reason == "unavailable" {
		es.log.Warn("event stream ended", "err", err)
	}
	frame := "event: cutoff\ndata: {\"reason\":\"" + reason + "\"}\n\n"
	if errors.Is(err, stream.ErrHubStopped) {
		// The last thing a draining replica writes: clients reconnect
		// (another replica serves the same log) with their Last-Event-ID.
		frame += ": server shutting down; reconnect with Last-Event-ID\n\n"
	}
	_ = out.send([]byte(frame))
}

// sseWriter writes whole frames with a deadline and flushes each.
type sseWriter struct {
	rc       *http.ResponseController
	w        http.ResponseWriter
	timeout  time.Duration
	deadline time.Time
	buf      bytes.Buffer
}

func (s *sseWriter) send(b []byte) error {
	// Setting a deadline costs a lock and a timer update per write, a
	// noticeable share of a busy fan-out (docs/performance.md); renewing it
	// only once half of it has passed still leaves every write between
	// timeout/2 and timeout. ErrNotSupported (a ResponseWriter without
	// deadlines) is not fatal.
	if now := time.Now(); s.deadline.Sub(now) < s.timeout/2 {
		s.deadline = now.Add(s.timeout)
		if err := s.rc.SetWriteDeadline(s.deadline); err != nil && !errors.Is(err, http.ErrNotSupported) {
			return err
		}
	}
	if _, err := s.w.Write(b); err != nil {
		return err
	}
	return s.rc.Flush()
}

// encodeItems renders items as SSE frames, in one buffer so that one
// wake-up of the stream is one write however many events it carries. A
// live event's frame is encoded once for every client (Item.Frame); a
// lone event is sent as is, without a copy. A reset carries the position
// the stream continues from.
func encodeItems(buf *bytes.Buffer, items []stream.Item) []byte {
	if len(items) == 1 && !items[0].Reset {
		return items[0].Frame(encodeEvent)
	}
	buf.Reset()
	for i := range items {
		it := &items[i]
		if it.Reset {
			buf.WriteString("id: " + oneLine(it.Event.ID) + "\nevent: reset\ndata: {\"reason\":\"position_trimmed\"}\n\n")
			continue
		}
		buf.Write(it.Frame(encodeEvent))
	}
	return buf.Bytes()
}

// encodeEvent renders one event as an SSE frame: "id:" the log position,
// "event:" the type, "data:" the JSON, and the blank line ending it.
func encodeEvent(e *state.Event) []byte {
	var buf bytes.Buffer
	buf.Grow(len(e.ID) + len(e.Type) + len(e.Data) + 32)
	buf.WriteString("id: " + oneLine(e.ID) + "\nevent: " + oneLine(e.Type) + "\n")
	writeData(&buf, e.Data)
	buf.WriteString("\n")
	return buf.Bytes()
}

// writeData writes one "data:" line per line of d (JSON is normally one
// line; this keeps a pretty-printed body from breaking the framing).
func writeData(buf *bytes.Buffer, d []byte) {
	for {
		line, rest, more := bytes.Cut(d, []byte("\n"))
		buf.WriteString("data: ")
		buf.Write(bytes.TrimSuffix(line, []byte("\r")))
		buf.WriteByte('\n')
		if !more {
			return
		}
		d = rest
	}
}

func oneLine(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return strings.NewReplacer("\r", " ", "\n", " ").Replace(s)
	}
	return s
}
