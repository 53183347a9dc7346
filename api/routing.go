package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// RoutingRoutes serves API.md's Calls, Queues and Counters sections over
// the routing engine. Wire it with api.WithRoutes(api.RoutingRoutes(e)).
func RoutingRoutes(e *routing.Engine, opts ...RoutingOption) func(v1 *echo.Group, auth echo.MiddlewareFunc) {
	h := routingHandlers{e: e}
	for _, o := range opts {
		o(&h)
	}
	return func(v1 *echo.Group, auth echo.MiddlewareFunc) {
		g := v1.Group("", auth)
		g.GET("/calls", h.listCalls)
		g.GET("/calls/:id", h.getCall)
		// Call commands act on the media server: run by the replica that
		// drives it (relayed there when that is another one).
		cmd := h.relayed
		g.POST("/calls", h.originate, cmd)
		g.POST("/calls/:id/listen", h.monitor(media.MonitorListen), cmd)
		g.POST("/calls/:id/whisper", h.monitor(media.MonitorWhisper), cmd)
		g.POST("/calls/:id/barge", h.monitor(media.MonitorBarge), cmd)
		g.POST("/calls/:id/takeover", h.takeover, cmd)
		g.POST("/calls/:id/transfer", h.transfer, cmd)
		g.POST("/calls/:id/hangup", h.hangup, cmd)

		g.POST("/monitors/:id/pause", h.monitorAction((*routing.Engine).PauseMonitor), cmd)
		g.POST("/monitors/:id/resume", h.monitorAction((*routing.Engine).ResumeMonitor), cmd)
		g.POST("/monitors/:id/barge", h.monitorAction((*routing.Engine).BargeMonitor), cmd)
		g.DELETE("/monitors/:id", h.endMonitor, cmd)

		g.GET("/queues", h.listQueues)
		g.POST("/queues", h.createQueue)
		g.GET("/queues/:id", h.getQueue)
		g.PATCH("/queues/:id", h.patchQueue)
		g.DELETE("/queues/:id", h.deleteQueue)

		g.GET("/stats/today", h.statsToday)
	}
}

type routingHandlers struct {
	e     *routing.Engine
	relay *commandRelay
}

// routingErr maps what statusOf does not know: a stopped engine is a
// temporary unavailability, not an internal error.
func routingErr(err error) error {
	if errors.Is(err, routing.ErrStopped) {
		return Errorf(http.StatusServiceUnavailable, "routing_unavailable", "the routing engine is not running")
	}
	return err
}

// bindOptionalJSON is bindJSON for endpoints whose body may be absent.
func bindOptionalJSON(c echo.Context, v any) error {
	r := c.Request()
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return Errorf(http.StatusBadRequest, "invalid_body", "could not read the request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	return bindJSON(c, v)
}

func (h routingHandlers) listCalls(c echo.Context) error {
	q := c.QueryParams()
	list, err := h.e.Calls(c.Request().Context(), ActorOf(c), routing.CallFilter{
		Queue: q.Get("queue"), Direction: q.Get("direction"), Agent: q.Get("agent"), State: q.Get("state"),
	})
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, list)
}

func (h routingHandlers) getCall(c echo.Context) error {
	v, err := h.e.Call(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, v)
}

type originateBody struct {
	Agent    string `json:"agent"`
	Number   string `json:"number"`
	Campaign string `json:"campaign"`
}

func (h routingHandlers) originate(c echo.Context) error {
	var b originateBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	if b.Number == "" {
		return &Error{Status: http.StatusBadRequest, Code: "invalid_number", Field: "number", Message: "number: is required"}
	}
	v, err := h.e.Originate(c.Request().Context(), ActorOf(c), b.Agent, b.Number, b.Campaign)
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusCreated, v)
}

type monitorBody struct {
	Device string `json:"device"`
}

func (h routingHandlers) monitor(mode media.MonitorMode) echo.HandlerFunc {
	return func(c echo.Context) error {
		var b monitorBody
		if err := bindOptionalJSON(c, &b); err != nil {
			return err
		}
		m, err := h.e.StartMonitor(c.Request().Context(), ActorOf(c), c.Param("id"), mode, b.Device)
		if err != nil {
			return routingErr(err)
		}
		return c.JSON(http.StatusCreated, m)
	}
}

func (h routingHandlers) monitorAction(act func(*routing.Engine, context.Context, presence.Actor, string) (routing.MonitorView, error)) echo.HandlerFunc {
	return func(c echo.Context) error {
		m, err := act(h.e, c.Request().Context(), ActorOf(c), c.Param("id"))
		if err != nil {
			return routingErr(err)
		}
		return c.JSON(http.StatusOK, m)
	}
}

func (h routingHandlers) endMonitor(c echo.Context) error {
	if _, err := h.e.EndMonitor(c.Request().Context(), ActorOf(c), c.Param("id")); err != nil {
		return routingErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h routingHandlers) takeover(c echo.Context) error {
	v, err := h.e.TakeOver(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, v)
}

type transferBody struct {
	Agent string `json:"agent"`
}

func (h routingHandlers) transfer(c echo.Context) error {
	var b transferBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	v, err := h.e.Transfer(c.Request().Context(), ActorOf(c), c.Param("id"), b.Agent)
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, v)
}

func (h routingHandlers) hangup(c echo.Context) error {
	v, err := h.e.Hangup(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, v)
}

func (h routingHandlers) listQueues(c echo.Context) error {
	list, err := h.e.Queues(c.Request().Context(), ActorOf(c))
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, list)
}

func (h routingHandlers) getQueue(c echo.Context) error {
	v, err := h.e.Queue(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, v)
}

func (h routingHandlers) createQueue(c echo.Context) error {
	var in routing.QueueInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	q, err := h.e.CreateQueue(c.Request().Context(), ActorOf(c), in)
	if err != nil {
		return routingErr(err)
	}
	v, err := h.e.Queue(c.Request().Context(), ActorOf(c), q.ID)
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusCreated, v)
}

func (h routingHandlers) patchQueue(c echo.Context) error {
	var in routing.QueueInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	q, err := h.e.UpdateQueue(c.Request().Context(), ActorOf(c), c.Param("id"), in)
	if err != nil {
		return routingErr(err)
	}
	v, err := h.e.Queue(c.Request().Context(), ActorOf(c), q.ID)
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, v)
}

func (h routingHandlers) deleteQueue(c echo.Context) error {
	if err := h.e.DeleteQueue(c.Request().Context(), ActorOf(c), c.Param("id")); err != nil {
		return routingErr(err)
	}
	return c.NoContent(http.StatusNoContent)
}

func (h routingHandlers) statsToday(c echo.Context) error {
	s, err := h.e.Stats(c.Request().Context(), ActorOf(c), c.QueryParam("queue"), c.QueryParam("group"))
	if err != nil {
		return routingErr(err)
	}
	return c.JSON(http.StatusOK, s)
}
