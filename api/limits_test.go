package api_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/store"
)

// realServer is the demo floor behind the http.Server and listener the
// binary uses (api.Server.HTTPServer), on a real loopback socket.
type realServer struct {
	url string
	ln  net.Listener // the limited listener
	svc *presence.Service
}

func serveReal(t *testing.T, opts ...api.Option) *realServer {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	svc := presence.NewService(st, presence.WithLocation(cfg.Location()))
	if err := config.Bootstrap(context.Background(), cfg, svc); err != nil {
		t.Fatal(err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, ln := api.New(svc, st, opts...).HTTPServer(raw)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
		st.Close()
	})
	return &realServer{url: "http://" + raw.Addr().String(), ln: ln, svc: svc}
}

// get makes one request on a fresh connection and returns status, body
// and how long it took.
func get(t *testing.T, url, token string) (int, string, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	start := time.Now()
	res, err := cl.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), time.Since(start)
}

// TestStalledConnectionsLeaveServerAnswering: 5,000 connections that send
// nothing or half a request header do not stop /v1/healthz or an
// authenticated request from being answered, and the server never holds
// more connections than its cap.
func TestStalledConnectionsLeaveServerAnswering(t *testing.T) {
	lim := api.DefaultLimits()
	lim.MaxConns = 1000 // below the flood, so eviction is exercised
	s := serveReal(t, api.WithLimits(lim))
	addr := strings.TrimPrefix(s.url, "http://")

	const stalled = 5000
	conns := make([]net.Conn, 0, stalled)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range stalled {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if i%2 == 1 { // half a request, never finished
			_, _ = c.Write([]byte("GET /v1/agents HTTP/1.1\r\nHost: x\r\n"))
		}
		conns = append(conns, c)
	}

	var worst time.Duration
	for range 5 {
		code, body, took := get(t, s.url+"/v1/healthz", "")
		if code != http.StatusOK {
			t.Fatalf("healthz under %d stalled connections: %d %s", stalled, code, body)
		}
		worst = max(worst, took)
		code, body, took = get(t, s.url+"/v1/me", "demo-admin")
		if code != http.StatusOK {
			t.Fatalf("/v1/me under %d stalled connections: %d %s", stalled, code, body)
		}
		worst = max(worst, took)
	}
	if n, _ := api.ConnCounts(s.ln); n > lim.MaxConns {
		t.Fatalf("server holds %d connections, cap %d", n, lim.MaxConns)
	}
	// Figures for the report, not assertions (timings are not asserted).
	n, _ := api.ConnCounts(s.ln)
	t.Logf("%d stalled connections, cap %d: slowest answer %v, server holds %d", stalled, lim.MaxConns, worst, n)
}

// TestHeaderTimeoutClosesStalledConnection: a client that never finishes
// its headers is disconnected after ReadHeaderTimeout.
func TestHeaderTimeoutClosesStalledConnection(t *testing.T) {
	lim := api.DefaultLimits()
	lim.ReadHeaderTimeout = 200 * time.Millisecond
	s := serveReal(t, api.WithLimits(lim))
	c, err := net.Dial("tcp", strings.TrimPrefix(s.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("GET /v1/healthz HTTP/1.1\r\n"))
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("connection with unfinished headers still open after 20 s")
	}
}

// rawRequest writes req on a new connection and returns the response
// head and body, without sending more than req.
func rawRequest(t *testing.T, url, req string) (*http.Response, string) {
	t.Helper()
	c, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.Write([]byte(req)); err != nil {
		t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("no response to %q: %v", req[:min(len(req), 60)], err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	return res, string(b)
}

// TestBodyLimits: a declared body over the limit is refused with 413
// before it is sent (Expect: 100-continue gets the 413, not "100
// Continue"); an undeclared (chunked) one is cut at the limit with 413.
func TestBodyLimits(t *testing.T) {
	s := serveReal(t)
	res, body := rawRequest(t, s.url, "POST /v1/agents HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-admin\r\n"+
		"Content-Type: application/json\r\nContent-Length: 10485760\r\nExpect: 100-continue\r\n\r\n")
	if res.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"code":"body_too_large"`) {
		t.Fatalf("10 MB declared body: %d %s", res.StatusCode, body)
	}

	pr, pw := io.Pipe()
	go func() {
		defer pw.Close()
		_, _ = pw.Write([]byte(`{"id":"big","name":"`))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for range 40 { // 2.5 MB, more than the limit
			if _, err := pw.Write(chunk); err != nil {
				return
			}
		}
	}()
	req, _ := http.NewRequest("POST", s.url+"/v1/agents", pr)
	req.Header.Set("Authorization", "Bearer demo-admin")
	req.Header.Set("Content-Type", "application/json")
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	if r2.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked 2.5 MB body: %d %s", r2.StatusCode, b)
	}
}

