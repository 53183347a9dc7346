package api

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/state"
)

// TestStatusOfEverySentinel: each error the core returns maps to the
// status API.md gives it; only an unknown error is a 500.
func TestStatusOfEverySentinel(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("context: %w", err) }
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{wrap(presence.ErrUnauthenticated), 401, "unauthenticated"},
		{wrap(presence.ErrForbidden), 403, "forbidden"},
		{wrap(presence.ErrNotFound), 404, "not_found"},
		{wrap(presence.ErrConflict), 409, "conflict"},
		{wrap(presence.ErrUnprocessable), 422, "unprocessable"},
		{wrap(presence.ErrInvalid), 400, "invalid"},
		{&presence.FieldError{Field: "phone", Reason: "not E.164", Class: presence.ErrUnprocessable}, 422, "unprocessable_phone"},
		{&presence.FieldError{Field: "email", Reason: "bad", Class: presence.ErrInvalid}, 400, "invalid_email"},
		{wrap(media.ErrNotSupported), 501, "not_supported"},
		{wrap(media.ErrMediaUnavailable), 503, "media_unavailable"},
		{wrap(media.ErrUnreachable), 409, "unreachable"},
		{wrap(state.ErrConflict), 409, "conflict"},
		{wrap(context.DeadlineExceeded), 503, "timeout"},
		{errors.New("disk on fire"), 500, "internal"},
	}
	for _, c := range cases {
		got := statusOf(c.err)
		if got.Status != c.status || got.Code != c.code {
			t.Errorf("%v → %d %s, want %d %s", c.err, got.Status, got.Code, c.status, c.code)
		}
	}
}
