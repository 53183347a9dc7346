package esl

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the fake clock every test client reads: facts carry it, so they
// compare exactly.
var t0 = time.Date(2026, 11, 21, 19, 20, 0, 0, time.UTC)

func at() media.FactBase { return media.FactBase{At: t0} }

// recorder is a media.Facts that keeps everything reported.
type recorder struct {
	mu    sync.Mutex
	facts []media.Fact
	wake  chan struct{}
}

func newRecorder() *recorder { return &recorder{wake: make(chan struct{})} }

func (r *recorder) Report(f media.Fact) {
	r.mu.Lock()
	r.facts = append(r.facts, f)
	close(r.wake)
	r.wake = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) all() []media.Fact {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]media.Fact(nil), r.facts...)
}

// wait blocks until a fact equal to want has been reported.
func (r *recorder) wait(t testing.TB, want media.Fact) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		for _, f := range r.facts {
			if reflect.DeepEqual(f, want) {
				r.mu.Unlock()
				return
			}
		}
		wake := r.wake
		r.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("fact never reported: %#v\nhave:\n%s", want, dump(r.all()))
		}
	}
}

func dump(fs []media.Fact) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "  %T %+v\n", f, f)
	}
	return b.String()
}

// assertFacts compares every fact reported with want, in order.
func assertFacts(t testing.TB, r *recorder, want ...media.Fact) {
	t.Helper()
	got := r.all()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("facts:\n got:\n%s want:\n%s", dump(got), dump(want))
	}
}

// assertCommands compares every command the fake received with want.
func assertCommands(t testing.TB, f *fakeFS, want ...string) {
	t.Helper()
	got := f.commands()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("commands:\n got: %q\nwant: %q", got, want)
	}
}

// testLogger discards unless ESL_TEST_LOG=1.
func testLogger() *slog.Logger {
	if os.Getenv("ESL_TEST_LOG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// withUUIDs makes Dial/Monitor use the recorded uuids, in order.
func withUUIDs(t testing.TB, uuids ...string) Option {
	return func(c *Client) {
		var mu sync.Mutex
		c.newUUID = func() string {
			mu.Lock()
			defer mu.Unlock()
			if len(uuids) == 0 {
				t.Errorf("more uuids asked for than the test provides")
				return randomUUID()
			}
			u := uuids[0]
			uuids = uuids[1:]
			return u
		}
	}
}

// testConfig dials agents as the recorder did: user/<id>@127.0.0.1.
func testConfig(addr string) Config {
	return Config{
		Addr: addr, Password: "callfloor",
		DeviceFor: func(id string) string { return "user/" + id + "@127.0.0.1" },
	}
}

// running is a Client whose Run goroutine the test stops and joins.
type running struct {
	*Client
	cancel context.CancelFunc
	done   chan error
}

func start(t testing.TB, cfg Config, facts media.Facts, opts ...Option) *running {
	t.Helper()
	opts = append([]Option{WithLogger(testLogger()), WithBackoff(10*time.Millisecond, 50*time.Millisecond)}, opts...)
	c, err := New(cfg, facts, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c.now = func() time.Time { return t0 }
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Client: c, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- c.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop ends Run and waits for it.
func (r *running) stop(t testing.TB) error {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // stop may be called twice
		return err
	case <-time.After(10 * time.Second):
		t.Fatalf("Run did not return after cancel")
		return nil
	}
}

// waitReady waits until the client has connected and resynced.
func (r *running) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !r.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("client never connected")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return c
}

// ourSubscription is the event command callfloor sends.
var ourSubscription = "event plain " + strings.Join(subscription, " ")

// connectSteps: auth, subscribe (recorded slots 0 and 1), empty resync.
func connectSteps() []step {
	return append([]step{rec(0, "auth callfloor"), rec(1, ourSubscription)}, emptyResync()...)
}
