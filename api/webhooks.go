package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/webhook"
)

// WebhookRoutes serves the admin-only webhook registry:
// POST/GET /v1/webhooks, GET/DELETE /v1/webhooks/{id} and
// GET /v1/webhooks/{id}/deliveries. Mount with WithRoutes.
func WebhookRoutes(reg *webhook.Registry) func(v1 *echo.Group, auth echo.MiddlewareFunc) {
	h := webhookHandlers{reg: reg}
	return func(v1 *echo.Group, auth echo.MiddlewareFunc) {
		g := v1.Group("", auth)
		g.POST("/webhooks", h.create)
		g.GET("/webhooks", h.list)
		g.GET("/webhooks/:id", h.get)
		g.DELETE("/webhooks/:id", h.delete)
		g.GET("/webhooks/:id/deliveries", h.deliveries)
	}
}

type webhookHandlers struct{ reg *webhook.Registry }

func (h webhookHandlers) create(c echo.Context) error {
	var in webhook.Input
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	hook, err := h.reg.Create(c.Request().Context(), ActorOf(c), in)
	if err != nil {
		return err
	}
	// The only time the secret is shown.
	return c.JSON(http.StatusCreated, hook)
}

func (h webhookHandlers) list(c echo.Context) error {
	hooks, err := h.reg.List(c.Request().Context(), ActorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, hooks)
}

func (h webhookHandlers) get(c echo.Context) error {
	hook, err := h.reg.Get(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, hook)
}

func (h webhookHandlers) delete(c echo.Context) error {
	if err := h.reg.Delete(c.Request().Context(), ActorOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (h webhookHandlers) deliveries(c echo.Context) error {
	ds, err := h.reg.Deliveries(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, ds)
}
