package main

import (
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
)

// do is call with the response's headers and body.
func (p *process) do(method, path, token, body string) (int, http.Header, string) {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, method, p.base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, string(b)
}

// eventually retries f until it reports done, failing after 30 s.
func eventually(t *testing.T, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ok, last := f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still not after 30 s (last: %s)", what, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestWriteDuringRedisOutage: with Redis stopped, health still answers,
// a write (authenticated from the short-lived cache) gets 503
// store_unavailable with Retry-After, and the same write succeeds once
// Redis is back.
func TestWriteDuringRedisOutage(t *testing.T) {
	rs := testpeer.StartRedis(t, testpeer.WithAppendOnly())
	p := start(t, map[string]string{"CALLFLOOR_REDIS_URL": rs.URL()})
	defer p.stop()
	const body = `{"call_status":"lunch_break"}`
	if code, _, b := p.do("GET", "/v1/me", "demo-a2", ""); code != 200 {
		t.Fatalf("before the outage: %d %s", code, b)
	}

	rs.Stop()
	if code, _, b := p.do("GET", "/v1/healthz", "", ""); code != 200 {
		t.Fatalf("healthz during the outage: %d %s", code, b)
	}
	code, hdr, b := p.do("PUT", "/v1/agents/a2/status", "demo-a2", body)
	if code != http.StatusServiceUnavailable || !strings.Contains(b, `"code":"store_unavailable"`) || hdr.Get("Retry-After") == "" {
		t.Fatalf("write during the outage: %d Retry-After=%q %s", code, hdr.Get("Retry-After"), b)
	}
	if code, _, b := p.do("GET", "/v1/readyz", "", ""); code != http.StatusServiceUnavailable || !strings.Contains(b, "store") {
		t.Fatalf("readyz during the outage: %d %s", code, b)
	}

	rs.Start(t)
	eventually(t, "the same write after Redis returns", func() (bool, string) {
		code, _, b := p.do("PUT", "/v1/agents/a2/status", "demo-a2", body)
		return code == 200 && strings.Contains(b, `"call_status":"lunch_break"`), b
	})
}

// TestStartsWhileRedisIsDown: a replica started with Redis down serves
// health, says why it is not ready, and becomes ready (floor bootstrapped,
// requests served) once Redis comes up.
func TestStartsWhileRedisIsDown(t *testing.T) {
	rs := testpeer.StartRedis(t)
	rs.Stop()
	p := start(t, map[string]string{"CALLFLOOR_REDIS_URL": rs.URL()})
	defer p.stop()
	if code, _, b := p.do("GET", "/v1/healthz", "", ""); code != 200 {
		t.Fatalf("healthz with Redis down: %d %s", code, b)
	}
	code, _, b := p.do("GET", "/v1/readyz", "", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(b, "store_unavailable") {
		t.Fatalf("readyz with Redis down: %d %s", code, b)
	}
	if code, _, b := p.do("GET", "/v1/agents", "demo-admin", ""); code != http.StatusServiceUnavailable {
		t.Fatalf("a read with Redis down: %d %s", code, b)
	}
	rs.Start(t)
	eventually(t, "ready after Redis starts", func() (bool, string) {
		code, _, b := p.do("GET", "/v1/readyz", "", "")
		return code == 200, b
	})
	if code, _, b := p.do("GET", "/v1/agents/a1", "demo-admin", ""); code != 200 {
		t.Fatalf("bootstrapped floor after Redis came up: %d %s", code, b)
	}
}
