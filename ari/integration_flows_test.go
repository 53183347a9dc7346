package ari

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/CyCoreSystems/ari/v6"
	"github.com/callfloor/callfloor/media"
)

// More flows against a real Asterisk (see integration_test.go for how to
// run them): transfer, hang-ups from the far ends and DTMF.

// injectFar is inject that also returns the caller's own channel (the
// Local half waiting in callfloor-test), so a test can hang up as the
// customer would.
func (l *live) injectFar(t *testing.T) (media.LegID, string) {
	t.Helper()
	q := url.Values{"endpoint": {"Local/" + hotline + "@from-trunk/n"}, "extension": {"caller"},
		"context": {testDevices}, "priority": {"1"}, "callerId": {caller}}
	var far ari.ChannelData
	if err := l.c.rest.do(l.ctx, "POST", "/channels", q, &far); err != nil {
		t.Fatal(err)
	}
	f := l.await(t, "CallArrived", func(f media.Fact) bool { a, ok := f.(media.CallArrived); return ok && a.Hotline == hotline })
	return f.(media.CallArrived).Leg, far.ID
}

// farEnd names the device side of a Local leg we originated: Asterisk
// gives the second half the id we chose with ";2" appended.
func farEnd(leg media.LegID) string { return string(leg) + ";2" }

func (l *live) dialAnswered(t *testing.T, ext string) media.LegID {
	t.Helper()
	leg, err := l.c.Dial(l.ctx, media.DialRequest{CallID: "it", Target: device(ext), Timeout: 10 * time.Second, CallerID: caller})
	must(t, err)
	l.answeredLeg(t, leg)
	return leg
}

// Ringback while waiting, a first agent, then a transfer to a second
// agent (the first is detached and hung up), the second agent hangs up
// from the device side and the caller hangs up last.
func TestAsteriskTransferAndFarHangups(t *testing.T) {
	l := startReal(t, realConfig(t))
	cust, far := l.injectFar(t)
	must(t, l.c.Hold(l.ctx, cust, media.HoldRingback))
	must(t, l.c.Answer(l.ctx, cust))
	first := l.dialAnswered(t, "answer")
	must(t, l.c.Connect(l.ctx, cust, first))
	second := l.dialAnswered(t, "answer")
	must(t, l.c.Connect(l.ctx, cust, second))
	must(t, l.c.Hangup(l.ctx, first, media.CauseNormal))
	if c := l.ended(t, first); c != media.CauseNormal {
		t.Errorf("first agent ended with %s", c)
	}
	must(t, l.c.rest.do(l.ctx, "DELETE", chanPath(farEnd(second)), url.Values{"reason_code": {"16"}}, nil))
	if c := l.ended(t, second); c != media.CauseNormal {
		t.Errorf("second agent hanging up ended with %s", c)
	}
	must(t, l.c.rest.do(l.ctx, "DELETE", chanPath(far), url.Values{"reason_code": {"16"}}, nil))
	if c := l.ended(t, cust); c != media.CauseNormal {
		t.Errorf("caller hanging up ended with %s", c)
	}
}

// The customer hangs up while connected: the agent's leg stays for
// routing to end.
func TestAsteriskCallerHangsUpFirst(t *testing.T) {
	l := startReal(t, realConfig(t))
	cust, far := l.injectFar(t)
	must(t, l.c.Answer(l.ctx, cust))
	agent := l.dialAnswered(t, "answer")
	must(t, l.c.Connect(l.ctx, cust, agent))
	must(t, l.c.rest.do(l.ctx, "DELETE", chanPath(far), url.Values{"reason_code": {"16"}}, nil))
	l.ended(t, cust)
	must(t, l.c.Hangup(l.ctx, agent, media.CauseNormal))
	l.ended(t, agent)
}

// Digits a device sends (SendDTMF in callfloor-test's dtmf extension)
// arrive as DTMF facts on its leg.
func TestAsteriskDTMF(t *testing.T) {
	l := startReal(t, realConfig(t))
	cust := l.inject(t)
	must(t, l.c.Answer(l.ctx, cust))
	leg := l.dialAnswered(t, "dtmf")
	for _, want := range []string{"4", "2"} {
		f := l.await(t, "DTMF "+want, func(f media.Fact) bool { d, ok := f.(media.DTMF); return ok && d.Leg == leg })
		if d := f.(media.DTMF); d.Digit != want {
			t.Errorf("digit %q, want %q", d.Digit, want)
		}
	}
	must(t, l.c.Hangup(l.ctx, leg, media.CauseNormal))
	l.ended(t, leg)
	must(t, l.c.Hangup(l.ctx, cust, media.CauseNormal))
	l.ended(t, cust)
}

// The application subscribes to the agents' devices' states (a device
// Asterisk lacks too), in one comma-separated request Asterisk takes, and
// follows the list; a device's contacts read through the caller's channel
// (PJSIP_DIAL_CONTACTS) are its endpoint when none or one is registered;
// music on hold plays on the caller's channel and is stopped when the
// caller is connected (Asterisk answers 204 to both, no warning logged).
func TestAsteriskDeviceSubscriptionsAndChannelMusic(t *testing.T) {
	cfg := realConfig(t)
	devs := &deviceList{}
	devs.set(nil, "a1", "a2", "no-such-device")
	cfg.Devices = devs.list
	l := startReal(t, cfg, WithDeviceSync(100*time.Millisecond))
	c, ctx := l.c, l.ctx

	devices := func() []string {
		var app application
		must(t, c.rest.do(ctx, "GET", "/applications/"+c.cfg.App, nil, &app))
		if len(app.EndpointIDs) != 0 {
			t.Fatalf("subscribed to endpoints %v", app.EndpointIDs)
		}
		return slices.Sorted(slices.Values(app.DeviceNames))
	}
	if got, want := devices(), []string{"PJSIP/a1", "PJSIP/a2", "PJSIP/no-such-device"}; !slices.Equal(got, want) {
		t.Fatalf("subscribed to %v, want %v", got, want)
	}
	devs.set(nil, "a1", "a3")
	deadline := time.Now().Add(5 * time.Second)
	for got := devices(); !slices.Equal(got, []string{"PJSIP/a1", "PJSIP/a3"}); got = devices() {
		if time.Now().After(deadline) {
			t.Fatalf("subscriptions did not follow the device list: %v", got)
		}
		time.Sleep(50 * time.Millisecond)
	}

	cust := l.inject(t)
	forks, err := c.readContacts(ctx, string(cust), "a1", "PJSIP/a1")
	must(t, err)
	if !slices.Equal(forks, []string{"PJSIP/a1"}) {
		t.Fatalf("a1 without contacts dialled as %q", forks)
	}
	must(t, c.Answer(ctx, cust))
	must(t, c.Hold(ctx, cust, media.HoldMusic))
	agent := l.dialAnswered(t, "answer")
	must(t, c.Connect(ctx, cust, agent))
	c.mu.Lock()
	moh := c.legs[string(cust)].moh
	c.mu.Unlock()
	if moh {
		t.Fatal("music still marked playing after connect")
	}
	must(t, c.Hangup(ctx, cust, media.CauseNormal))
	l.ended(t, cust)
	must(t, c.Hangup(ctx, agent, media.CauseNormal))
	l.ended(t, agent)
}
