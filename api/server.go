// Package api serves callfloor's REST + Server-Sent Events API (API.md)
// and the embedded dashboard over echo. Handlers are thin: they parse and
// validate the wire format, call the core (presence, routing), and map the
// core's sentinel errors to API.md's error shape.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// Server is the HTTP API.
type Server struct {
	echo     *echo.Echo
	agents   *presence.Service
	store    state.Store
	log      *slog.Logger
	mounts   []func(*echo.Group, echo.MiddlewareFunc)
	readyFns []func(ctx context.Context) error
	changed  func()
}

// Option configures a Server.
type Option func(*Server)

// WithLogger sets the logger.
func WithLogger(l *slog.Logger) Option { return func(s *Server) { s.log = l } }

// WithRoutes lets another part of the product (routing, the event stream)
// mount its endpoints under /v1. auth is the bearer-token middleware; use
// ActorOf(c) inside handlers.
func WithRoutes(mount func(v1 *echo.Group, auth echo.MiddlewareFunc)) Option {
	return func(s *Server) { s.mounts = append(s.mounts, mount) }
}

// WithReadiness adds a check to /v1/readyz (e.g. media server connected).
func WithReadiness(check func(ctx context.Context) error) Option {
	return func(s *Server) { s.readyFns = append(s.readyFns, check) }
}

// WithAgentChanged is called after the API changed an agent's statuses or
// presence, so routing can offer waiting calls to a newly available agent
// at once instead of on its next tick.
func WithAgentChanged(f func()) Option { return func(s *Server) { s.changed = f } }

// New builds the API over the agent service and store.
func New(agents *presence.Service, store state.Store, opts ...Option) *Server {
	s := &Server{echo: echo.New(), agents: agents, store: store, log: slog.Default()}
	for _, o := range opts {
		o(s)
	}
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.Use(recoverJSON(s.log))

	v1 := e.Group("/v1")
	v1.GET("/healthz", s.healthz)
	v1.GET("/readyz", s.readyz)
	v1.GET("/openapi.json", serveOpenAPI)
	auth := s.authenticate
	s.mountAgents(v1, auth)
	for _, m := range s.mounts {
		m(v1, auth)
	}
	mountDashboard(e)
	return s
}

// Handler is the HTTP handler.
func (s *Server) Handler() http.Handler { return s.echo }

// Echo exposes the router (tests list its routes against the OpenAPI document).
func (s *Server) Echo() *echo.Echo { return s.echo }

func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		return Errorf(http.StatusServiceUnavailable, "store_unavailable", "store unreachable: "+err.Error())
	}
	for _, f := range s.readyFns {
		if err := f(ctx); err != nil {
			return Errorf(http.StatusServiceUnavailable, "not_ready", err.Error())
		}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready"})
}

const actorKey = "callfloor.actor"

// authenticate resolves "Authorization: Bearer <token>" to an actor.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || token == "" {
			// EventSource cannot set headers; the stream also accepts ?access_token=.
			token = c.QueryParam("access_token")
		}
		if token == "" {
			return Errorf(http.StatusUnauthorized, "unauthenticated", "send Authorization: Bearer <token>")
		}
		actor, err := s.agents.Authenticate(c.Request().Context(), strings.TrimSpace(token))
		if err != nil {
			return err
		}
		c.Set(actorKey, actor)
		return next(c)
	}
}

// ActorOf returns the authenticated actor of a request.
func ActorOf(c echo.Context) presence.Actor {
	a, _ := c.Get(actorKey).(presence.Actor)
	return a
}

// recoverJSON turns a handler panic into a logged 500 in API.md's shape
// instead of a dropped connection.
func recoverJSON(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) (err error) {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					log.Error("handler panic", "path", c.Path(), "panic", r)
					err = Errorf(http.StatusInternalServerError, "internal", "internal error")
				}
			}()
			return next(c)
		}
	}
}
