package esl

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/percipia/eslgo/command"
)

// Errors callers and Run branch on.
var (
	// ErrAuthFailed: FreeSWITCH refused the password. Run returns it
	// instead of retrying, since retrying cannot help.
	ErrAuthFailed = errors.New("esl: authentication failed")
	// errDisconnected: the connection ended (EOF, disconnect-notice,
	// heartbeat timeout or shutdown) while a command waited for its reply.
	errDisconnected = errors.New("esl: disconnected")
)

// replyError is a -ERR reply. FreeSWITCH reports failures as text, not as
// a protocol error, so every reply is checked.
type replyError struct {
	cmd  string
	text string
}

func (e *replyError) Error() string { return fmt.Sprintf("esl: %s: %s", e.cmd, e.text) }

// conn is one authenticated ESL connection. Commands are written and queued
// under one lock, so the queue order is the wire order; FreeSWITCH handles
// a connection's commands one at a time and replies in order, so the
// reader pops the queue head for every reply and no two commands can see
// each other's replies (the eslgo v1.5.1 trap).
type conn struct {
	nc net.Conn
	br *bufio.Reader

	mu     sync.Mutex // guards queue, closed; held across a write
	queue  []*pending
	closed bool
	done   chan struct{} // closed when the reader stops
}

// pending is a command waiting for its reply. onReply, when set, runs in
// the reader goroutine before the next frame is read, so state it sets up
// (a bgapi Job-UUID, a resync snapshot) is in place before any later
// event is handled.
type pending struct {
	cmd     string
	reply   chan *frame // buffered: the reader never blocks on it
	onReply func(*frame)
}

// handshake reads the greeting, authenticates and subscribes. It runs
// before the reader starts, so nothing else is on the wire yet.
func handshake(ctx context.Context, nc net.Conn, br *bufio.Reader, password string, events []string) error {
	deadline := time.Now().Add(10 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = nc.SetDeadline(deadline)
	defer nc.SetDeadline(time.Time{})
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Now()) })
	defer stop()

	f, err := readFrame(br)
	if err != nil {
		return fmt.Errorf("esl: reading greeting: %w", err)
	}
	if f.contentType != typeAuthRequest {
		return fmt.Errorf("esl: expected %s greeting, got %q", typeAuthRequest, f.contentType)
	}
	steps := []struct {
		cmd command.Command
		log string
	}{
		{command.Auth{Password: password}, "auth"},
		{command.Event{Format: "plain", Listen: events}, "event plain …"},
	}
	for i, s := range steps {
		if _, err := nc.Write([]byte(s.cmd.BuildMessage() + "\n\n")); err != nil {
			return fmt.Errorf("esl: sending %s: %w", s.log, err)
		}
		f, err := readReply(br)
		if err != nil {
			return fmt.Errorf("esl: reading %s reply: %w", s.log, err)
		}
		if !strings.HasPrefix(f.replyText, "+OK") {
			if i == 0 {
				return fmt.Errorf("%w: %s", ErrAuthFailed, f.replyText)
			}
			return &replyError{cmd: s.log, text: f.replyText}
		}
	}
	return nil
}

// readReply reads frames up to the next command/reply. A disconnect-notice
// (which follows "-ERR invalid") or EOF ends it.
func readReply(br *bufio.Reader) (*frame, error) {
	for {
		f, err := readFrame(br)
		if err != nil {
			return nil, err
		}
		switch f.contentType {
		case typeReply:
			return f, nil
		case typeDisconnect:
			return nil, errDisconnected
		}
	}
}

func newConn(nc net.Conn, br *bufio.Reader) *conn {
	return &conn{nc: nc, br: br, done: make(chan struct{})}
}

// send writes one command ("api …", "bgapi …") and waits for its reply.
func (c *conn) send(ctx context.Context, cmd string, onReply func(*frame)) (*frame, error) {
	p := &pending{cmd: cmd, reply: make(chan *frame, 1), onReply: onReply}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, errDisconnected
	}
	c.queue = append(c.queue, p)
	deadline := time.Now().Add(5 * time.Second)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.nc.SetWriteDeadline(deadline)
	_, err := c.nc.Write([]byte(cmd + "\n\n"))
	c.mu.Unlock()
	if err != nil {
		// The queue may now be out of step with the wire: drop the
		// connection rather than risk mismatched replies.
		c.nc.Close()
		return nil, fmt.Errorf("esl: writing %q: %w", firstWord(cmd), err)
	}
	select {
	case f := <-p.reply:
		return f, nil
	case <-c.done:
		// The reply may have been delivered just before the reader ended.
		select {
		case f := <-p.reply:
			return f, nil
		default:
		}
		return nil, errDisconnected
	case <-ctx.Done():
		// The reply, when it comes, is popped and dropped by the reader:
		// the queue stays in step with the wire.
		return nil, ctx.Err()
	}
}

// deliver hands a reply to the oldest waiting command.
func (c *conn) deliver(f *frame) bool {
	c.mu.Lock()
	if len(c.queue) == 0 {
		c.mu.Unlock()
		return false
	}
	p := c.queue[0]
	c.queue[0] = nil
	c.queue = c.queue[1:]
	c.mu.Unlock()
	if p.onReply != nil {
		p.onReply(f)
	}
	p.reply <- f
	return true
}

// stop marks the connection closed and wakes every waiting command.
func (c *conn) stop() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.queue = nil
	c.mu.Unlock()
	c.nc.Close()
	close(c.done)
}

func firstWord(s string) string {
	// Never log a whole command: originate strings carry caller numbers
	// and auth would carry the password.
	w := strings.Fields(s)
	switch {
	case len(w) >= 2 && (w[0] == "api" || w[0] == "bgapi"):
		return w[0] + " " + w[1]
	case len(w) >= 1:
		return w[0]
	}
	return ""
}

// checkReply turns an api/response or command/reply text into an error
// when it is a failure. uuid commands report a missing channel in several
// spellings; they all become media.ErrLegGone.
func checkReply(cmd string, f *frame) (string, error) {
	text := f.replyText
	if f.contentType == typeAPIResponse {
		text = strings.TrimRight(string(f.body), "\n")
	}
	if strings.HasPrefix(text, "-ERR") || strings.HasPrefix(text, "-USAGE") {
		return text, &replyError{cmd: firstWord(cmd), text: text}
	}
	return text, nil
}
