package ari

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// restTo is a rest client for srv's URL, as New builds it.
func restTo(t *testing.T, rawURL string) *rest {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := newConns(u.Scheme, u.Hostname(), u.Port())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.CloseIdleConnections)
	return &rest{base: rawURL, auth: basicAuth("u", "p"), conns: c, timeout: 5 * time.Second, obs: media.NopObserver{}}
}

// countingServer answers every request with its method, path, query and
// body, and counts the connections it accepted.
func countingServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var accepted atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "u" || p != "p" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"echo":%q}`, r.Method+" "+r.URL.RequestURI()+" "+string(body))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			accepted.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &accepted
}

type echo struct {
	Echo string `json:"echo"`
}

// Requests one after another share one connection, concurrent ones a few,
// and every answer reaches the request that asked for it.
func TestConnsReuseAndConcurrency(t *testing.T) {
	srv, accepted := countingServer(t)
	r := restTo(t, srv.URL)
	ctx := context.Background()
	for i := range 20 {
		var out echo
		if err := r.send(ctx, http.MethodPost, fmt.Sprintf("/x/%d", i), url.Values{"a": {"b c"}}, map[string]int{"n": i}, &out); err != nil {
			t.Fatal(err)
		}
		if want := fmt.Sprintf(`POST /x/%d?a=b+c {"n":%d}`, i, i); out.Echo != want {
			t.Fatalf("answer %q, want %q", out.Echo, want)
		}
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections for 20 sequential requests, want 1", n)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16*25)
	for g := range 16 {
		wg.Go(func() {
			for i := range 25 {
				var out echo
				path := fmt.Sprintf("/g%d/%d", g, i)
				if err := r.do(ctx, http.MethodGet, path, nil, &out); err != nil {
					errs <- err
				} else if out.Echo != "GET "+path+" " {
					errs <- fmt.Errorf("answer %q for %s", out.Echo, path)
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := accepted.Load(); n > 1+16 {
		t.Fatalf("%d connections for 16 concurrent callers", n)
	}
	r.conns.mu.Lock()
	idle := len(r.conns.idle)
	r.conns.mu.Unlock()
	if idle == 0 || idle > 16 {
		t.Fatalf("%d idle connections after 16 concurrent callers", idle)
	}
}

// rawServer accepts connections and hands each to serve.
func rawServer(t *testing.T, serve func(nc net.Conn, n int)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for n := 0; ; n++ {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { defer nc.Close(); serve(nc, n) })
		}
	})
	return "http://" + ln.Addr().String()
}

// readRequest reads one request and its body.
func readRequest(br *bufio.Reader) (*http.Request, string, error) {
	req, err := http.ReadRequest(br)
	if err != nil {
		return nil, "", err
	}
	body, err := io.ReadAll(req.Body)
	return req, string(body), err
}

// A server that lets a kept-alive connection go without saying so (as
// Asterisk does after session_keep_alive) costs the next request nothing:
// it is sent again, body and all, on a new connection. A fresh
// connection closed before an answer is an error, never retried: the
// request may have been acted on.
func TestConnsRetryOnlyAClosedReusedConnection(t *testing.T) {
	var got sync.Map
	base := rawServer(t, func(nc net.Conn, n int) {
		br := bufio.NewReader(nc)
		req, body, err := readRequest(br)
		if err != nil {
			return
		}
		got.Store(n, req.Method+" "+req.URL.Path+" "+body)
		if req.URL.Path == "/vanish" {
			return // read, then closed without an answer
		}
		fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
		// One answer per connection, and no "Connection: close".
	})
	r := restTo(t, base)
	ctx := context.Background()
	if err := r.do(ctx, http.MethodGet, "/one", nil, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // the server's close reaches us
	if err := r.send(ctx, http.MethodPost, "/two", nil, map[string]string{"k": "v"}, nil); err != nil {
		t.Fatalf("a request on a connection the server closed while idle: %v", err)
	}
	if v, _ := got.Load(1); v != `POST /two {"k":"v"}` {
		t.Fatalf("the retried request reached the server as %q", v)
	}
	time.Sleep(20 * time.Millisecond)
	// The pooled connection is closed again: the retry, on a fresh one, vanishes.
	err := r.do(ctx, http.MethodPost, "/vanish", nil, nil)
	if !errors.Is(err, media.ErrMediaUnavailable) {
		t.Fatalf("vanishing answer: %v, want ErrMediaUnavailable", err)
	}
	vanished := 0
	got.Range(func(_, v any) bool {
		if strings.HasPrefix(v.(string), "POST /vanish") {
			vanished++
		}
		return true
	})
	if vanished != 1 {
		t.Fatalf("/vanish reached the server %d times on fresh connections, want 1", vanished)
	}
}

// A request whose context ends while Asterisk is silent returns at once,
// and its connection is not used again; "Connection: close" is honoured.
func TestConnsCancelAndClose(t *testing.T) {
	release := make(chan struct{})
	var conns atomic.Int64
	base := rawServer(t, func(nc net.Conn, n int) {
		conns.Add(1)
		br := bufio.NewReader(nc)
		for {
			req, _, err := readRequest(br)
			if err != nil {
				return
			}
			switch req.URL.Path {
			case "/stall":
				<-release
				return
			case "/close":
				fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
				return
			default:
				fmt.Fprintf(nc, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
			}
		}
	})
	defer close(release)
	r := restTo(t, base)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := r.do(ctx, http.MethodGet, "/stall", nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("stalled request: %v, want the context's deadline", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("stalled request returned after %v", d)
	}
	r.conns.mu.Lock()
	idle := len(r.conns.idle)
	r.conns.mu.Unlock()
	if idle != 0 {
		t.Fatalf("%d idle connections after a cancelled request, want 0", idle)
	}
	bg := context.Background()
	for _, p := range []string{"/close", "/ok", "/ok"} {
		if err := r.do(bg, http.MethodGet, p, nil, nil); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	// stall, close, then one connection for both /ok.
	if n := conns.Load(); n != 3 {
		t.Fatalf("%d connections, want 3", n)
	}
}

// Connections idle longer than idleFor are let go, not used.
func TestConnsStaleIdleConnections(t *testing.T) {
	srv, accepted := countingServer(t)
	r := restTo(t, srv.URL)
	now := time.Now()
	r.conns.now = func() time.Time { return now }
	ctx := context.Background()
	if err := r.do(ctx, http.MethodGet, "/a", nil, nil); err != nil {
		t.Fatal(err)
	}
	now = now.Add(r.conns.idleFor - time.Second)
	if err := r.do(ctx, http.MethodGet, "/b", nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := accepted.Load(); n != 1 {
		t.Fatalf("%d connections within idleFor, want 1", n)
	}
	now = now.Add(r.conns.idleFor)
	if err := r.do(ctx, http.MethodGet, "/c", nil, nil); err != nil {
		t.Fatal(err)
	}
	if n := accepted.Load(); n != 2 {
		t.Fatalf("%d connections after idling past idleFor, want 2", n)
	}
}

// An answer larger than maxAnswer is an error, not a truncated body.
func TestConnsAnswerTooLarge(t *testing.T) {
	big := strings.Repeat("x", maxAnswer+1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, big)
	}))
	defer srv.Close()
	r := restTo(t, srv.URL)
	if err := r.do(context.Background(), http.MethodGet, "/big", nil, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("oversized answer: %v", err)
	}
}

// A URL without a port gets the scheme's; other schemes are refused.
func TestNewConnsAddress(t *testing.T) {
	for _, tc := range []struct{ scheme, host, port, want string }{
		{"http", "127.0.0.1", "8088", "127.0.0.1:8088"},
		{"http", "asterisk", "", "asterisk:80"},
		{"https", "::1", "", "[::1]:443"},
	} {
		c, err := newConns(tc.scheme, tc.host, tc.port)
		if err != nil || c.addr != tc.want {
			t.Errorf("%s %s %s: %v %v, want %s", tc.scheme, tc.host, tc.port, c, err, tc.want)
		}
		if (c.tlsConf != nil) != (tc.scheme == "https") {
			t.Errorf("%s: TLS %v", tc.scheme, c.tlsConf != nil)
		}
	}
	if _, err := newConns("ws", "h", ""); err == nil {
		t.Error("ws accepted")
	}
}
