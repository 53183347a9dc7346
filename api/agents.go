package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/presence"
)

// mountAgents serves API.md's Agents, Statuses and Groups sections.
func (s *Server) mountAgents(v1 *echo.Group, auth echo.MiddlewareFunc) {
	g := v1.Group("", auth)
	g.GET("/me", s.me)
	g.GET("/agents", s.listAgents)
	g.POST("/agents", s.createAgent)
	g.GET("/agents/:id", s.getAgent)
	g.PATCH("/agents/:id", s.patchAgent)
	g.DELETE("/agents/:id", s.deleteAgent)
	g.PUT("/agents/:id/status", s.putStatus)
	g.POST("/agents/:id/logout", s.logout)
	g.POST("/agents/:id/heartbeat", s.heartbeat)
	g.POST("/agents/:id/wrapup/end", s.endWrapUp)
	g.POST("/agents/:id/idle", s.goIdle)
	g.GET("/agents/:id/history", s.history)

	g.GET("/statuses", s.listStatuses)
	g.POST("/statuses", s.createStatus)
	g.DELETE("/statuses/:id", s.deleteStatus)

	g.GET("/settings", s.getSettings)
	g.PUT("/settings", s.putSettings)

	g.GET("/groups", s.listGroups)
	g.POST("/groups", s.createGroup)
	g.PATCH("/groups/:id", s.patchGroup)
	g.DELETE("/groups/:id", s.deleteGroup)
}

func (s *Server) view(a presence.Agent) presence.AgentView {
	return a.View(s.agents.Now(), s.agents.Location())
}

// agentChanged renders the agent after a status/presence change and tells
// routing about it.
func (s *Server) agentChanged(c echo.Context, a presence.Agent) error {
	if s.changed != nil {
		s.changed()
	}
	return c.JSON(http.StatusOK, s.view(a))
}

// meView is the caller's own record plus what their role lets them see.
type meView struct {
	presence.AgentView
	Supervises []string `json:"supervises"`
}

func (s *Server) me(c echo.Context) error {
	act := ActorOf(c)
	a, err := s.agents.Agent(c.Request().Context(), act.ID)
	if err != nil {
		return err
	}
	sup := act.Supervises
	if sup == nil {
		sup = []string{}
	}
	return c.JSON(http.StatusOK, meView{AgentView: s.view(a), Supervises: sup})
}

func (s *Server) listAgents(c echo.Context) error {
	q := c.QueryParams()
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	list, next, err := s.agents.ListPage(c.Request().Context(), ActorOf(c), presence.Filter{
		Group: q.Get("group"), Online: q.Get("online"), CallStatus: q.Get("call_status"),
		ChatStatus: q.Get("chat_status"), SystemStatus: q.Get("system_status"),
	}, q.Get("cursor"), limit)
	if err != nil {
		return err
	}
	out := make([]presence.AgentView, 0, len(list))
	for _, a := range list {
		out = append(out, s.view(a))
	}
	setNextPage(c, next)
	return c.JSON(http.StatusOK, out)
}

func (s *Server) getAgent(c echo.Context) error {
	a, err := s.agents.Get(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.view(a))
}

