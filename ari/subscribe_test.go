package ari

import (
	"context"
	"errors"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
)

// deviceList is a Config.Devices a test changes as it goes.
type deviceList struct {
	mu    sync.Mutex
	users []string
	err   error
}

func (d *deviceList) set(err error, users ...string) {
	d.mu.Lock()
	d.users, d.err = users, err
	d.mu.Unlock()
}

func (d *deviceList) list(context.Context) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.users), d.err
}

func withDevices(d *deviceList) Option { return func(c *Client) { c.cfg.Devices = d.list } }

// subsOf lists the fake's subscriptions for the application.
func (f *fakeARI) subsOf() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Sorted(maps.Keys(f.subs))
}

func subscribeReq(method string, sources ...string) string {
	return method + " /applications/callfloor/subscription?eventSource=" + url.QueryEscape(strings.Join(sources, ","))
}

// TestSubscribesToAgentDevices: with a device list the application
// subscribes to every agent device's state (Asterisk accepts a device it
// does not have yet), in one request, never to an endpoint, the trunk or
// the whole technology; a trunk call's channel events then come once,
// and so do a dialled agent's, with its device's change of state.
func TestSubscribesToAgentDevices(t *testing.T) {
	devs := &deviceList{}
	devs.set(nil, "a1", "a1-desk", "a2", "ghost")
	f := newFake(t)
	t.Cleanup(f.Close)
	h := startOn(t, f, withDevices(devs))
	want := []string{"deviceState:PJSIP/a1", "deviceState:PJSIP/a1-desk", "deviceState:PJSIP/a2", "deviceState:PJSIP/ghost"}
	f.expectRequests("PUT /applications/callfloor/eventFilter", "GET /applications/callfloor",
		subscribeReq("POST", want...), "GET /channels", "GET /bridges", "GET /endpoints")
	if got := f.subsOf(); !slices.Equal(got, want) {
		t.Fatalf("subscribed to %v, want %v", got, want)
	}
	h.rec.drain()

	f.mu.Lock()
	before := len(f.emitted)
	f.mu.Unlock()
	cust := f.Inbound(caller, hotline)
	h.rec.expect(t, media.CallArrived{Leg: media.LegID(cust), Caller: caller, Hotline: hotline})
	f.mu.Lock()
	trunk := len(f.emitted) - before
	f.mu.Unlock()
	if trunk != 1 { // StasisStart alone: no EndpointStateChange of the trunk
		t.Fatalf("a trunk call brought %d events, want 1", trunk)
	}
	leg := h.dialAgent(t, "a1", 15*time.Second)
	f.mu.Lock()
	before = len(f.emitted)
	f.mu.Unlock()
	f.Ring(string(leg))
	h.rec.expect(t, media.LegRinging{Leg: leg})
	f.mu.Lock()
	rang := f.emitted[before:]
	f.mu.Unlock()
	if len(rang) != 2 || !strings.Contains(string(rang[1]), `"DeviceStateChanged"`) || !strings.Contains(string(rang[1]), `"RINGING"`) {
		t.Fatalf("a1 ringing brought %d events, want Dial and DeviceStateChanged RINGING: %s", len(rang), rang)
	}
}

