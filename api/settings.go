package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/presence"
)

// getSettings: the account's floor settings (admins and supervisors).
func (s *Server) getSettings(c echo.Context) error {
	set, err := s.agents.GetSettings(c.Request().Context(), ActorOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, set)
}

// putSettings changes them (admins).
func (s *Server) putSettings(c echo.Context) error {
	var in presence.SettingsInput
	if err := bindJSON(c, &in); err != nil {
		return err
	}
	set, err := s.agents.UpdateSettings(c.Request().Context(), ActorOf(c), in)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, set)
}
