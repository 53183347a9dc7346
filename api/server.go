// Package api serves callfloor's REST + Server-Sent Events API (API.md)
// and the embedded dashboard over echo. Handlers are thin: they parse and
// validate the wire format, call the core (presence, routing), and map the
// core's sentinel errors to API.md's error shape.
package api

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// Server is the HTTP API.
type Server struct {
	echo      *echo.Echo
	agents    *presence.Service
	store     state.Store
	log       *slog.Logger
	mounts    []func(*echo.Group, echo.MiddlewareFunc)
	readyFns  []func(ctx context.Context) error
	changed   func()
	limits    Limits
	rate      *rateLimiter
	authCache *authCache
	// stale keeps the last answer of each live-floor read for outages.
	stale *staleCache
	admin []adminHandler
}

type adminHandler struct {
	path string
	h    http.Handler
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

// WithAdminHandler serves h at path, outside /v1 (e.g. "/metrics",
// "/debug/pprof/*"), to admin tokens only: operational data and profiles
// are not for agents or supervisors (README.md, Metrics and profiles).
func WithAdminHandler(path string, h http.Handler) Option {
	return func(s *Server) { s.admin = append(s.admin, adminHandler{path: path, h: h}) }
}

// WithAgentChanged is called after the API changed an agent's statuses or
// presence, so routing can offer waiting calls to a newly available agent
// at once instead of on its next tick.
func WithAgentChanged(f func()) Option { return func(s *Server) { s.changed = f } }

// New builds the API over the agent service and store.
func New(agents *presence.Service, store state.Store, opts ...Option) *Server {
	s := &Server{echo: echo.New(), agents: agents, store: store, log: slog.Default(), limits: DefaultLimits()}
	for _, o := range opts {
		o(s)
	}
	s.rate = newRateLimiter(s.limits.RequestsPerSecond, s.limits.Burst)
	s.authCache = newAuthCache(authCacheTTL, time.Now)
	s.stale = newStaleCache(time.Now)
	e := s.echo
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = errorHandler(s.log)
	e.Use(recoverJSON(s.log), bodyLimit(max(s.limits.MaxBodyBytes, 1)))

	v1 := e.Group("/v1")
	v1.GET("/healthz", s.healthz)
	v1.GET("/readyz", s.readyz)
	v1.GET("/openapi.json", serveOpenAPI)
	// Reads of the live floor are kept for an outage (stale.go).
	auth := func(next echo.HandlerFunc) echo.HandlerFunc { return s.authenticate(s.staleReads(next)) }
	s.mountAgents(v1, auth)
	for _, m := range s.mounts {
		m(v1, auth)
	}
	// Unknown /v1 paths are API 404s in API.md's shape, not the
	// dashboard's plain-text file-not-found; echo routes a known path with
	// an unknown method here too, which is a 405.
	v1.Any("/*", s.noRoute)
	for _, a := range s.admin {
		e.Any(a.path, echo.WrapHandler(a.h), auth, adminOnly)
	}
	mountDashboard(e)
	return s
}

// noRoute answers a /v1 request no route takes: 405 with Allow when the
// path exists for other methods, else 404.
func (s *Server) noRoute(c echo.Context) error {
	var allow []string
	for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := s.echo.NewContext(c.Request(), nil)
		s.echo.Router().Find(m, c.Request().URL.Path, probe)
		if p := probe.Path(); p != "" && p != "/v1/*" {
			allow = append(allow, m)
		}
	}
	if len(allow) == 0 {
		return Errorf(http.StatusNotFound, "not_found", "no such endpoint; see /v1/openapi.json")
	}
	if slices.Contains(allow, http.MethodGet) {
		allow = append(allow, http.MethodHead)
	}
	c.Response().Header().Set("Allow", strings.Join(allow, ", "))
	return Errorf(http.StatusMethodNotAllowed, "method_not_allowed", c.Request().Method+" is not allowed here; allowed: "+strings.Join(allow, ", "))
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

// eventsPath is the one endpoint that takes ?access_token=: EventSource
// cannot set headers. Anywhere else a token in the URL would end up in
// logs and browser history, so it is refused.
const eventsPath = "/v1/events"

// authenticate resolves "Authorization: Bearer <token>" to an actor,
// within the token's request budget.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		token, ok := strings.CutPrefix(h, "Bearer ")
		token = strings.TrimSpace(token)
		if qt := c.QueryParam("access_token"); qt != "" {
			if c.Path() != eventsPath {
				return &Error{Status: http.StatusBadRequest, Code: "access_token_not_allowed", Field: "access_token",
					Message: "?access_token= is accepted only on /v1/events; send Authorization: Bearer <token>"}
			}
			if !ok || token == "" {
				token = strings.TrimSpace(qt)
			}
		}
		if token == "" {
			return Errorf(http.StatusUnauthorized, "unauthenticated", "send Authorization: Bearer <token>")
		}
		if s.rate != nil {
			if ok, wait := s.rate.allow("t:" + presence.HashToken(token)); !ok {
				return rateLimited(wait)
			}
		}
		actor, err := s.authCache.authenticate(c.Request().Context(), s.agents, token)
		if err != nil {
			return err
		}
		c.Set(actorKey, actor)
		c.Set(tokenKey, token)
		return next(c)
	}
}

func adminOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !ActorOf(c).IsAdmin() {
			return Errorf(http.StatusForbidden, "forbidden", "admins only")
		}
		return next(c)
	}
}

const tokenKey = "callfloor.token"

// tokenOf is the bearer token a request authenticated with (event streams
// re-check it).
func tokenOf(c echo.Context) string {
	t, _ := c.Get(tokenKey).(string)
	return t
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
