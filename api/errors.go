package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// Error is API.md's error body: {"error": {"code", "message"}}.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
	// retryAfter, when set, is sent as Retry-After (seconds): 429, 503.
	retryAfter int
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
	case errors.Is(err, state.ErrUnavailable):
		// Checked first: whatever the request was, the store decides it and
		// is away. The same request can be repeated once it is back.
		return &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
			Message: "the state store is unreachable; retry shortly", retryAfter: storeRetryAfter}
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
	case errors.Is(err, media.ErrNotSupported):
		return &Error{Status: http.StatusNotImplemented, Code: "not_supported", Message: msg}
	case errors.Is(err, media.ErrUnreachable):
		return &Error{Status: http.StatusConflict, Code: "unreachable", Message: msg}
	case errors.Is(err, media.ErrMediaUnavailable):
		return &Error{Status: http.StatusServiceUnavailable, Code: "media_unavailable", Message: msg}
	case errors.Is(err, state.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "conflict", Message: "changed concurrently, retry"}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: "timeout", Message: "request cancelled or timed out"}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "internal", Message: "internal error"}
}

// storeRetryAfter is the Retry-After (seconds) of a store_unavailable.
const storeRetryAfter = 2

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
		e.Code = snakeCode(e.Code)
		if e.retryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(e.retryAfter))
		}
		if e.Status == http.StatusMethodNotAllowed && c.Response().Header().Get("Allow") == "" {
			if allow, ok := c.Get(echo.ContextKeyHeaderAllow).(string); ok && allow != "" {
				c.Response().Header().Set("Allow", allow)
			}
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

// snakeCode forces an error code into API.md's pattern [a-z][a-z0-9_]*:
// codes built from field paths ("invalid_GroupPatch.name", "groups[0]")
// become "invalid_group_patch_name", "groups_0".
func snakeCode(code string) string {
	var b strings.Builder
	prevUnderscore := true // no leading underscore
	for i, r := range code {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			b.WriteRune(r)
			prevUnderscore = false
		case r >= 'A' && r <= 'Z':
			if i > 0 && !prevUnderscore && !(code[i-1] >= 'A' && code[i-1] <= 'Z') {
				b.WriteByte('_')
			}
			b.WriteRune(r + ('a' - 'A'))
			prevUnderscore = false
		default:
			if !prevUnderscore {
				b.WriteByte('_')
				prevUnderscore = true
			}
		}
	}
	out := strings.TrimRight(b.String(), "_")
	if out == "" || out[0] < 'a' || out[0] > 'z' {
		out = "error_" + out
	}
	return strings.TrimRight(out, "_")
}

// maxBody bounds JSON request bodies; nothing in the API is larger.
const maxBody = 1 << 20

// bindJSON decodes the body strictly: unknown fields, fields spelt in
// another case, duplicate fields, a body that is not one JSON object
// (null, an array), invalid UTF-8 and trailing data are 400s naming the
// problem, so a typo never silently does nothing; a body over the limit
// is 413.
func bindJSON(c echo.Context, v any) error {
	r := c.Request()
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return Errorf(http.StatusUnsupportedMediaType, "unsupported_media_type", "send Content-Type: application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return tooLarge(tooBig.Limit)
	case err != nil:
		return Errorf(http.StatusBadRequest, "invalid_body", "could not read the request body")
	case len(body) > maxBody:
		return tooLarge(maxBody)
	}
	if err := checkJSON(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return Errorf(http.StatusBadRequest, "invalid_json", "body has data after the JSON object")
	}
	return nil
}

