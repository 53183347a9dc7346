package api

import (
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// Limits bounds what one client, or one flood of connections, can take
// from the server. The defaults are in DefaultLimits and SECURITY.md.
type Limits struct {
	// ReadHeaderTimeout bounds reading a request's headers; ReadTimeout
	// the whole request including its body (event streams lift it once
	// their request is read); IdleTimeout a keep-alive connection between
	// requests.
	ReadHeaderTimeout, ReadTimeout, IdleTimeout time.Duration
	// MaxConns caps open HTTP connections. At the cap, accepting one more
	// closes the oldest connection that is not inside a request (idle
	// keep-alive, or still sending its headers), so stalled connections
	// cannot starve /v1/healthz or real clients; when every connection is
	// busy in a request, the newcomer gets a bare 503 and is closed.
	MaxConns int
	// MaxBodyBytes caps a request body: larger ones get 413 before any of
	// the body is read (also with Expect: 100-continue).
	MaxBodyBytes int64
	// RequestsPerSecond and Burst are a token bucket per bearer token;
	// beyond it requests get 429 with Retry-After. Zero disables it.
	RequestsPerSecond float64
	Burst             int
}

// DefaultLimits are the limits the binary runs with (SECURITY.md).
func DefaultLimits() Limits {
	return Limits{
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, IdleTimeout: 60 * time.Second,
		MaxConns: 4096, MaxBodyBytes: maxBody,
		RequestsPerSecond: 50, Burst: 100,
	}
}

// WithLimits replaces DefaultLimits.
func WithLimits(l Limits) Option { return func(s *Server) { s.limits = l } }

// HTTPServer returns the http.Server to run this API with, and ln wrapped
// in the connection cap; serve with srv.Serve(limited).
func (s *Server) HTTPServer(ln net.Listener) (*http.Server, net.Listener) {
	cl := newConnLimiter(ln, s.limits.MaxConns)
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.limits.ReadHeaderTimeout,
		ReadTimeout:       s.limits.ReadTimeout,
		IdleTimeout:       s.limits.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ConnState:         cl.track,
	}
	return srv, cl
}

// connLimiter is a net.Listener that keeps at most max connections open
// (see Limits.MaxConns). http.Server reports each connection's state
// through track.
type connLimiter struct {
	net.Listener
	max int

	mu    sync.Mutex
	conns map[net.Conn]*connEntry
}

type connEntry struct {
	busy  bool // inside a request (or hijacked): never evicted
	since time.Time
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	if max <= 0 {
		max = math.MaxInt
	}
	return &connLimiter{Listener: ln, max: max, conns: map[net.Conn]*connEntry{}}
}

// overloaded is what a connection gets when every slot is inside a request.
const overloaded = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\nConnection: close\r\nContent-Length: 84\r\n\r\n" +
	`{"error":{"code":"too_many_connections","message":"server at its connection cap"}}` + "\n\n"

func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.admit(c) {
			return c, nil
		}
		_ = c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_, _ = c.Write([]byte(overloaded))
		_ = c.Close()
	}
}

// admit records c, making room by closing the oldest connection that is
// not inside a request; false when there is none.
func (l *connLimiter) admit(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.conns) >= l.max {
		var victim net.Conn
		var oldest time.Time
		for vc, e := range l.conns {
			if !e.busy && (victim == nil || e.since.Before(oldest)) {
				victim, oldest = vc, e.since
			}
		}
		if victim == nil {
			return false
		}
		delete(l.conns, victim)
		_ = victim.Close()
	}
	l.conns[c] = &connEntry{since: time.Now()}
	return true
}

func (l *connLimiter) track(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.conns[c]
	switch st {
	case http.StateClosed:
		delete(l.conns, c)
		return
	case http.StateHijacked:
		// No longer the server's to close; it stays counted until closed
		// by whoever took it, which http.Server does not report.
		delete(l.conns, c)
		return
	}
	if !ok {
		return // evicted already
	}
	e.busy = st == http.StateActive
	e.since = time.Now()
}

// counts is how many connections are held and how many of them are
// inside a request.
func (l *connLimiter) counts() (open, busy int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.conns {
		if e.busy {
			busy++
		}
	}
	return len(l.conns), busy
}

// ConnCounts reports how many HTTP connections ln (from HTTPServer) holds
// and how many of them are inside a request; -1, -1 for another listener.
func ConnCounts(ln net.Listener) (open, busy int) {
	if l, ok := ln.(*connLimiter); ok {
		return l.counts()
	}
	return -1, -1
}

// bodyLimit refuses bodies over max with 413 before reading them, and
// cuts chunked bodies at max (bindJSON reports that as 413 too).
func bodyLimit(max int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			if r.ContentLength > max {
				// Not reading the body also means no "100 Continue" is sent:
				// the client learns the answer before uploading anything.
				c.Response().Header().Set("Connection", "close")
				return tooLarge(max)
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(c.Response(), r.Body, max)
			}
			return next(c)
		}
	}
}

func tooLarge(max int64) *Error {
	return Errorf(http.StatusRequestEntityTooLarge, "body_too_large", "request body is larger than "+strconv.FormatInt(max, 10)+" bytes")
}

// rateLimiter is a token bucket per key (the bearer token's hash).
type rateLimiter struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxBuckets bounds the rate limiter's memory.
const maxBuckets = 100000

func newRateLimiter(perSecond float64, burst int) *rateLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &rateLimiter{rate: perSecond, burst: float64(max(burst, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes one token for key, or says how long until one is there.
func (rl *rateLimiter) allow(key string) (bool, time.Duration) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	now := rl.now()
	if now.Sub(rl.swept) > time.Minute {
		// Forget full buckets so unknown tokens cannot grow the map for ever.
		for k, b := range rl.buckets {
			if b.tokens+now.Sub(b.at).Seconds()*rl.rate >= rl.burst {
				delete(rl.buckets, k)
			}
		}
		rl.swept = now
	}
	b, ok := rl.buckets[key]
	if !ok {
		if len(rl.buckets) >= maxBuckets {
			// A flood of distinct keys (made-up tokens): start over rather
			// than grow; honest clients lose at most one burst's history.
			clear(rl.buckets)
		}
		b = &bucket{tokens: rl.burst, at: now}
		rl.buckets[key] = b
	}
	b.tokens = min(rl.burst, b.tokens+now.Sub(b.at).Seconds()*rl.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / rl.rate * float64(time.Second))
}

// rateLimited is the 429 for a token over its budget.
func rateLimited(wait time.Duration) *Error {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	return &Error{Status: http.StatusTooManyRequests, Code: "rate_limited",
		Message: "too many requests for this token; retry after " + strconv.Itoa(secs) + " s", retryAfter: secs}
}
