package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// Requester hands a request to the replica serving a channel and returns
// its answer (relay.Bus's requesting half).
type Requester interface {
	Request(ctx context.Context, channel string, req []byte) ([]byte, error)
}

// RoutingOption configures RoutingRoutes.
type RoutingOption func(*routingHandlers)

// commandRelay is where call commands go when this replica does not drive
// the media server.
type commandRelay struct {
	owns    func() bool
	bus     Requester
	channel string
	timeout time.Duration
}

// WithCommandRelay sends the call commands (click-to-call, listen,
// whisper, barge, take over, transfer, hang-up, monitor pause/resume/
// barge/end) that reach this replica while owns() is false to the replica
// that drives the media server, over bus on channel, and answers with that
// replica's response as is. Nothing within timeout is a 503
// media_owner_unavailable (README.md, Running several replicas); the
// command is never re-sent, so it runs at most once.
func WithCommandRelay(owns func() bool, bus Requester, channel string, timeout time.Duration) RoutingOption {
	return func(h *routingHandlers) {
		h.relay = &commandRelay{owns: owns, bus: bus, channel: channel, timeout: timeout}
	}
}

// relayedHeader marks a request a replica received through the relay; it
// is never relayed again.
const relayedHeader = "X-Callfloor-Relayed"

// relayedRequest is an API request as it travels to the owner.
type relayedRequest struct {
	Method        string `json:"method"`
	URI           string `json:"uri"`
	Authorization string `json:"authorization"`
	ContentType   string `json:"content_type,omitempty"`
	Body          []byte `json:"body,omitempty"`
}

// relayedResponse is the owner's answer as it travels back.
type relayedResponse struct {
	Status      int    `json:"status"`
	ContentType string `json:"content_type,omitempty"`
	Body        []byte `json:"body,omitempty"`
}

// relayed runs next here when this replica drives the media server, and
// otherwise forwards the request to the one that does.
func (h routingHandlers) relayed(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := h.relay
		if r == nil || r.owns() {
			return next(c)
		}
		req := c.Request()
		if req.Header.Get(relayedHeader) != "" {
			return Errorf(http.StatusServiceUnavailable, "media_owner_unavailable",
				"the replica this command was relayed to no longer drives the media server; the command did not run")
		}
		body, err := io.ReadAll(io.LimitReader(req.Body, maxBody+1))
		if err != nil {
			return Errorf(http.StatusBadRequest, "invalid_body", "could not read the request body")
		}
		payload, err := json.Marshal(relayedRequest{Method: req.Method, URI: req.URL.RequestURI(),
			Authorization: req.Header.Get("Authorization"), ContentType: req.Header.Get("Content-Type"), Body: body})
		if err != nil {
			return fmt.Errorf("encode relayed request: %w", err)
		}
		ctx, cancel := context.WithTimeout(req.Context(), r.timeout)
		defer cancel()
		out, err := r.bus.Request(ctx, r.channel, payload)
		var res relayedResponse
		if err == nil {
			err = json.Unmarshal(out, &res)
		}
		if err != nil || res.Status == 0 {
			e := Errorf(http.StatusServiceUnavailable, "media_owner_unavailable", fmt.Sprintf(
				"no replica driving the media server answered within %s (%v); the command may or may not have run: check the call before retrying",
				r.timeout, err))
			e.retryAfter = 2
			return e
		}
		c.Response().Header().Set(relayedHeader, "1")
		return c.Blob(res.Status, res.ContentType, res.Body)
	}
}

// ServeRelayed answers a call command another replica relayed here (see
// WithCommandRelay): it runs the request through this server's own routes,
// authentication included, and returns the response to send back.
func (s *Server) ServeRelayed(ctx context.Context, payload []byte) []byte {
	var rr relayedRequest
	rec := &recorder{header: http.Header{}}
	req, err := func() (*http.Request, error) {
		if err := json.Unmarshal(payload, &rr); err != nil {
			return nil, err
		}
		return http.NewRequestWithContext(ctx, rr.Method, rr.URI, bytes.NewReader(rr.Body))
	}()
	if err != nil {
		rec.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(rec).Encode(errorBody{Error: Errorf(http.StatusBadRequest, "invalid_relay", "malformed relayed request")})
	} else {
		req.Header.Set("Authorization", rr.Authorization)
		if rr.ContentType != "" {
			req.Header.Set("Content-Type", rr.ContentType)
		}
		req.Header.Set(relayedHeader, "1")
		req.RemoteAddr = "127.0.0.1:0" // relayed by a replica, not a client address
		s.Handler().ServeHTTP(rec, req)
	}
	out, _ := json.Marshal(relayedResponse{Status: rec.status, ContentType: rec.header.Get("Content-Type"), Body: rec.body.Bytes()})
	return out
}

// recorder is the http.ResponseWriter of a relayed request.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
