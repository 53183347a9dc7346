package sip

import (
	"bytes"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
)

// TestSippRightPasswordAfterWrongOnes: ten wrong answers from a device's
// address do not lock its user: the right password registers at once.
func TestSippRightPasswordAfterWrongOnes(t *testing.T) {
	h := startServer(t, Config{}, nil, WithAuthBackoff(20*time.Millisecond, 100*time.Millisecond))
	port := testpeer.FreeUDPPort(t)
	p := startSipp(t, "ten wrong", port, h.addr, "-sf", scenario("register_wrong_once.xml"), "-m", "10", "-l", "1",
		"-au", "a1", "-ap", "not-the-password", "-key", "user", "a1")
	p.wait(t, 60*time.Second)
	if got := h.srv.Contacts("a1"); len(got) != 0 {
		t.Fatalf("wrong passwords registered %v", got)
	}
	if n := h.srv.auth.failuresOf("127.0.0.1", "a1"); n < 10 {
		t.Fatalf("%d failures counted, want 10", n)
	}
	h.register(t, "a1", port) // same address and port, right password
	h.rec.waitFor(t, "a1 registered", 5*time.Second, deviceState("a1", true))
	if n := h.srv.auth.failuresOf("127.0.0.1", "a1"); n != 0 {
		t.Fatalf("failures not forgotten after the right password: %d", n)
	}
}

// TestWrongAnswersHeldBack: once the failures add up, a wrong answer's 403
// is held back for a doubling backoff, and an answer arriving while one is
// held is refused without being checked — the right password included,
// which is why only the guesser's own (source, user) pays.
func TestWrongAnswersHeldBack(t *testing.T) {
	h := startServer(t, Config{}, nil, WithMaxAuthFailures(1), WithAuthBackoff(300*time.Millisecond, time.Second))
	c := newSIPClient(t, h)
	start := time.Now()
	if res := c.do(t, c.register("a2", []string{"sip:a2@127.0.0.1:7002"}, "60"), "a2", "wrong"); res.StatusCode != 403 {
		t.Fatalf("wrong answer: %d", res.StatusCode)
	}
	if held := time.Since(start); held < 300*time.Millisecond {
		t.Fatalf("403 after %v, want it held back at least 300 ms", held)
	}
	// Another user from the same address is not affected.
	if res := c.do(t, c.register("a3", []string{"sip:a3@127.0.0.1:7003"}, "60"), "a3", "sip-a3"); res.StatusCode != 200 {
		t.Fatalf("other user: %d", res.StatusCode)
	}
	// And a2's right password still wins when nothing is held.
	if res := c.do(t, c.register("a2", []string{"sip:a2@127.0.0.1:7002"}, "60"), "a2", "sip-a2"); res.StatusCode != 200 {
		t.Fatalf("right password after a wrong one: %d", res.StatusCode)
	}
}

type countingObserver struct{ n atomic.Int64 }

func (o *countingObserver) MalformedPacket(string) { o.n.Add(1) }

// lockedBuffer is a log sink safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestMalformedPacketsCountedAndLoggedOnce: 1,000 unparseable packets from
// one source are each counted, logged once at WARN without their content,
// never at ERROR; the server still answers afterwards.
func TestMalformedPacketsCountedAndLoggedOnce(t *testing.T) {
	var logs lockedBuffer
	obs := &countingObserver{}
	h := startServer(t, Config{}, nil, WithPacketObserver(obs),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	conn, err := net.Dial("udp", h.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const marker = "SECRET-PACKET-CONTENT"
	garbage := []byte("INVITE nonsense\r\nVia: ???\r\nX: " + marker + strings.Repeat("x", 500) + "\r\n\r\n")
	const n = 1000
	deadline := time.Now().Add(60 * time.Second)
	for sent := 0; sent < n; {
		// Batches small enough for the socket buffer: UDP drops the rest.
		for range 50 {
			if _, err := conn.Write(garbage); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		for obs.n.Load() < int64(sent) {
			if time.Now().After(deadline) {
				t.Fatalf("observer counted %d of %d malformed packets sent", obs.n.Load(), sent)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The server still serves: a real REGISTER gets its challenge.
	c := newSIPClient(t, h)
	if res := c.do(t, c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "60"), "a1", "sip-a1"); res.StatusCode != 200 {
		t.Fatalf("REGISTER after the flood: %d", res.StatusCode)
	}
	out := logs.String()
	if strings.Contains(out, marker) {
		t.Fatal("a malformed packet's content reached the log")
	}
	if strings.Contains(out, "level=ERROR") {
		t.Fatalf("malformed packets logged at ERROR:\n%.2000s", out)
	}
	if lines := strings.Count(out, "malformed packet dropped"); lines != 1 {
		t.Fatalf("%d log lines for one source within the interval, want 1", lines)
	}
	t.Logf("%d malformed packets counted, %d log bytes", obs.n.Load(), len(out))
}
