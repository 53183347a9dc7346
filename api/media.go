package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/labstack/echo/v4"
)

// MediaStatus is what GET /v1/media reports about the media path the
// process drives, so screens hide or disable what it cannot do (README.md,
// "Supervisor console").
type MediaStatus interface {
	// Capabilities names the path and what it cannot do, as declared
	// when it was built.
	Capabilities() media.Capabilities
	// Ready returns nil while the path is connected and usable.
	Ready(ctx context.Context) error
}

// mediaActions are the supervisor actions GET /v1/media reports, in the
// order screens show them, with the media capability each one needs.
// Hanging up needs none: every path can end a leg.
var mediaActions = []struct {
	name string
	need media.Action
}{
	{"listen", media.ActionMonitor},
	{"whisper", media.ActionMonitor},
	{"barge", media.ActionMonitor},
	{"takeover", media.ActionTakeOver},
	{"transfer", media.ActionTransfer},
	{"hangup", ""},
	{"monitor_pause", media.ActionMonitor},
	{"monitor_resume", media.ActionMonitor},
	{"monitor_barge", media.ActionMonitor},
	{"monitor_end", media.ActionMonitor},
	{"click_to_call", media.ActionClickToCall},
}

type mediaAction struct {
	Supported bool   `json:"supported"`
	Reason    string `json:"reason,omitempty"`
}

type mediaView struct {
	Path      string                 `json:"path"`
	Connected bool                   `json:"connected"`
	Reason    string                 `json:"reason,omitempty"`
	Actions   map[string]mediaAction `json:"actions"`
}

// MediaRoutes serves GET /v1/media from m (any signed-in user may read it).
// Mount it with WithRoutes(MediaRoutes(m)).
func MediaRoutes(m MediaStatus) func(v1 *echo.Group, auth echo.MiddlewareFunc) {
	return func(v1 *echo.Group, auth echo.MiddlewareFunc) {
		v1.GET("/media", func(c echo.Context) error { return c.JSON(http.StatusOK, describeMedia(c.Request().Context(), m)) }, auth)
	}
}

func describeMedia(ctx context.Context, m MediaStatus) mediaView {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	caps := m.Capabilities()
	v := mediaView{Path: caps.Path, Connected: true, Actions: make(map[string]mediaAction, len(mediaActions))}
	if err := m.Ready(ctx); err != nil {
		v.Connected, v.Reason = false, err.Error()
	}
	for _, a := range mediaActions {
		act := mediaAction{Supported: true}
		if a.need != "" {
			if err := caps.Supports(a.need); err != nil {
				act = mediaAction{Reason: reasonOf(err)}
			}
		}
		v.Actions[a.name] = act
	}
	return v
}

// reasonOf is the outermost message of a "not supported" error, without
// the sentinel's own text that %w appended.
func reasonOf(err error) string {
	if errors.Is(err, media.ErrNotSupported) {
		return strings.TrimSuffix(err.Error(), ": "+media.ErrNotSupported.Error())
	}
	return err.Error()
}
