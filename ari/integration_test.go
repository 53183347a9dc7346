package ari

import (
	"context"
	"errors"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// These tests run the flows against a real Asterisk configured with
// ../asterisk-conf (its callfloor-test context plays the devices through
// Local channels, so no SIP phone is needed):
//
//	CALLFLOOR_TEST_ARI_URL=http://127.0.0.1:8088/ari CALLFLOOR_TEST_ARI_USER=callfloor \
//	CALLFLOOR_TEST_ARI_PASSWORD=callfloor CALLFLOOR_TEST_ARI_APP=callfloor go test -race -run Asterisk ./ari/
//
// Stop any callfloor using that Asterisk first: it has one event socket
// per application, so a second controller of "callfloor" replaces the
// test's socket and takes its calls (the tests then fail at random).

const testDevices = "callfloor-test"

func realConfig(t *testing.T) Config {
	t.Helper()
	u := os.Getenv("CALLFLOOR_TEST_ARI_URL")
	if u == "" {
		t.Skip("no Asterisk: set CALLFLOOR_TEST_ARI_URL (and CALLFLOOR_TEST_ARI_USER, CALLFLOOR_TEST_ARI_PASSWORD, CALLFLOOR_TEST_ARI_APP) to run against one configured with asterisk-conf/")
	}
	return Config{URL: u, User: os.Getenv("CALLFLOOR_TEST_ARI_USER"),
		Password: os.Getenv("CALLFLOOR_TEST_ARI_PASSWORD"), App: os.Getenv("CALLFLOOR_TEST_ARI_APP")}
}

type live struct {
	c    *Client
	rec  *recorder
	ctx  context.Context
	stop func() // ends Run and waits for it
}

func startReal(t *testing.T, cfg Config, opts ...Option) *live {
	t.Helper()
	rec := &recorder{}
	c, err := New(cfg, rec, append([]Option{WithLogger(testLogger(t)), WithBackoff(50*time.Millisecond, time.Second)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	l := &live{c: c, rec: rec, ctx: ctx, stop: stop}
	l.await(t, "LegsPresent", func(f media.Fact) bool { _, ok := f.(media.LegsPresent); return ok })
	return l
}

// await waits up to 20s for a fact matching ok (other facts are skipped).
func (l *live) await(t *testing.T, what string, ok func(media.Fact) bool) media.Fact {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		l.rec.mu.Lock()
		for i := l.rec.taken; i < len(l.rec.facts); i++ {
			if ok(l.rec.facts[i]) {
				f := l.rec.facts[i]
				l.rec.taken = i + 1
				l.rec.mu.Unlock()
				return f
			}
		}
		l.rec.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no %s within 20s; facts: %+v", what, l.rec.facts)
	return nil
}

func (l *live) ended(t *testing.T, leg media.LegID) media.Cause {
	t.Helper()
	f := l.await(t, "LegEnded "+string(leg), func(f media.Fact) bool {
		e, ok := f.(media.LegEnded)
		return ok && e.Leg == leg
	})
	return f.(media.LegEnded).Cause
}

func (l *live) answeredLeg(t *testing.T, leg media.LegID) {
	t.Helper()
	l.await(t, "LegAnswered "+string(leg), func(f media.Fact) bool {
		a, ok := f.(media.LegAnswered)
		return ok && a.Leg == leg
	})
}

// inject places a trunk-like call: a Local channel runs the hotline in
// from-trunk (so the dialplan hands it to Stasis) while its other half
// waits in callfloor-test.
func (l *live) inject(t *testing.T) media.LegID {
	t.Helper()
	q := url.Values{"endpoint": {"Local/" + hotline + "@from-trunk/n"}, "extension": {"caller"},
		"context": {testDevices}, "priority": {"1"}, "callerId": {caller}}
	if err := l.c.rest.do(l.ctx, "POST", "/channels", q, nil); err != nil {
		t.Fatal(err)
	}
	f := l.await(t, "CallArrived", func(f media.Fact) bool { a, ok := f.(media.CallArrived); return ok && a.Hotline == hotline })
	return f.(media.CallArrived).Leg
}

func device(ext string) media.Target {
	return media.Target{AgentID: ext, Distribution: presence.DistApp, AppDevice: "Local/" + ext + "@" + testDevices + "/n"}
}

func TestAsteriskUnreachable(t *testing.T) {
	l := startReal(t, realConfig(t))
	_, err := l.c.Dial(l.ctx, media.DialRequest{CallID: "it", Target: agentTarget("a8"), Timeout: 5 * time.Second})
	if !errors.Is(err, media.ErrUnreachable) {
		t.Fatalf("Dial to a8 (no contact) = %v, want ErrUnreachable", err)
	}
}

func TestAsteriskInboundMonitorHangup(t *testing.T) {
	l := startReal(t, realConfig(t))
	cust := l.inject(t)
	must(t, l.c.Answer(l.ctx, cust))
	must(t, l.c.Hold(l.ctx, cust, media.HoldMusic))
	agent, err := l.c.Dial(l.ctx, media.DialRequest{CallID: "it", Target: device("answer"), Timeout: 10 * time.Second, CallerID: caller})
	must(t, err)
	l.answeredLeg(t, agent)
	must(t, l.c.Connect(l.ctx, cust, agent))
	sup, err := l.c.Monitor(l.ctx, media.MonitorRequest{CallID: "it", Customer: cust, Agent: agent,
		Supervisor: device("answer"), Mode: media.MonitorListen, Timeout: 10 * time.Second})
	must(t, err)
	l.answeredLeg(t, sup)
	time.Sleep(300 * time.Millisecond) // set-up runs after the answer
	for _, m := range []media.MonitorMode{media.MonitorWhisper, media.MonitorBarge, media.MonitorListen} {
		must(t, l.c.SetMonitorMode(l.ctx, sup, m))
	}
	must(t, l.c.Mute(l.ctx, sup, true))
	must(t, l.c.Mute(l.ctx, sup, false))
	must(t, l.c.Hangup(l.ctx, sup, media.CauseNormal))
	l.ended(t, sup)
	must(t, l.c.Hangup(l.ctx, agent, media.CauseNormal))
	l.ended(t, agent)
	must(t, l.c.Hangup(l.ctx, cust, media.CauseNormal))
	l.ended(t, cust)
}

func TestAsteriskNoAnswerAndBusy(t *testing.T) {
	l := startReal(t, realConfig(t))
	cust := l.inject(t)
	must(t, l.c.Answer(l.ctx, cust))
	leg, err := l.c.Dial(l.ctx, media.DialRequest{CallID: "it", Target: device("noanswer"), Timeout: 2 * time.Second})
	must(t, err)
	// The device rings (Ringing() in callfloor-test): the fact comes from
	// Dial RINGING, the event filter keeping ChannelStateChange out.
	l.await(t, "LegRinging "+string(leg), func(f media.Fact) bool {
		r, ok := f.(media.LegRinging)
		return ok && r.Leg == leg
	})
	if c := l.ended(t, leg); c != media.CauseNoAnswer {
		t.Errorf("no answer ended with %s", c)
	}
	leg, err = l.c.Dial(l.ctx, media.DialRequest{CallID: "it", Target: device("busy"), Timeout: 10 * time.Second})
	must(t, err)
	if c := l.ended(t, leg); c != media.CauseBusy {
		t.Errorf("busy ended with %s", c)
	}
	must(t, l.c.Hangup(l.ctx, cust, media.CauseNormal))
	l.ended(t, cust)
}

// A controller restart: the call stays in Stasis and the next controller
// lists it.
func TestAsteriskRestartKeepsCall(t *testing.T) {
	cfg := realConfig(t)
	first := startReal(t, cfg)
	cust := first.inject(t)
	must(t, first.c.Answer(first.ctx, cust))
	first.stop() // the controller goes away; the call stays in Stasis

	second := startReal(t, cfg)
	second.rec.mu.Lock()
	var present media.LegsPresent
	for _, f := range second.rec.facts {
		if p, ok := f.(media.LegsPresent); ok {
			present = p
		}
	}
	second.rec.mu.Unlock()
	found := false
	for _, s := range present.Legs {
		found = found || s.Leg == cust && s.Hotline == hotline
	}
	if !found {
		t.Fatalf("restarted controller lists %+v, want %s", present.Legs, cust)
	}
	must(t, second.c.Hangup(second.ctx, cust, media.CauseNormal))
	second.ended(t, cust)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
