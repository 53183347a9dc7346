package sip

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
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

// TestCancelRacingInvite: 50 callers each send their CANCEL in the same
// instant as their INVITE, over a real UDP socket (sipp cannot: it reads
// responses between the two sends). Every CANCEL gets 200 and every
// INVITE 487 — never 481 — and no call is left live: every CallArrived
// routing heard has its LegEnded, and the server holds no inbound leg.
func TestCancelRacingInvite(t *testing.T) {
	// Routing only plays ringback: each call stays ringing until its CANCEL.
	h := startServer(t, Config{}, func(h *harness, f media.Fact) {
		if a, ok := f.(media.CallArrived); ok {
			_ = h.srv.Hold(context.Background(), a.Leg, media.HoldRingback)
		}
	})
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	dst, _ := net.ResolveUDPAddr("udp", h.addr)
	local := conn.LocalAddr().String()
	const calls = 50
	msg := func(method string, n int, cseqMethod string) []byte {
		return []byte(fmt.Sprintf("%s sip:800@%s SIP/2.0\r\n"+
			"Via: SIP/2.0/UDP %s;branch=z9hG4bK-race-%d\r\n"+
			"From: <sip:+4930123456@%s>;tag=race%d\r\nTo: <sip:800@%s>\r\n"+
			"Call-ID: race-%d@test\r\nCSeq: 1 %s\r\nContact: <sip:caller@%s>\r\n"+
			"Max-Forwards: 70\r\nContent-Length: 0\r\n\r\n",
			method, h.addr, local, n, local, n, h.addr, n, cseqMethod, local))
	}
	for n := range calls {
		if _, err := conn.WriteTo(msg("INVITE", n, "INVITE"), dst); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.WriteTo(msg("CANCEL", n, "CANCEL"), dst); err != nil {
			t.Fatal(err)
		}
	}
	cancelOK, inviteDone := map[string]bool{}, map[string]int{}
	buf := make([]byte, 4096)
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	for len(cancelOK) < calls || len(inviteDone) < calls {
		n, _, err := conn.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d CANCEL answers and %d INVITE finals: %v", len(cancelOK), len(inviteDone), err)
		}
		res := string(buf[:n])
		var code int
		_, _ = fmt.Sscanf(res, "SIP/2.0 %d", &code)
		callID := headerOf(res, "Call-ID")
		switch cseq := headerOf(res, "CSeq"); {
		case strings.HasSuffix(cseq, "CANCEL"):
			if code != 200 {
				t.Fatalf("CANCEL of %s answered %d", callID, code)
			}
			cancelOK[callID] = true
		case strings.HasSuffix(cseq, "INVITE") && code >= 200:
			if code != 487 {
				t.Fatalf("INVITE %s ended %d, want 487", callID, code)
			}
			inviteDone[callID] = code
			var num int
			_, _ = fmt.Sscanf(callID, "race-%d@test", &num)
			ack := strings.Replace(string(msg("ACK", num, "ACK")), "To: <sip:800@"+h.addr+">", "To: "+headerOf(res, "To"), 1)
			_, _ = conn.WriteTo([]byte(ack), dst)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		arrived, ended := map[media.LegID]bool{}, map[media.LegID]bool{}
		for _, f := range h.rec.all() {
			switch f := f.(type) {
			case media.CallArrived:
				arrived[f.Leg] = true
			case media.LegEnded:
				ended[f.Leg] = true
			}
		}
		live := 0
		for leg := range arrived {
			if !ended[leg] {
				live++
			}
		}
		h.srv.mu.Lock()
		legs := len(h.srv.inLegs)
		h.srv.mu.Unlock()
		if live == 0 && legs == 0 {
			t.Logf("%d racing CANCELs: %d calls reached routing (and ended), %d never arrived", calls, len(arrived), calls-len(arrived))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls live for routing, %d inbound legs held", live, legs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// headerOf is the value of the first header name in a raw SIP message.
func headerOf(msg, name string) string {
	for _, line := range strings.Split(msg, "\r\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(strings.TrimSpace(k), name) {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
