package ari

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"go.uber.org/goleak"
	"golang.org/x/net/websocket"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is a media.Facts that keeps every fact (without its time).
type recorder struct {
	mu    sync.Mutex
	facts []media.Fact
	taken int
}

func (r *recorder) Report(f media.Fact) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.facts = append(r.facts, stripTime(f))
}

func stripTime(f media.Fact) media.Fact {
	z := media.FactBase{}
	switch v := f.(type) {
	case media.CallArrived:
		v.FactBase = z
		return v
	case media.LegRinging:
		v.FactBase = z
		return v
	case media.LegAnswered:
		v.FactBase = z
		return v
	case media.LegEnded:
		v.FactBase = z
		return v
	case media.DTMF:
		v.FactBase = z
		return v
	case media.DeviceState:
		v.FactBase = z
		return v
	case media.LegsPresent:
		v.FactBase = z
		return v
	}
	return f
}

// await waits (up to 5 s) until at least n facts are pending.
func (r *recorder) await(n int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.mu.Lock()
		pending := len(r.facts) - r.taken
		r.mu.Unlock()
		if pending >= n || time.Now().After(deadline) {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// expect waits until the next facts are exactly want, in order.
func (r *recorder) expect(t testing.TB, want ...media.Fact) {
	t.Helper()
	r.await(len(want))
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	got := append([]media.Fact(nil), r.facts[r.taken:]...)
	r.taken = len(r.facts)
	r.mu.Unlock()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("facts:\n got  %+v\n want %+v", got, want)
	}
}

// skip drops facts of a type from the pending ones (initial presence).
func (r *recorder) drain() []media.Fact {
	time.Sleep(20 * time.Millisecond)
	r.mu.Lock()
	defer r.mu.Unlock()
	got := append([]media.Fact(nil), r.facts[r.taken:]...)
	r.taken = len(r.facts)
	return got
}

type testLogWriter struct{ t testing.TB }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("ARI_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type harness struct {
	f   *fakeARI
	c   *Client
	rec *recorder
	ctx context.Context
}

// presence lists the DeviceState facts a fresh connection reports from
// GET /endpoints of the fake's default endpoints.
func initialPresence() []media.Fact {
	var out []media.Fact
	for _, ep := range fakeEndpoints {
		out = append(out, media.DeviceState{AgentID: ep, Device: "PJSIP/" + ep, Registered: fakeRegistered(ep)})
	}
	return out
}

// fakeEndpoints are the PJSIP endpoints the fake Asterisk has: the
// agents' app devices and, for the app_sip agents, their IP phones.
var fakeEndpoints = []string{"trunk", "sup-sales", "sup-sales-desk", "sup-support", "a1", "a1-desk", "a2", "a2-desk", "a3", "a8"}

// fakeRegistered says which of them have a contact at start.
func fakeRegistered(ep string) bool {
	switch ep {
	case "a1", "a1-desk", "a2", "a2-desk", "sup-sales", "sup-sales-desk":
		return true
	}
	return false
}

// connectRequests is what a client without a device list sends on its
// first connection: the event filter, the subscriptions Asterisk keeps
// for the application (none yet), the whole technology's endpoints, the
// resync.
var connectRequests = []string{
	"PUT /applications/callfloor/eventFilter",
	"GET /applications/callfloor",
	"POST /applications/callfloor/subscription?eventSource=endpoint%3APJSIP",
	"GET /channels", "GET /bridges", "GET /endpoints",
}

// reconnectRequests: on a later connection Asterisk still has the
// subscription, so none is made.
var reconnectRequests = []string{
	"PUT /applications/callfloor/eventFilter",
	"GET /applications/callfloor",
	"GET /channels", "GET /bridges", "GET /endpoints",
}

// e2eConnectRequests is what the product's client (Config.Devices over
// the demo floor's agents) sends on its first connection: the event
// filter, the application's subscriptions, one subscription to every
// agent device's state, the resync.
var e2eConnectRequests = []string{
	"PUT /applications/callfloor/eventFilter",
	"GET /applications/callfloor",
	"POST /applications/callfloor/subscription?eventSource=" + esc(strings.Join(demoDeviceSources(), ",")),
	"GET /channels", "GET /bridges", "GET /endpoints",
}

// demoDeviceSources are the device-state sources of the demo floor's
// agents' app devices and IP phones, sorted by SIP user.
func demoDeviceSources() []string {
	var out []string
	for _, u := range []string{"a1", "a2", "a3", "a4", "a5", "a6", "a7", "a8", "admin", "sup-sales", "sup-support"} {
		out = append(out, "deviceState:PJSIP/"+u, "deviceState:PJSIP/"+u+"-desk")
	}
	return out
}

// e2eReconnectRequests: on a later connection the devices are still
// subscribed, as Asterisk lists them.
var e2eReconnectRequests = []string{
	"PUT /applications/callfloor/eventFilter",
	"GET /applications/callfloor",
	"GET /channels", "GET /bridges", "GET /endpoints",
}

// start runs a Client against a fresh fake and waits for its first resync.
func start(t *testing.T, opts ...Option) *harness {
	t.Helper()
	f := newFake(t)
	rec := &recorder{}
	c, err := New(Config{URL: f.URL(), User: "callfloor", Password: "secret", App: "callfloor"}, rec,
		append([]Option{WithLogger(testLogger(t)), WithBackoff(5*time.Millisecond, 40*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		f.Close()
	})
	h := &harness{f: f, c: c, rec: rec, ctx: ctx}
	f.expectRequests(connectRequests...)
	rec.expect(t, append([]media.Fact{media.LegsPresent{}}, initialPresence()...)...)
	if !c.Connected() {
		t.Fatal("not connected after first resync")
	}
	return h
}

func originateReq(app, args, callerID, channelID, endpoint string, timeout int) string {
	q := fmt.Sprintf("POST /channels?app=%s&appArgs=%s", app, esc(args))
	if callerID != "" {
		q += "&callerId=" + esc(`"`+callerID+`" <`+callerID+`>`)
	}
	return q + fmt.Sprintf("&channelId=%s&endpoint=%s&timeout=%d", channelID, esc(endpoint), timeout)
}

// startOn runs a Client against an existing fake (state pre-seeded).
func startOn(t *testing.T, f *fakeARI, opts ...Option) *harness {
	t.Helper()
	rec := &recorder{}
	c, err := New(Config{URL: f.URL(), User: "callfloor", Password: "secret"}, rec,
		append([]Option{WithLogger(testLogger(t)), WithBackoff(5*time.Millisecond, 40*time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, c.Connected)
	return &harness{f: f, c: c, rec: rec, ctx: ctx}
}

func fmtFact(f media.Fact) string { return fmt.Sprintf("%+v", stripTime(f)) }

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// dialRaw opens a second events socket for the same app, as another
// controller would.
func dialRaw(t *testing.T, f *fakeARI) *websocket.Conn {
	t.Helper()
	cfg, err := websocket.NewConfig(strings.Replace(f.URL(), "http", "ws", 1)+"/events?app=callfloor&subscribeAll=false", "http://localhost/")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Header.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("callfloor:secret")))
	ws, err := cfg.DialContext(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// forkTarget is a1 in app_sip mode: a Dial rings the app endpoint
// (PJSIP/a1) and the IP phone (PJSIP/a1-desk) together.
var forkTarget = media.Target{AgentID: "a1", Distribution: presence.DistAppSIP, Phone: "+84909000001"}

// dialFork dials forkTarget and returns the logical leg, the IP phone's
// channel and the requests the Dial made (taken from the fake).
func (h *harness) dialFork(t *testing.T) (media.LegID, string, []string) {
	t.Helper()
	leg, err := h.c.Dial(h.ctx, media.DialRequest{CallID: "c", Target: forkTarget, Timeout: 15 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	reqs := h.f.takeRequests()
	return leg, h.f.channelFor("a1-desk"), reqs
}