// checkJSON is what encoding/json lets through: it must be valid UTF-8
// (no replacement characters, so no lone surrogate escapes either), one
// object, with no key twice in any object and top-level keys in exactly
// the case of t's fields.
func checkJSON(body []byte, t reflect.Type) error {
	if !utf8.Valid(body) {
		return Errorf(http.StatusBadRequest, "invalid_json", "body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	first, err := dec.Token()
	if err != nil {
		return jsonError(err)
	}
	if d, ok := first.(json.Delim); !ok || d != '{' {
		return Errorf(http.StatusBadRequest, "invalid_json", "body must be a JSON object")
	}
	names := fieldNames(t)
	type level struct {
		keys    map[string]bool
		object  bool
		wantKey bool
	}
	stack := []level{{keys: map[string]bool{}, object: true, wantKey: true}}
	for len(stack) > 0 {
		tok, err := dec.Token()
		if err != nil {
			return jsonError(err)
		}
		top := &stack[len(stack)-1]
		if s, ok := tok.(string); ok && strings.ContainsRune(s, utf8.RuneError) {
			return Errorf(http.StatusBadRequest, "invalid_json", "body has an invalid character escape or U+FFFD")
		}
		if top.object && top.wantKey {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					stack[len(stack)-1].wantKey = true
				}
				continue
			}
			key := tok.(string)
			if top.keys[key] {
				return &Error{Status: http.StatusBadRequest, Code: "duplicate_field", Field: key, Message: "field " + key + " appears twice"}
			}
			top.keys[key] = true
			if len(stack) == 1 && names != nil && !names[key] {
				for n := range names {
					if strings.EqualFold(n, key) {
						return &Error{Status: http.StatusBadRequest, Code: "unknown_field", Field: key,
							Message: "unknown field " + key + " (field names are case-sensitive: " + n + ")"}
					}
				}
			}
			top.wantKey = false
			continue
		}
		switch d, _ := tok.(json.Delim); d {
		case '{':
			stack = append(stack, level{keys: map[string]bool{}, object: true, wantKey: true})
			continue
		case '[':
			stack = append(stack, level{})
			continue
		case ']':
			stack = stack[:len(stack)-1]
		}
		if len(stack) > 0 && stack[len(stack)-1].object {
			stack[len(stack)-1].wantKey = true
		}
	}
	return nil
}

var fieldNameCache sync.Map // reflect.Type → map[string]bool

// fieldNames are the JSON names of the struct t points to (nil when t is
// not a struct pointer), including embedded structs' fields.
func fieldNames(t reflect.Type) map[string]bool {
	if t == nil || t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	if v, ok := fieldNameCache.Load(t); ok {
		return v.(map[string]bool)
	}
	out := map[string]bool{}
	var walk func(st reflect.Type)
	walk = func(st reflect.Type) {
		for i := range st.NumField() {
			f := st.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "-" {
				continue
			}
			if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
				walk(f.Type)
				continue
			}
			if !f.IsExported() {
				continue
			}
			if name == "" {
				name = f.Name
			}
			out[name] = true
		}
	}
	walk(t.Elem())
	fieldNameCache.Store(t, out)
	return out
}

func jsonError(err error) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.Is(err, io.EOF):
		return Errorf(http.StatusBadRequest, "invalid_json", "request body is empty; send a JSON object")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return Errorf(http.StatusBadRequest, "invalid_json", "malformed JSON: unexpected end of body")
	case errors.As(err, &typeErr):
		// Field is the path from the root, prefixed with the Go struct's
		// name on some versions ("GroupPatch.name"): keep the wire path.
		field := strings.TrimPrefix(typeErr.Field, typeErr.Struct+".")
		return &Error{Status: http.StatusBadRequest, Code: "invalid_" + field, Field: field,
			Message: field + ": must be " + typeErr.Type.String() + ", got " + typeErr.Value}
	case errors.As(err, &syntaxErr):
		return Errorf(http.StatusBadRequest, "invalid_json", "malformed JSON: "+syntaxErr.Error())
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		f := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Status: http.StatusBadRequest, Code: "unknown_field", Field: f, Message: "unknown field " + f}
	}
	return Errorf(http.StatusBadRequest, "invalid_json", "malformed JSON: "+err.Error())
}
