package webhook_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/webhook"
)

func TestSignVerify(t *testing.T) {
	now := time.Unix(1763700000, 0)
	body := []byte(`{"id":"1","type":"agent"}`)
	h := webhook.Sign("s3cret-s3cret-s3cret", now, body)
	if !strings.HasPrefix(h, "t=1763700000,v1=") || len(h) != len("t=1763700000,v1=")+64 {
		t.Fatalf("header %q", h)
	}
	if err := webhook.Verify("s3cret-s3cret-s3cret", h, body, now.Add(time.Minute), 5*time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		secret, header string
		body           string
		at             time.Time
		want           error
	}{
		"other secret":   {"another-secret-xx", h, string(body), now, webhook.ErrBadSignature},
		"body changed":   {"s3cret-s3cret-s3cret", h, `{"id":"2","type":"agent"}`, now, webhook.ErrBadSignature},
		"stale":          {"s3cret-s3cret-s3cret", h, string(body), now.Add(time.Hour), webhook.ErrStale},
		"no v1":          {"s3cret-s3cret-s3cret", "t=1763700000", string(body), now, webhook.ErrMalformed},
		"no t":           {"s3cret-s3cret-s3cret", h[strings.Index(h, "v1="):], string(body), now, webhook.ErrMalformed},
		"short v1":       {"s3cret-s3cret-s3cret", "t=1763700000,v1=abcd", string(body), now, webhook.ErrMalformed},
		"timestamp lies": {"s3cret-s3cret-s3cret", strings.Replace(h, "t=1763700000", "t=1763700001", 1), string(body), now, webhook.ErrBadSignature},
	} {
		if err := webhook.Verify(tc.secret, tc.header, []byte(tc.body), tc.at, 5*time.Minute); !errors.Is(err, tc.want) {
			t.Errorf("%s: err %v, want %v", name, err, tc.want)
		}
	}
	// Rotation: a second v1 with the new secret verifies too.
	rotated := h + "," + webhook.Sign("new-secret-new-secret", now, body)[len("t=1763700000,"):]
	if err := webhook.Verify("new-secret-new-secret", rotated, body, now, time.Minute); err != nil {
		t.Fatalf("rotated: %v", err)
	}
}

func FuzzParseSignature(f *testing.F) {
	f.Add("t=1763700000,v1=" + strings.Repeat("ab", 32))
	f.Add("t=1,v1=00,v0=zz")
	f.Add(",,=")
	f.Add("t=-1,v1=")
	f.Fuzz(func(t *testing.T, header string) {
		ts, sigs, err := webhook.ParseSignature(header)
		if err != nil {
			if !errors.Is(err, webhook.ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		if ts < 0 || len(sigs) == 0 {
			t.Fatalf("accepted %q: ts %d, %d sigs", header, ts, len(sigs))
		}
		for _, s := range sigs {
			if len(s) != 32 {
				t.Fatalf("signature of %d bytes", len(s))
			}
		}
	})
}
