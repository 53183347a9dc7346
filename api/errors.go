package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
)

// Error is API.md's error body: {"error": {"code", "message"}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

type errorBody struct {
	Error *Error `json:"error"`
}

// Errorf builds an API error.
func Errorf(status int, code, message string) *Error {
	return &Error{Status: status, Code: code, Message: message}
}

// statusOf maps core sentinel errors to HTTP statuses and codes. Anything
// unrecognised is a 500, which never happens for bad input: every input
// check returns a FieldError or a sentinel.
func statusOf(err error) *Error {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr
	}
	var fe *presence.FieldError
	if errors.As(err, &fe) {
		st, code := http.StatusBadRequest, "invalid_"+fe.Field
		if errors.Is(fe.Class, presence.ErrUnprocessable) {
			st, code = http.StatusUnprocessableEntity, "unprocessable_"+fe.Field
		}
		return &Error{Status: st, Code: code, Message: fe.Error(), Field: fe.Field}
	}
	msg := err.Error()
	switch {
	case errors.Is(err, presence.ErrUnauthenticated):
		return &Error{Status: http.StatusUnauthorized, Code: "unauthenticated", Message: msg}
	case errors.Is(err, presence.ErrForbidden):
		return &Error{Status: http.StatusForbidden, Code: "forbidden", Message: msg}
	case errors.Is(err, presence.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: "not_found", Message: msg}
	case errors.Is(err, presence.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: msg}
	case errors.Is(err, presence.ErrUnprocessable):
		return &Error{Status: http.StatusUnprocessableEntity, Code: "unprocessable", Message: msg}
	case errors.Is(err, presence.ErrInvalid):
		return &Error{Status: http.StatusBadRequest, Code: "invalid", Message: msg}
	case errors.Is(err, routing.ErrNotSupported):
		return &Error{Status: http.StatusNotImplemented, Code: "not_supported", Message: msg}
	case errors.Is(err, routing.ErrUnreachable):
		return &Error{Status: http.StatusConflict, Code: "unreachable", Message: msg}
	case errors.Is(err, routing.ErrMediaUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: "media_unavailable", Message: msg}
	case errors.Is(err, state.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: "changed concurrently, retry"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: "timeout", Message: "request cancelled or timed out"}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

// errorHandler renders every error in API.md's shape, including echo's
// own (404 route, 405 method, bad bind).
func errorHandler(log *slog.Logger) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		var he *echo.HTTPError
		var e *Error
		if errors.As(err, &he) {
			e = &Error{Status: he.Code, Code: strings.ToLower(strings.ReplaceAll(http.StatusText(he.Code), " ", "_")), Message: errString(he.Message)}
			if e.Message == "" {
				e.Message = http.StatusText(he.Code)
			}
		} else {
			e = statusOf(err)
		}
		if e.Status >= 500 && e.Status != http.StatusNotImplemented && e.Status != http.StatusServiceUnavailable {
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(), "err", err)
		}
		_ = c.JSON(e.Status, errorBody{Error: e})
	}
}

func errString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if e, ok := v.(error); ok {
		return e.Error()
	}
	return ""
}

// maxBody bounds JSON request bodies; nothing in the API is larger.
const maxBody = 1 << 20

// bindJSON decodes the body strictly: unknown fields and trailing data are
// 400s naming the problem, so a typo never silently does nothing.
func bindJSON(c echo.Context, v any) error {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
	}
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBody+1))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "invalid_json", "body has data after the JSON object")
	}
	return nil
}

func jsonError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "invalid_json", "request body is empty; send a JSON object")
	case errors.As(err, &typeErr):
		return &Error{Status: http.StatusBadRequest, Code: "invalid_" + typeErr.Field, Field: typeErr.Field,
			Message: typeErr.Field + ": must be " + typeErr.Type.String() + ", got " + typeErr.Value}
	case errors.As(err, &syntaxErr):
		return Errorf(http.StatusBadRequest, "invalid_json", "malformed JSON: "+syntaxErr.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Status: http.StatusBadRequest, Code: "unknown_field", Field: f, Message: "unknown field " + f}
	}
	return Errorf(http.StatusBadRequest, "invalid_json", "malformed JSON: "+err.Error())
}