var snake = regexp.MustCompile(`"code":"[a-z][a-z0-9_]*"`)

// TestMethodsPathsAndErrorCodes: a known path with the wrong method is 405
// with Allow; an unknown /v1 path is a JSON 404; every refusal's code is
// snake_case, including field-derived ones.
func TestMethodsPathsAndErrorCodes(t *testing.T) {
	d := newDemo(t)
	for _, tc := range []struct {
		method, path, body string
		status             int
		allow              string
	}{
		{"DELETE", "/v1/agents", "", http.StatusMethodNotAllowed, "GET"},
		{"POST", "/v1/healthz", "", http.StatusMethodNotAllowed, "GET"},
		{"PUT", "/v1/agents/a1", "", http.StatusMethodNotAllowed, "PATCH"},
		{"GET", "/v1/nope", "", http.StatusNotFound, ""},
		{"GET", "/v1/agents/a1/nope", "", http.StatusNotFound, ""},
		{"PATCH", "/v1/groups/sales", `{"name":5}`, http.StatusBadRequest, ""},
		{"PATCH", "/v1/agents/a1", `{"groups":[1]}`, http.StatusBadRequest, ""},
	} {
		r := d.do(tc.method, tc.path, "demo-admin", tc.body)
		if r.status != tc.status || !snake.Match(r.body) {
			t.Errorf("%s %s %s: %d %s, want %d with a snake_case code", tc.method, tc.path, tc.body, r.status, r.body, tc.status)
		}
		if tc.allow != "" && !strings.Contains(r.header.Get("Allow"), tc.allow) {
			t.Errorf("%s %s: Allow %q, want it to list %s", tc.method, tc.path, r.header.Get("Allow"), tc.allow)
		}
	}
}

