package ari

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"time"
)

// conns is the REST client's HTTP/1.1 transport: it writes a request and
// reads its answer on the calling goroutine, over a pool of kept-alive
// connections to the one Asterisk this client talks to.
//
// net/http's Transport runs two goroutines per connection and hands every
// request to one and every answer back from the other: at 7 requests a
// call that was a tenth of callfloor's CPU at 100 calls/s, plus the
// scheduler's share of waking them (docs/performance.md, "Asterisk side
// by side"). ARI needs none of what they buy: no HTTP/2, no proxies, no
// pipelining, one host, small answers read whole.
type conns struct {
	addr    string      // host:port
	tlsConf *tls.Config // nil: plain TCP
	dialer  net.Dialer
	maxIdle int
	// idleFor is how long a connection may sit unused: below Asterisk's
	// session_keep_alive (15 s by default), so Asterisk never closes one
	// under a request about to be written on it.
	idleFor time.Duration
	now     func() time.Time

	mu   sync.Mutex
	idle []*restConn // least recently used first
}

type restConn struct {
	nc     net.Conn
	br     *bufio.Reader
	bw     *bufio.Writer
	usedAt time.Time
	reused bool
}

// maxAnswer bounds an answer's body (ARI's largest, a channel list of a
// busy Asterisk, is well under it); a larger one is an error.
const maxAnswer = 8 << 20

// errNoAnswer: the connection ended before a byte of an answer came.
var errNoAnswer = errors.New("connection closed before an answer")

func newConns(scheme, host, port string) (*conns, error) {
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[scheme]
	}
	if port == "" {
		return nil, fmt.Errorf("scheme %q: want http or https", scheme)
	}
	c := &conns{addr: net.JoinHostPort(host, port), maxIdle: 64, idleFor: 10 * time.Second, now: time.Now,
		dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}}
	if scheme == "https" {
		c.tlsConf = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	return c, nil
}

// roundTrip sends req and returns its answer with the whole body, read.
// A kept-alive connection that turns out closed before answering (its
// peer let it go while idle) is replaced once, for any method: the
// request never reached Asterisk's handler.
func (c *conns) roundTrip(req *http.Request) (*http.Response, []byte, error) {
	ctx := req.Context()
	for retried := false; ; retried = true {
		rc, err := c.get(ctx)
		if err != nil {
			return nil, nil, err
		}
		resp, body, err := c.exchange(ctx, rc, req)
		if err == nil {
			return resp, body, nil
		}
		_ = rc.nc.Close()
		if retried || !rc.reused || !errors.Is(err, errNoAnswer) || ctx.Err() != nil {
			return nil, nil, err
		}
		if req.Body != nil {
			if req.GetBody == nil {
				return nil, nil, err
			}
			if req.Body, err = req.GetBody(); err != nil {
				return nil, nil, err
			}
		}
	}
}

// exchange writes req and reads its answer on rc, then pools rc again
// unless either side asked to close it.
func (c *conns) exchange(ctx context.Context, rc *restConn, req *http.Request) (*http.Response, []byte, error) {
	// A cancelled request unblocks at once: the deadline ends the write
	// or read under way (and the connection with it).
	stop := context.AfterFunc(ctx, func() { _ = rc.nc.SetDeadline(time.Unix(1, 0)) })
	resp, body, err := c.writeRead(rc, req)
	if !stop() {
		if err == nil {
			_ = rc.nc.Close() // its deadline is set: not reusable
		}
		return nil, nil, ctx.Err()
	}
	if err != nil {
		return nil, nil, err
	}
	if resp.Close || req.Close {
		_ = rc.nc.Close()
	} else {
		c.put(rc)
	}
	return resp, body, nil
}

func (c *conns) writeRead(rc *restConn, req *http.Request) (*http.Response, []byte, error) {
	if err := req.Write(rc.bw); err != nil {
		return nil, nil, noAnswer(err)
	}
	if err := rc.bw.Flush(); err != nil {
		return nil, nil, noAnswer(err)
	}
	if _, err := rc.br.Peek(1); err != nil {
		return nil, nil, noAnswer(err)
	}
	resp, err := http.ReadResponse(rc.br, req)
	if err != nil {
		return nil, nil, err
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	_ = resp.Body.Close()
	if err != nil {
		return nil, nil, err
	}
	if len(body) > maxAnswer {
		return nil, nil, fmt.Errorf("answer larger than %d bytes", maxAnswer)
	}
	return resp, body, nil
}

// noAnswer marks the failures that show the peer closed the connection
// before it read the request: EOF or a reset before any answer byte.
func noAnswer(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return fmt.Errorf("%w: %w", errNoAnswer, err)
	}
	return err
}

// get takes the most recently used idle connection, or dials a new one.
func (c *conns) get(ctx context.Context) (*restConn, error) {
	now := c.now()
	c.mu.Lock()
	var rc *restConn
	var stale []*restConn
	if n := len(c.idle); n > 0 {
		if last := c.idle[n-1]; now.Sub(last.usedAt) < c.idleFor {
			rc = last
			c.idle[n-1] = nil
			c.idle = c.idle[:n-1]
		} else { // the freshest is stale: so is every other
			stale, c.idle = c.idle, nil
		}
	}
	c.mu.Unlock()
	for _, s := range stale {
		_ = s.nc.Close()
	}
	if rc != nil {
		rc.reused = true
		return rc, nil
	}
	nc, err := c.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &restConn{nc: nc, br: bufio.NewReaderSize(nc, 16<<10), bw: bufio.NewWriterSize(nc, 4<<10)}, nil
}

func (c *conns) dial(ctx context.Context) (net.Conn, error) {
	if c.tlsConf == nil {
		return c.dialer.DialContext(ctx, "tcp", c.addr)
	}
	d := tls.Dialer{NetDialer: &c.dialer, Config: c.tlsConf}
	return d.DialContext(ctx, "tcp", c.addr)
}

// put pools rc again and lets go of connections idle too long at the
// pool's cold end (the warm end is used first, so they may sit there).
func (c *conns) put(rc *restConn) {
	now := c.now()
	rc.usedAt = now
	c.mu.Lock()
	drop := 0
	for drop < len(c.idle) && now.Sub(c.idle[drop].usedAt) >= c.idleFor {
		drop++
	}
	stale := slices.Clone(c.idle[:drop])
	if drop > 0 {
		n := copy(c.idle, c.idle[drop:])
		clear(c.idle[n:])
		c.idle = c.idle[:n]
	}
	if len(c.idle) < c.maxIdle {
		c.idle, rc = append(c.idle, rc), nil
	}
	c.mu.Unlock()
	if rc != nil {
		stale = append(stale, rc)
	}
	for _, s := range stale {
		_ = s.nc.Close()
	}
}

// CloseIdleConnections closes the pooled connections; later requests
// dial again.
func (c *conns) CloseIdleConnections() {
	c.mu.Lock()
	idle := c.idle
	c.idle = nil
	c.mu.Unlock()
	for _, rc := range idle {
		_ = rc.nc.Close()
	}
}
