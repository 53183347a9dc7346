package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader carries the delivery signature.
const SignatureHeader = "X-Callfloor-Signature"

// Signature errors a receiver can branch on.
var (
	ErrBadSignature = errors.New("webhook: signature does not match")
	ErrMalformed    = errors.New("webhook: malformed signature header")
	ErrStale        = errors.New("webhook: signature timestamp outside tolerance")
)

// Sign returns the header value for body sent at t:
// "t=<unix>,v1=<hex HMAC-SHA256(secret, "<unix>.<body>")>".
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// ParseSignature splits a header into its timestamp and v1 signatures
// (several v1 values are allowed, for secret rotation).
func ParseSignature(header string) (ts int64, sigs [][]byte, err error) {
	haveTS := false
	for _, part := range strings.Split(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return 0, nil, fmt.Errorf("%w: %q", ErrMalformed, part)
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 || haveTS {
				return 0, nil, fmt.Errorf("%w: timestamp %q", ErrMalformed, v)
			}
			ts, haveTS = n, true
		case "v1":
			b, err := hex.DecodeString(v)
			if err != nil || len(b) != sha256.Size {
				return 0, nil, fmt.Errorf("%w: v1 %q", ErrMalformed, v)
			}
			sigs = append(sigs, b)
		default:
			// Unknown schemes are ignored so new ones can be added.
		}
	}
	if !haveTS || len(sigs) == 0 {
		return 0, nil, fmt.Errorf("%w: needs t= and v1=", ErrMalformed)
	}
	return ts, sigs, nil
}

// Verify checks a delivery: the header parses, one v1 signature matches
// body under secret, and its timestamp is within tolerance of now (replay
// protection; tolerance <= 0 skips that check).
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	ts, sigs, err := ParseSignature(header)
	if err != nil {
		return err
	}
	if tolerance > 0 {
		if d := now.Sub(time.Unix(ts, 0)); d > tolerance || d < -tolerance {
			return fmt.Errorf("%w: %s", ErrStale, d)
		}
	}
	want := mac(secret, strconv.FormatInt(ts, 10), body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrBadSignature
}
