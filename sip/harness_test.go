package sip

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
)

func TestMain(m *testing.M) {
	// sipgo's client transport opens a UDP connection (and its reader) for
	// a request sent after its UserAgent was closed — a transaction timer
	// retransmitting into a test that has already shut its phone or
	// server down — and nothing closes that connection again. The reader
	// is sipgo's, started after our Close returned; every goroutine of
	// ours is still checked.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/emiago/sipgo/sip.(*TransportUDP).readUDPConnection"))
}

// demoDir is the demo floor's directory: every user's password is
// "sip-<user>"; users named "nobody*" do not exist.
type demoDir struct{}

func (demoDir) Password(_ context.Context, user string) (string, bool, error) {
	if user == "" || strings.HasPrefix(user, "nobody") {
		return "", false, nil
	}
	return "sip-" + user, true, nil
}

// testClock is time.Now shifted by an offset the test advances.
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// recorder is the media.Facts the tests use: it keeps every fact and
// hands each to an optional script, in order, on its own goroutine (as
// the routing engine does: Report only queues).
type recorder struct {
	mu      sync.Mutex
	facts   []media.Fact
	changed chan struct{}
	queue   chan media.Fact
}

func newRecorder() *recorder {
	return &recorder{changed: make(chan struct{}), queue: make(chan media.Fact, 4096)}
}

func (r *recorder) Report(f media.Fact) {
	r.mu.Lock()
	r.facts = append(r.facts, f)
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
	r.queue <- f
}

func (r *recorder) all() []media.Fact {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]media.Fact(nil), r.facts...)
}

// waitFor returns the first fact matching pred, failing the test after
// timeout.
func (r *recorder) waitFor(t testing.TB, what string, timeout time.Duration, pred func(media.Fact) bool) media.Fact {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for _, f := range r.facts {
			if pred(f) {
				r.mu.Unlock()
				return f
			}
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no fact %s within %s; facts: %s", what, timeout, describe(r.all()))
			return nil
		}
	}
}

func describe(fs []media.Fact) string {
	var b strings.Builder
	for _, f := range fs {
		fmt.Fprintf(&b, "\n  %T%+v", f, f)
	}
	return b.String()
}

// harness is a running Server on a free loopback port.
type harness struct {
	srv   *Server
	addr  string
	port  int
	rec   *recorder
	clock *testClock
	stop  func(t testing.TB) // shuts the server down (idempotent)
}

// scriptFunc plays routing: it sees every fact, in order.
type scriptFunc func(h *harness, f media.Fact)

func testLogger() *slog.Logger {
	if os.Getenv("SIP_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func startServer(t testing.TB, cfg Config, script scriptFunc, opts ...Option) *harness {
	t.Helper()
	return startServerWith(t, cfg, demoDir{}, script, opts...)
}

func startServerWith(t testing.TB, cfg Config, dir Directory, script scriptFunc, opts ...Option) *harness {
	t.Helper()
	port, chosen := 0, cfg.Addr == ""
	if !chosen {
		if _, p, err := net.SplitHostPort(cfg.Addr); err == nil {
			port, _ = strconv.Atoi(p) // a restart on the address of a Server before
		}
	}
	h := &harness{rec: newRecorder(), clock: &testClock{}}
	all := append([]Option{WithLogger(testLogger()), withClock(h.clock.now), WithSweepInterval(50 * time.Millisecond)}, opts...)
	var (
		cancel context.CancelFunc
		done   chan error
	)
	for attempt := 0; ; attempt++ {
		if chosen {
			port = pickPort(t)
			cfg.Addr = "127.0.0.1:" + strconv.Itoa(port)
		}
		srv, err := New(cfg, dir, h.rec, all...)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		var ctx context.Context
		ctx, cancel = context.WithCancel(context.Background())
		done = make(chan error, 1)
		go func() { done <- srv.Run(ctx) }()
		if listening(cfg.Addr) {
			h.srv, h.addr, h.port = srv, cfg.Addr, port
			break
		}
		// Run waits for an address in use to come free (server.go,
		// listen); a free port picked, closed and bound again can be taken
		// in between by another test's socket: pick another.
		cancel()
		if err := <-done; !chosen || !errors.Is(err, syscall.EADDRINUSE) || attempt == 4 {
			t.Fatalf("server did not start on %s: %v", cfg.Addr, err)
		}
	}
	scriptDone := make(chan struct{})
	stopScript := make(chan struct{})
	go func() {
		defer close(scriptDone)
		for {
			select {
			case f := <-h.rec.queue:
				if script != nil {
					script(h, f)
				}
			case <-stopScript:
				return
			}
		}
	}()
	var once sync.Once
	h.stop = func(t testing.TB) {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			close(stopScript)
			<-scriptDone
		})
	}
	t.Cleanup(func() { h.stop(t) })
	return h
}