// TestSubscriptionsFollowDevices: the device list is re-read every sync
// period; a device added is subscribed (and registrations are reported
// again, since it may have registered before), one removed is
// unsubscribed, nothing is sent while the list stands still.
func TestSubscriptionsFollowDevices(t *testing.T) {
	devs := &deviceList{}
	devs.set(nil, "a1", "a2")
	f := newFake(t)
	t.Cleanup(f.Close)
	h := startOn(t, f, withDevices(devs), WithDeviceSync(20*time.Millisecond))
	waitFor(t, func() bool { return len(f.subsOf()) == 2 })
	h.rec.drain()
	f.takeRequests()

	// a3 registers before it is anybody's device: no event reaches us.
	f.Register("a3", true)
	if facts := h.rec.drain(); len(facts) != 0 {
		t.Fatalf("facts of an unsubscribed endpoint: %+v", facts)
	}
	devs.set(nil, "a1", "a3")
	waitFor(t, func() bool { return slices.Equal(f.subsOf(), []string{"deviceState:PJSIP/a1", "deviceState:PJSIP/a3"}) })
	time.Sleep(60 * time.Millisecond) // a few more periods: nothing changes, nothing sent
	reqs := f.takeRequests()
	var changes []string
	for _, r := range reqs {
		if r != "GET /endpoints" {
			changes = append(changes, r)
		}
	}
	if want := []string{subscribeReq("POST", "deviceState:PJSIP/a3"), subscribeReq("DELETE", "deviceState:PJSIP/a2")}; !slices.Equal(changes, want) {
		t.Fatalf("requests %q, want %q and GET /endpoints only", reqs, want)
	}
	// The refresh after a3 was subscribed reported its registration.
	facts := h.rec.drain()
	if !slices.ContainsFunc(facts, func(f media.Fact) bool {
		d, ok := f.(media.DeviceState)
		return ok && d.Device == "PJSIP/a3" && d.Registered
	}) {
		t.Fatalf("a3's registration not reported once subscribed: %+v", facts)
	}

	// a3's device states now reach the application; a2's no longer do.
	f.Register("a2", false)
	f.Register("a3", false)
	h.rec.expect(t, media.DeviceState{AgentID: "a3", Device: "PJSIP/a3", Registered: false})
}

// TestSubscriptionFallsBackToTechnology: without a device list (the
// store unreachable) the application subscribes to the whole technology,
// so presence keeps working; once the list is back it narrows to the
// devices' states (subscribing to them before dropping the technology).
func TestSubscriptionFallsBackToTechnology(t *testing.T) {
	devs := &deviceList{}
	devs.set(errors.New("store down"))
	f := newFake(t)
	t.Cleanup(f.Close)
	startOn(t, f, withDevices(devs), WithDeviceSync(20*time.Millisecond))
	waitFor(t, func() bool { return slices.Equal(f.subsOf(), []string{"endpoint:PJSIP"}) })
	f.takeRequests()

	devs.set(nil, "a1")
	waitFor(t, func() bool { return slices.Equal(f.subsOf(), []string{"deviceState:PJSIP/a1"}) })
	var changes []string
	for _, r := range f.takeRequests() {
		if strings.Contains(r, "/subscription") {
			changes = append(changes, r)
		}
	}
	if want := []string{subscribeReq("POST", "deviceState:PJSIP/a1"), subscribeReq("DELETE", "endpoint:PJSIP")}; !slices.Equal(changes, want) {
		t.Fatalf("subscription changes %q, want %q", changes, want)
	}
}

// TestSubscriptionsKeptOnReconnect: Asterisk keeps the application's
// subscriptions when its socket goes; the next connection reads them
// (GET /applications/{app}) and subscribes to nothing twice, but drops
// what is no longer wanted — here the whole technology an earlier
// version of callfloor subscribed to on each of three connections, and
// an endpoint subscription the version before this one made.
func TestSubscriptionsKeptOnReconnect(t *testing.T) {
	devs := &deviceList{}
	devs.set(nil, "a1", "a2")
	f := newFake(t)
	t.Cleanup(f.Close)
	f.subs["endpoint:PJSIP"] = 3
	f.subs["endpoint:PJSIP/a1"] = 1
	h := startOn(t, f, withDevices(devs))
	want := []string{"deviceState:PJSIP/a1", "deviceState:PJSIP/a2"}
	f.expectRequests("PUT /applications/callfloor/eventFilter", "GET /applications/callfloor",
		subscribeReq("POST", want...), subscribeReq("DELETE", "endpoint:PJSIP", "endpoint:PJSIP/a1"),
		subscribeReq("DELETE", "endpoint:PJSIP"), subscribeReq("DELETE", "endpoint:PJSIP"),
		"GET /channels", "GET /bridges", "GET /endpoints")
	if got := f.subsOf(); !slices.Equal(got, want) {
		t.Fatalf("subscribed to %v, want %v", got, want)
	}
	f.Cut(false)
	waitFor(t, func() bool { return f.Conns() == 2 && h.c.Connected() })
	f.expectRequests(e2eReconnectRequests...)
	if got := f.subsOf(); !slices.Equal(got, want) {
		t.Fatalf("after reconnecting subscribed to %v, want %v", got, want)
	}
}

