package sip

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// BenchmarkRegisterHandler measures one authenticated REGISTER through
// the handler (digest check, binding update, DeviceState, 200 OK) without
// the network.
func BenchmarkRegisterHandler(b *testing.B) {
	s := newIdleServer(b, discard{})
	s.baseCtx = context.Background() // the handler bounds its lookups by it
	chal, err := digest.ParseChallenge(s.auth.challenge("127.0.0.1", false))
	if err != nil {
		b.Fatal(err)
	}
	parser := sip.NewParser()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		cred, _ := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: "sip:127.0.0.1", Username: "a1", Password: "sip-a1", Count: i + 1, Cnonce: "c"})
		raw := fmt.Sprintf("REGISTER sip:127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5099;branch=z9hG4bK%d\r\nFrom: <sip:a1@127.0.0.1>;tag=1\r\nTo: <sip:a1@127.0.0.1>\r\nCall-ID: bench\r\nCSeq: %d REGISTER\r\nContact: <sip:a1@127.0.0.1:5099>\r\nExpires: 3600\r\nAuthorization: %s\r\nContent-Length: 0\r\n\r\n", i, i+1, cred.String())
		msg, err := parser.ParseSIP([]byte(raw))
		if err != nil {
			b.Fatal(err)
		}
		req := msg.(*sip.Request)
		req.SetSource("127.0.0.1:5099")
		tx := newFakeTx()
		s.handleRequest(req, tx)
		if c := tx.codes(); len(c) != 1 || c[0] != 200 {
			b.Fatalf("iteration %d: %v", i, c)
		}
	}
}

// BenchmarkRegisterUDP measures authenticated REGISTER round trips over
// loopback UDP with a sipgo client (the nonce is reused with a rising
// nonce count, as phones do between challenges).
func BenchmarkRegisterUDP(b *testing.B) {
	h := startServer(b, Config{}, nil)
	c := newSIPClient(b, h)
	ctx := context.Background()
	first, err := c.cli.Do(ctx, c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "3600"))
	if err != nil || first.StatusCode != 401 {
		b.Fatalf("challenge: %v %v", first, err)
	}
	chal := challengeOf(b, first)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := c.register("a1", []string{"sip:a1@127.0.0.1:7001"}, "3600")
		cred, _ := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(), Username: "a1", Password: "sip-a1", Count: i + 1})
		req.AppendHeader(sip.NewHeader("Authorization", cred.String()))
		res, err := c.cli.Do(ctx, req)
		if err != nil || res.StatusCode != 200 {
			b.Fatalf("iteration %d: %v %v", i, res, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "registers/s")
}

// loadRouter routes every call to agent a1 (many calls at once).
type loadRouter struct {
	mu       sync.Mutex
	agentOf  map[media.LegID]media.LegID // customer → agent leg
	customer map[media.LegID]media.LegID // agent leg → customer
	errs     int
}

func (r *loadRouter) script(h *harness, f media.Fact) {
	ctx := context.Background()
	r.mu.Lock()
	defer r.mu.Unlock()
	switch f := f.(type) {
	case media.CallArrived:
		_ = h.srv.Hold(ctx, f.Leg, media.HoldRingback)
		leg, err := h.srv.Dial(ctx, media.DialRequest{CallID: string(f.Leg), CallerID: f.Caller, Timeout: 10 * time.Second,
			Target: media.Target{AgentID: "a1", Distribution: presence.DistApp}})
		if err != nil {
			r.errs++
			_ = h.srv.Hangup(ctx, f.Leg, media.CauseUnreachable)
			return
		}
		r.agentOf[f.Leg], r.customer[leg] = leg, f.Leg
	case media.LegAnswered:
		if c, ok := r.customer[f.Leg]; ok {
			if err := h.srv.Connect(ctx, c, f.Leg); err != nil {
				r.errs++
			}
		}
	case media.LegEnded:
		if a, ok := r.agentOf[f.Leg]; ok {
			_ = h.srv.Hangup(ctx, a, media.CauseNormal)
			delete(r.agentOf, f.Leg)
		}
		if c, ok := r.customer[f.Leg]; ok {
			_ = h.srv.Hangup(ctx, c, media.CauseNormal)
			delete(r.customer, f.Leg)
		}
	}
}

// BenchmarkSippCalls drives b.N calls from a sipp trunk through the
// B2BUA to a sipp agent phone at a fixed offered rate (SIP_BENCH_RATE
// calls/s, default 50); it reports the achieved calls/s. Run it with a
// fixed count, e.g. -benchtime=500x.
func BenchmarkSippCalls(b *testing.B) {
	rate := 50
	if v, err := strconv.Atoi(getenv("SIP_BENCH_RATE")); err == nil && v > 0 {
		rate = v
	}
	r := &loadRouter{agentOf: map[media.LegID]media.LegID{}, customer: map[media.LegID]media.LegID{}}
	h := startServer(b, Config{}, r.script)
	agentPort := testpeer.FreeUDPPort(b)
	h.register(b, "a1", agentPort)
	n := strconv.Itoa(b.N)
	agent := startSipp(b, "agent load", agentPort, "-sf", scenario("agent_answer.xml"), "-m", n, "-key", "agent", "a1")
	time.Sleep(200 * time.Millisecond) // sipp binds its port
	b.ResetTimer()
	start := time.Now()
	call := startSipp(b, "caller load", testpeer.FreeUDPPort(b), h.addr, "-sf", scenario("caller.xml"), "-m", n,
		"-s", "800", "-d", "100", "-r", strconv.Itoa(rate), "-l", "500")
	call.wait(b, 10*time.Minute)
	elapsed := time.Since(start)
	b.StopTimer()
	agent.wait(b, time.Minute)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "calls/s")
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.errs > 0 {
		b.Errorf("%d routing errors", r.errs)
	}
}