// listening reports whether addr accepts TCP within about 2 s.
func listening(addr string) bool {
	for range 100 {
		c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond)
		if err == nil {
			c.Close()
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

func waitListening(t testing.TB, addr string) {
	t.Helper()
	if !listening(addr) {
		t.Fatalf("server did not start: %s accepts no connection", addr)
	}
}

// sipp is one running sipp process.
type sipp struct {
	name string
	cmd  *exec.Cmd
	out  bytes.Buffer
	dir  string
	done chan struct{}
	err  error
}

func scenario(name string) string {
	p, _ := filepath.Abs(filepath.Join("testdata", name))
	return p
}

// startSipp runs sipp with args plus the common ones: loopback, one
// call, no keyboard, a global timeout, error traces.
func startSipp(t testing.TB, name string, port int, args ...string) *sipp {
	t.Helper()
	bin := testpeer.Require(t, "sipp", "sip-tester")
	p := &sipp{name: name, dir: t.TempDir(), done: make(chan struct{})}
	common := []string{"-i", "127.0.0.1", "-p", strconv.Itoa(port), "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err", "-trace_msg", "-nr"}
	p.cmd = exec.Command(bin, append(args, common...)...)
	p.cmd.Dir = p.dir
	p.cmd.Stdout = &p.out
	p.cmd.Stderr = &p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start sipp %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// wait waits for sipp to exit and fails the test (with its traces)
// unless it exited 0, i.e. every call of the scenario succeeded.
func (p *sipp) wait(t testing.TB, timeout time.Duration) {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(timeout):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("sipp %s still running after %s", p.name, timeout)
	}
	if p.err != nil {
		t.Errorf("sipp %s: %v\n%s", p.name, p.err, p.traces())
	}
}

// traces is sipp's error and message logs, for failure reports.
func (p *sipp) traces() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(p.dir, "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 8000 {
			data = data[len(data)-8000:]
		}
		fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(f), data)
	}
	return b.String()
}

// register registers user from port with sipp (digest with the demo
// password) and waits for it to finish.
func (h *harness) register(t testing.TB, user string, port int) {
	t.Helper()
	p := startSipp(t, "register "+user, port, h.addr, "-sf", scenario("register.xml"), "-m", "1",
		"-au", user, "-ap", "sip-"+user, "-key", "user", user, "-key", "expires", "3600")
	p.wait(t, 20*time.Second)
}

// unregister removes user's contact at port (Expires 0) and waits.
func (h *harness) unregister(t testing.TB, user string, port int) {
	t.Helper()
	p := startSipp(t, "unregister "+user, port, h.addr, "-sf", scenario("register.xml"), "-m", "1",
		"-au", user, "-ap", "sip-"+user, "-key", "user", user, "-key", "expires", "0")
	p.wait(t, 20*time.Second)
}

func getenv(k string) string { return os.Getenv(k) }

// freeDualPort is a port free for both UDP and TCP a moment ago (the
// server listens on both).
// pickPort is how startServer picks its port (a test replaces it to hand
// out one already taken).
var pickPort = freeDualPort

func freeDualPort(t testing.TB) int {
	t.Helper()
	for i := 0; i < 50; i++ {
		p := testpeer.FreeUDPPort(t)
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatal("no port free for UDP and TCP")
	return 0
}

// A port taken between being picked and being bound (another test's
// socket) makes the harness pick another instead of failing the test.
func TestHarnessPicksAnotherPortWhenTaken(t *testing.T) {
	taken, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	busy := taken.LocalAddr().(*net.UDPAddr).Port
	picks := 0
	pickPort = func(t testing.TB) int {
		picks++
		if picks == 1 {
			return busy
		}
		return freeDualPort(t)
	}
	defer func() { pickPort = freeDualPort }()
	h := startServer(t, Config{}, nil)
	if h.port == busy || picks != 2 {
		t.Fatalf("server on port %d after %d picks (port %d was taken)", h.port, picks, busy)
	}
}