// TestSourceBatches: subscriptions to many devices go in requests
// Asterisk accepts — fewer than 128 sources (res_ari_applications.c
// refuses more) and a request line well under its 4096 bytes — in order,
// none lost.
func TestSourceBatches(t *testing.T) {
	var sources []string
	for i := range 250 {
		sources = append(sources, "endpoint:PJSIP/agent-with-a-long-device-name-"+strings.Repeat("x", i%7)+string(rune('a'+i%26))+"-"+time.Duration(i).String())
	}
	batches := sourceBatches(sources)
	if len(batches) < 3 {
		t.Fatalf("%d batches", len(batches))
	}
	var all []string
	for _, b := range batches {
		q := url.Values{"eventSource": {strings.Join(b, ",")}}.Encode()
		if len(b) > maxSourcesPerRequest || len(q) > maxSourceQueryBytes+len("eventSource=") {
			t.Fatalf("batch of %d sources, query %d bytes", len(b), len(q))
		}
		all = append(all, b...)
	}
	if !slices.Equal(all, sources) {
		t.Fatal("batches lose or reorder sources")
	}
	if sourceBatches(nil) != nil {
		t.Fatal("no sources, no request")
	}
}

// TestFakeSubscriptionLikeAsterisk pins the fake's subscription answers
// to what Asterisk 22.10.1 does, since the tests above rely on them.
func TestFakeSubscriptionLikeAsterisk(t *testing.T) {
	f := newFake(t)
	t.Cleanup(f.Close)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, tc := range []struct {
		add    bool
		param  string
		status int
		subs   []string
	}{
		{true, "endpoint:PJSIP/a1,endpoint:PJSIP/nobody,endpoint:PJSIP/a2", 422, []string{"endpoint:PJSIP/a1"}},
		{true, "bogus:x", 400, []string{"endpoint:PJSIP/a1"}},
		{true, "endpoint:PJSIP", 200, []string{"endpoint:PJSIP", "endpoint:PJSIP/a1"}},
		{false, "endpoint:PJSIP/a2", 422, []string{"endpoint:PJSIP", "endpoint:PJSIP/a1"}},
		{true, "endpoint:PJSIP/a1", 200, []string{"endpoint:PJSIP", "endpoint:PJSIP/a1"}},
		{false, "endpoint:PJSIP,endpoint:PJSIP/a1", 200, []string{"endpoint:PJSIP/a1"}}, // subscribed twice
		{false, "endpoint:PJSIP/a1", 200, []string{}},
		{true, strings.Repeat("endpoint:PJSIP/a1,", 127) + "endpoint:PJSIP/a1", 400, []string{}},
		{true, "deviceState:PJSIP/nobody", 200, []string{"deviceState:PJSIP/nobody"}}, // any device name
		{false, "deviceState:PJSIP/nobody", 200, []string{}},
	} {
		status, _ := f.subscription(tc.add, tc.param)
		if got := slices.Sorted(maps.Keys(f.subs)); status != tc.status || !slices.Equal(got, tc.subs) {
			t.Fatalf("%v %q: %d, subscribed %v; want %d, %v", tc.add, tc.param, status, got, tc.status, tc.subs)
		}
	}
}