func (s *Server) createAgent(c echo.Context) error {
	var in presence.AgentInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	a, err := s.agents.CreateAgent(c.Request().Context(), ActorOf(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, s.view(a))
}

func (s *Server) patchAgent(c echo.Context) error {
	var in presence.AgentInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	a, err := s.agents.UpdateAgent(c.Request().Context(), ActorOf(c), c.Param("id"), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, s.view(a))
}

func (s *Server) deleteAgent(c echo.Context) error {
	if err := s.agents.DeleteAgent(c.Request().Context(), ActorOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type statusBody struct {
	CallStatus *string `json:"call_status"`
	ChatStatus *string `json:"chat_status"`
}

func (s *Server) putStatus(c echo.Context) error {
	var b statusBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	a, err := s.agents.SetStatus(c.Request().Context(), ActorOf(c), c.Param("id"), b.CallStatus, b.ChatStatus)
	if err != nil {
		return err
	}
	return s.agentChanged(c, a)
}

func (s *Server) logout(c echo.Context) error {
	a, err := s.agents.Logout(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.agentChanged(c, a)
}

func (s *Server) heartbeat(c echo.Context) error {
	a, err := s.agents.Heartbeat(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.agentChanged(c, a)
}

func (s *Server) endWrapUp(c echo.Context) error {
	a, err := s.agents.EndWrapUp(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.agentChanged(c, a)
}

// goIdle: "go to idle" — out of rona into the default idle status.
func (s *Server) goIdle(c echo.Context) error {
	a, err := s.agents.GoIdle(c.Request().Context(), ActorOf(c), c.Param("id"))
	if err != nil {
		return err
	}
	return s.agentChanged(c, a)
}

// parseTime parses an RFC 3339 query parameter ("" = unbounded).
func parseTime(c echo.Context, name string) (time.Time, error) {
	v := c.QueryParam(name)
	if v == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, &Error{Status: http.StatusBadRequest, Code: "invalid_" + name, Field: name,
			Message: name + ": must be an RFC 3339 time like 2026-11-21T08:00:00+07:00"}
	}
	return t, nil
}

func (s *Server) history(c echo.Context) error {
	from, err := parseTime(c, "from")
	if err != nil {
		return err
	}
	to, err := parseTime(c, "to")
	if err != nil {
		return err
	}
	limit, err := parseLimit(c)
	if err != nil {
		return err
	}
	rows, next, err := s.agents.HistoryPage(c.Request().Context(), ActorOf(c), c.Param("id"), from, to, limit, c.QueryParam("cursor"))
	if err != nil {
		return err
	}
	setNextPage(c, next)
	return c.JSON(http.StatusOK, rows)
}

// parseLimit reads ?limit= (1 to presence.MaxPage; absent means the most).
func parseLimit(c echo.Context) (int, error) {
	v := c.QueryParam("limit")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > presence.MaxPage {
		return 0, &Error{Status: http.StatusBadRequest, Code: "invalid_limit", Field: "limit",
			Message: "limit: must be a whole number from 1 to " + strconv.Itoa(presence.MaxPage)}
	}
	return n, nil
}

// setNextPage tells the client where the next page starts, keeping the
// body the plain array it always was: X-Next-Cursor carries the cursor,
// Link (RFC 8288, rel="next") the whole URL. Neither is set on the last
// page.
func setNextPage(c echo.Context, next string) {
	if next == "" {
		return
	}
	u := *c.Request().URL
	q := u.Query()
	q.Set("cursor", next)
	u.RawQuery = q.Encode()
	h := c.Response().Header()
	h.Set("X-Next-Cursor", next)
	h.Set("Link", "<"+u.RequestURI()+`>; rel="next"`)
}

func (s *Server) listStatuses(c echo.Context) error {
	list, err := s.agents.CallStatuses(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

func (s *Server) createStatus(c echo.Context) error {
	var d presence.CallStatusDef
	if err := bindJSON(c, &d); err != nil {
		return err
	}
	d, err := s.agents.CreateCallStatus(c.Request().Context(), ActorOf(c), d)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, d)
}

func (s *Server) deleteStatus(c echo.Context) error {
	if err := s.agents.DeleteCallStatus(c.Request().Context(), ActorOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) listGroups(c echo.Context) error {
	list, err := s.agents.Groups(c.Request().Context(), ActorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list)
}

type groupBody struct {
	ID string `json:"id"`
	presence.GroupPatch
}

func (s *Server) createGroup(c echo.Context) error {
	var b groupBody
	if err := bindJSON(c, &b); err != nil {
		return err
	}
	g, err := s.agents.PutGroup(c.Request().Context(), ActorOf(c), b.ID, true, b.GroupPatch)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, g)
}

func (s *Server) patchGroup(c echo.Context) error {
	var p presence.GroupPatch
	if err := bindJSON(c, &p); err != nil {
		return err
	}
	g, err := s.agents.PutGroup(c.Request().Context(), ActorOf(c), c.Param("id"), false, p)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, g)
}

func (s *Server) deleteGroup(c echo.Context) error {
	if err := s.agents.DeleteGroup(c.Request().Context(), ActorOf(c), c.Param("id")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
