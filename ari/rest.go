package ari

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/callfloor/callfloor/media"
)

// RESTError is a non-2xx answer from ARI, with Asterisk's own message
// (ARI answers {"error": "..."} or {"message": "..."}).
type RESTError struct {
	Method, Path string
	Status       int
	Message      string
}

func (e *RESTError) Error() string {
	return fmt.Sprintf("ari %s %s: %d %s", e.Method, e.Path, e.Status, e.Message)
}

// allocationFailed reports Asterisk's answer to an originate towards a
// device it cannot reach (no contact registered, or no such endpoint).
func allocationFailed(err error) bool {
	var re *RESTError
	return errors.As(err, &re) && re.Status == http.StatusInternalServerError &&
		strings.Contains(strings.ToLower(re.Message), "allocation failed")
}

// notFound reports a 404 (channel or bridge already gone).
func notFound(err error) bool {
	var re *RESTError
	return errors.As(err, &re) && re.Status == http.StatusNotFound
}

// rest calls ARI. Every parameter goes in the query string, as in the
// recorded transcripts; bodies are never sent.
type rest struct {
	base    string // e.g. http://127.0.0.1:8088/ari
	auth    string // the Authorization value (basicAuth), for REST and the event socket
	conns   *conns
	timeout time.Duration  // a request's whole exchange
	obs     media.Observer // counts every request (RequestSent)
}

// do sends one request and decodes a JSON answer into out (when non-nil
// and the answer has a body). Transport failures wrap
// media.ErrMediaUnavailable.
func (r *rest) do(ctx context.Context, method, path string, q url.Values, out any) error {
	return r.send(ctx, method, path, q, nil, out)
}

// send is do with a JSON request body (nil: none).
func (r *rest) send(ctx context.Context, method, path string, q url.Values, in, out any) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	u := r.base + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var reqBody io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("ari %s %s: %w", method, path, err)
		}
		reqBody = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, reqBody)
	if err != nil {
		return fmt.Errorf("ari %s %s: %w", method, path, err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Authorization", r.auth)
	r.obs.RequestSent(method)
	resp, body, err := r.conns.roundTrip(req)
	if err != nil {
		return fmt.Errorf("ari %s %s: %w: %w", method, path, media.ErrMediaUnavailable, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		var msg struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &msg)
		text := msg.Error
		if text == "" {
			text = msg.Message
		}
		if text == "" {
			text = http.StatusText(resp.StatusCode)
		}
		return &RESTError{Method: method, Path: path, Status: resp.StatusCode, Message: text}
	}
	if out == nil || len(body) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("ari %s %s: decoding answer: %w", method, path, err)
	}
	return nil
}

// basicAuth is the Authorization value for ARI's user and password,
// encoded once rather than on every request.
func basicAuth(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}
