// Package relaytest is the contract suite every relay.Bus must pass.
package relaytest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/relay"
)

// Factory builds the buses under test.
type Factory struct {
	// New returns an isolated bus, closed in t.Cleanup.
	New func(t *testing.T) relay.Bus
	// Peer returns another client of the same bus (another replica).
	Peer func(t *testing.T, b relay.Bus) relay.Bus
}

// Run runs the suite.
func Run(t *testing.T, f Factory) {
	t.Run("NoServer", func(t *testing.T) { runNoServer(t, f) })
	t.Run("Answer", func(t *testing.T) { runAnswer(t, f) })
	t.Run("ServerArrivesLate", func(t *testing.T) { runLate(t, f) })
	t.Run("NoReply", func(t *testing.T) { runNoReply(t, f) })
	t.Run("Concurrent", func(t *testing.T) { runConcurrent(t, f) })
	t.Run("ServeStops", func(t *testing.T) { runServeStops(t, f) })
}

const bound = 15 * time.Second

// serve runs b.Serve in the background until the test ends and waits
// until it serves.
func serve(t *testing.T, b relay.Bus, channel string, h relay.Handler) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- b.Serve(ctx, channel, h, ready) }()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	case <-time.After(bound):
		t.Fatal("Serve never became ready")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func echo(_ context.Context, req []byte) []byte { return append([]byte("echo:"), req...) }

func request(t *testing.T, b relay.Bus, channel string, req []byte, wait time.Duration) ([]byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	return b.Request(ctx, channel, req)
}

func runNoServer(t *testing.T, f Factory) {
	b := f.New(t)
	if _, err := request(t, b, "media:x", []byte("hi"), 200*time.Millisecond); !errors.Is(err, relay.ErrNoServer) {
		t.Fatalf("Request without a server: %v, want ErrNoServer", err)
	}
}

func runAnswer(t *testing.T, f Factory) {
	b := f.New(t)
	p := f.Peer(t, b)
	serve(t, p, "media:x", echo)
	serve(t, p, "media:y", func(_ context.Context, req []byte) []byte { return []byte("y") })
	big := bytes.Repeat([]byte{0, 1, 2, 255, '\n', ':'}, 50000)
	for _, req := range [][]byte{[]byte("hi"), {}, big} {
		got, err := request(t, b, "media:x", req, bound)
		if err != nil || !bytes.Equal(got, append([]byte("echo:"), req...)) {
			t.Fatalf("Request(%d bytes) = %d bytes, %v", len(req), len(got), err)
		}
	}
	if got, err := request(t, b, "media:y", []byte("hi"), bound); err != nil || string(got) != "y" {
		t.Fatalf("other channel: %q, %v", got, err)
	}
}

// runLate: a request sent while no replica serves (a takeover in
// progress) is answered by the replica that starts serving before the
// requester's deadline.
func runLate(t *testing.T, f Factory) {
	b := f.New(t)
	p := f.Peer(t, b)
	res := make(chan []byte, 1)
	go func() {
		got, err := request(t, b, "media:x", []byte("late"), bound)
		if err != nil {
			t.Errorf("late request: %v", err)
		}
		res <- got
	}()
	time.Sleep(100 * time.Millisecond)
	serve(t, p, "media:x", echo)
	if got := <-res; string(got) != "echo:late" {
		t.Fatalf("late request answered %q", got)
	}
}

// runNoReply: a server that takes the request and never answers leaves
// the requester with ErrNoReply at its deadline, and it ran the request
// exactly once.
func runNoReply(t *testing.T, f Factory) {
	b := f.New(t)
	p := f.Peer(t, b)
	var calls atomic.Int32
	release := make(chan struct{})
	defer close(release)
	serve(t, p, "media:x", func(ctx context.Context, req []byte) []byte {
		calls.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
		}
		return []byte("too late")
	})
	if _, err := request(t, b, "media:x", []byte("hi"), 300*time.Millisecond); !errors.Is(err, relay.ErrNoReply) {
		t.Fatalf("unanswered request: %v, want ErrNoReply", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("the request ran %d times, want once", n)
	}
}

func runConcurrent(t *testing.T, f Factory) {
	b := f.New(t)
	p := f.Peer(t, b)
	serve(t, p, "media:x", func(_ context.Context, req []byte) []byte {
		time.Sleep(time.Millisecond)
		return append([]byte("re:"), req...)
	})
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := fmt.Sprintf("r%d", i)
			got, err := request(t, b, "media:x", []byte(req), bound)
			if err != nil || string(got) != "re:"+req {
				t.Errorf("request %s = %q, %v", req, got, err)
			}
		}()
	}
	wg.Wait()
}

// runServeStops: once Serve returned, requests find no server; a new
// Serve (the next owner) takes over the channel.
func runServeStops(t *testing.T, f Factory) {
	b := f.New(t)
	p := f.Peer(t, b)
	stop := serve(t, p, "media:x", echo)
	if _, err := request(t, b, "media:x", []byte("1"), bound); err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := request(t, b, "media:x", []byte("2"), 300*time.Millisecond); !errors.Is(err, relay.ErrNoServer) {
		t.Fatalf("after Serve returned: %v, want ErrNoServer", err)
	}
	serve(t, b, "media:x", func(_ context.Context, req []byte) []byte { return []byte("new owner") })
	if got, err := request(t, p, "media:x", []byte("3"), bound); err != nil || string(got) != "new owner" {
		t.Fatalf("after a new Serve: %q, %v", got, err)
	}
}