// TestStrictJSON: what encoding/json would let through is refused with a
// 400 naming the problem, and changes nothing.
func TestStrictJSON(t *testing.T) {
	d := newDemo(t)
	before := d.snapshot()
	for _, tc := range []struct{ body, code string }{
		{`null`, "invalid_json"},
		{`[]`, "invalid_json"},
		{`{"call_status":"available","call_status":"lunch_break"}`, "duplicate_field"},
		{`{"Call_Status":"available"}`, "unknown_field"},
		{`{"CALL_STATUS":"available"}`, "unknown_field"},
		{"{\"call_status\":\"avail\xffable\"}", "invalid_json"},
		{`{"call_status":"\ud800"}`, "invalid_json"},
		{`{"call_status":"available"} {}`, "invalid_json"},
	} {
		r := d.do("PUT", "/v1/agents/a1/status", "demo-admin", tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"code":"`+tc.code+`"`) {
			t.Errorf("%q: %d %s, want 400 %s", tc.body, r.status, r.body, tc.code)
		}
	}
	if d.snapshot() != before {
		t.Fatal("a refused body changed the floor")
	}
	// Nested objects are checked for duplicates too.
	r := d.do("POST", "/v1/groups", "demo-admin", `{"id":"g1","name":"G","supervisors":["sup-sales"],"x":{"a":1,"a":2}}`)
	if r.status != http.StatusBadRequest {
		t.Fatalf("nested duplicate: %d %s", r.status, r.body)
	}
}

// TestAccessTokenOnlyOnEvents: the URL token is refused everywhere but
// /v1/events.
func TestAccessTokenOnlyOnEvents(t *testing.T) {
	d := newDemo(t)
	r := d.do("GET", "/v1/agents?access_token=demo-admin", "", "")
	if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), "access_token_not_allowed") {
		t.Fatalf("?access_token= on /v1/agents: %d %s", r.status, r.body)
	}
	r = d.do("GET", "/v1/me?access_token=demo-admin", "demo-admin", "")
	if r.status != http.StatusBadRequest {
		t.Fatalf("?access_token= beside a header on /v1/me: %d %s", r.status, r.body)
	}
}

// TestRatePerToken: past its burst a token gets 429 with Retry-After;
// another token is not affected.
func TestRatePerToken(t *testing.T) {
	lim := api.DefaultLimits()
	lim.RequestsPerSecond, lim.Burst = 0.5, 3
	d := newDemo(t, api.WithLimits(lim))
	for i := range 3 {
		if r := d.do("GET", "/v1/me", "demo-a1", ""); r.status != http.StatusOK {
			t.Fatalf("request %d within the burst: %d %s", i+1, r.status, r.body)
		}
	}
	r := d.do("GET", "/v1/me", "demo-a1", "")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(string(r.body), `"code":"rate_limited"`) {
		t.Fatalf("past the burst: %d Retry-After=%q %s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if r := d.do("GET", "/v1/me", "demo-a2", ""); r.status != http.StatusOK {
		t.Fatalf("another token: %d %s", r.status, r.body)
	}
}

// TestConnectionCapAllBusy: when every connection is inside a request,
// one more gets a 503 in API.md's shape instead of waiting for a slot.
func TestConnectionCapAllBusy(t *testing.T) {
	lim := api.DefaultLimits()
	lim.MaxConns = 2
	s := serveReal(t, api.WithLimits(lim))
	addr := strings.TrimPrefix(s.url, "http://")
	var busy []net.Conn
	defer func() {
		for _, c := range busy {
			c.Close()
		}
	}()
	for range 2 { // a body that never arrives keeps the request active
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fmt.Fprintf(c, "PUT /v1/agents/a1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer demo-admin\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{")
		busy = append(busy, c)
	}
	deadline := time.Now().Add(20 * time.Second)
	for _, b := api.ConnCounts(s.ln); b < 2; _, b = api.ConnCounts(s.ln) {
		if time.Now().After(deadline) {
			t.Fatal("the two slow requests never became active")
		}
		time.Sleep(10 * time.Millisecond)
	}
	res, body := rawRequest(t, s.url, "GET /v1/healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"too_many_connections"`) {
		t.Fatalf("at the cap with every connection busy: %d %s", res.StatusCode, body)
	}
}

// TestStreamMaxLifetime: a stream ends with "event: cutoff" reason
// max_lifetime, and reconnecting with its last id resumes exactly there.
func TestStreamMaxLifetime(t *testing.T) {
	f := newFloor(t, store.NewMemory(), nil, api.WithMaxLifetime(300*time.Millisecond))
	c := f.connect("demo-admin", "", nil)
	f.setStatus("a1", "lunch_break")
	first := c.next(false)
	for {
		fr := c.next(false)
		if fr.event == "cutoff" {
			if !strings.Contains(fr.data, "max_lifetime") {
				t.Fatalf("cutoff %+v", fr)
			}
			break
		}
	}
	c.waitEnded()
	f.setStatus("a1", "available")
	c2 := f.connect("demo-admin", "", map[string]string{"Last-Event-ID": first.id})
	if fr := c2.next(false); fr.event != "agent" || !strings.Contains(fr.data, `"call_status":"available"`) {
		t.Fatalf("resumed with %+v", fr)
	}
}

// TestInputLimits: names, e-mails and lists are bounded and free of
// control characters; refusals are 400 naming the field and change nothing.
func TestInputLimits(t *testing.T) {
	d := newDemo(t)
	before := d.snapshot()
	big := strings.Repeat("x", 500<<10)
	for _, tc := range []struct{ method, path, body, field string }{
		{"PATCH", "/v1/agents/a1", `{"name":"` + big + `"}`, "name"},
		{"PATCH", "/v1/agents/a1", `{"name":"a\u0000b"}`, "name"},
		{"PATCH", "/v1/agents/a1", `{"name":"a\u0007b"}`, "name"},
		{"PATCH", "/v1/agents/a1", `{"email":"` + strings.Repeat("a", 250) + `@example.com"}`, "email"},
		{"POST", "/v1/statuses", `{"id":"x1","name":"bad\nname"}`, "name"},
		{"POST", "/v1/groups", `{"id":"g1","name":"` + strings.Repeat("n", 201) + `"}`, "name"},
		{"PATCH", "/v1/agents/a1", `{"groups":[` + strings.TrimSuffix(strings.Repeat(`"sales",`, 101), ",") + `]}`, "groups"},
	} {
		r := d.do(tc.method, tc.path, "demo-admin", tc.body)
		if r.status != http.StatusBadRequest || !strings.Contains(string(r.body), `"field":"`+tc.field+`"`) {
			t.Errorf("%s %s %.60s: %d %.200s, want 400 on %s", tc.method, tc.path, tc.body, r.status, r.body, tc.field)
		}
	}
	if d.snapshot() != before {
		t.Fatal("a refused input changed the floor")
	}
}
