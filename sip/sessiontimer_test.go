package sip

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/emiago/sipgo/sip"
)

func TestParseSessionExpires(t *testing.T) {
	for _, c := range []struct {
		in   string
		want sessionExpires
		bad  bool
	}{
		{in: "1800", want: sessionExpires{delta: 1800 * time.Second}},
		{in: " 90 ;refresher=uas", want: sessionExpires{delta: 90 * time.Second, refresher: "uas"}},
		{in: "120;Refresher=UAC;x=1", want: sessionExpires{delta: 120 * time.Second, refresher: "uac"}},
		{in: "120;foo", want: sessionExpires{delta: 120 * time.Second}},
		{in: "", bad: true},
		{in: "0", bad: true},
		{in: "-5", bad: true},
		{in: "ninety", bad: true},
		{in: "99999999999", bad: true},
		{in: "90;refresher=proxy", bad: true},
	} {
		got, err := parseSessionExpires(c.in)
		if c.bad {
			if !errors.Is(err, errBadTimerHeader) {
				t.Errorf("%q: err %v, want errBadTimerHeader", c.in, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%q: %+v %v, want %+v", c.in, got, err, c.want)
		}
	}
	if d, err := parseMinSE("90;x=y"); err != nil || d != 90*time.Second {
		t.Errorf("Min-SE: %v %v", d, err)
	}
}

// FuzzSessionExpires: any input parses or fails cleanly, and what parses
// prints back to the same value.
func FuzzSessionExpires(f *testing.F) {
	for _, s := range []string{"1800", "90;refresher=uac", "120;refresher=uas;x", "", ";;", "1;refresher="} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		se, err := parseSessionExpires(in)
		if err != nil {
			return
		}
		again, err := parseSessionExpires(se.String())
		if err != nil || again != se {
			t.Fatalf("%q → %q → %+v %v", in, se.String(), again, err)
		}
	})
}

func invite(t *testing.T, headers ...string) *sip.Request {
	t.Helper()
	raw := "INVITE sip:100@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5070;branch=z9hG4bK1\r\n" +
		"From: <sip:a@127.0.0.1>;tag=1\r\nTo: <sip:100@127.0.0.1>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n" +
		strings.Join(headers, "\r\n")
	if len(headers) > 0 {
		raw += "\r\n"
	}
	raw += "Content-Length: 0\r\n\r\n"
	msg, err := sip.ParseMessage([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return msg.(*sip.Request)
}

// RFC 4028 section 9, Table 2, and the interval rules: only lowered,
// never below a Min-SE, refused below ours.
func TestNegotiateUAS(t *testing.T) {
	st := sessionTiming{expires: 90 * time.Second, minSE: 90 * time.Second}
	for _, c := range []struct {
		name      string
		headers   []string
		interval  time.Duration
		weRefresh bool
		requireTm bool
		tooSmall  time.Duration
		bad       bool
	}{
		{name: "no support: we refresh", interval: 90 * time.Second, weRefresh: true},
		{name: "no support, asks longer: we grant ours", headers: []string{"Session-Expires: 1800"}, interval: 90 * time.Second, weRefresh: true},
		{name: "supports, says uac", headers: []string{"Supported: timer", "Session-Expires: 1800;refresher=uac"}, interval: 90 * time.Second, requireTm: true},
		{name: "supports, says uas", headers: []string{"Supported: timer", "Session-Expires: 1800;refresher=uas"}, interval: 90 * time.Second, weRefresh: true, requireTm: true},
		{name: "supports with UPDATE, no choice: we refresh", headers: []string{"Supported: 100rel, timer", "Allow: INVITE, UPDATE"}, interval: 90 * time.Second, weRefresh: true, requireTm: true},
		{name: "supports without UPDATE, no choice: they refresh", headers: []string{"k: timer"}, interval: 90 * time.Second, requireTm: true},
		{name: "Min-SE above ours wins", headers: []string{"Session-Expires: 1800", "Min-SE: 300"}, interval: 300 * time.Second, weRefresh: true},
		{name: "too small", headers: []string{"Session-Expires: 30"}, tooSmall: 90 * time.Second},
		{name: "malformed", headers: []string{"Session-Expires: soon"}, bad: true},
		{name: "malformed Min-SE", headers: []string{"Min-SE: -1"}, bad: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			terms, tooSmall, err := st.negotiateUAS(invite(t, c.headers...))
			if c.bad {
				if !errors.Is(err, errBadTimerHeader) {
					t.Fatalf("err %v", err)
				}
				return
			}
			if err != nil || tooSmall != c.tooSmall {
				t.Fatalf("tooSmall %s err %v", tooSmall, err)
			}
			if c.tooSmall > 0 {
				return
			}
			if terms.interval != c.interval || terms.weRefresh != c.weRefresh || terms.peer.timer != c.requireTm {
				t.Fatalf("terms %+v", terms)
			}
			res := sip.NewResponseFromRequest(invite(t, c.headers...), 200, "OK", nil)
			addTimerHeaders(res, terms, true)
			want := "uac"
			if c.weRefresh {
				want = "uas"
			}
			if v := res.GetHeader("Session-Expires").Value(); v != fmt.Sprintf("%d;refresher=%s", int(c.interval/time.Second), want) {
				t.Errorf("Session-Expires %q", v)
			}
			if got := res.GetHeader("Require") != nil; got != c.requireTm {
				t.Errorf("Require: timer present %v, want %v", got, c.requireTm)
			}
		})
	}
}

func TestTermsFromAnswer(t *testing.T) {
	st := sessionTiming{expires: 90 * time.Second, minSE: 90 * time.Second}
	res := func(h ...string) *sip.Response {
		r := sip.NewResponseFromRequest(invite(t), 200, "OK", nil)
		for _, kv := range h {
			k, v, _ := strings.Cut(kv, ": ")
			r.AppendHeader(sip.NewHeader(k, v))
		}
		return r
	}
	if tm := st.termsFromAnswer(res()); !tm.weRefresh || tm.interval != 90*time.Second || tm.peer.update {
		t.Errorf("no timer in 2xx: %+v", tm)
	}
	if tm := st.termsFromAnswer(res("Session-Expires: 600;refresher=uas", "Allow: UPDATE")); tm.weRefresh || tm.interval != 600*time.Second || !tm.peer.update {
		t.Errorf("device refreshes: %+v", tm)
	}
	if tm := st.termsFromAnswer(res("Session-Expires: 30;refresher=uac")); !tm.weRefresh || tm.interval != 90*time.Second {
		t.Errorf("we refresh, interval floored: %+v", tm)
	}
}

// Every (state, event) pair of the session timer.
func TestSessionTransitions(t *testing.T) {
	states := []sessionState{sessionLive, sessionProbing, sessionLost, sessionOver}
	events := []sessionEvent{evRefreshDue, evRefreshOK, evRefreshLost, evPeerRefresh, evExpired, evDialogEnded}
	want := map[[2]int]sessionState{
		{0, 0}: sessionProbing, {0, 3}: sessionLive, {0, 4}: sessionLost, {0, 5}: sessionOver,
		{1, 1}: sessionLive, {1, 2}: sessionLost, {1, 3}: sessionProbing, {1, 5}: sessionOver,
	}
	for i, st := range states {
		for j, ev := range events {
			next, ok := nextSessionState(st, ev)
			w, defined := want[[2]int{i, j}]
			if !defined {
				w = st
			}
			if ok != defined || next != w {
				t.Errorf("%s + %s = %s (%v), want %s (%v)", st, ev, next, ok, w, defined)
			}
		}
	}
}

func TestRefreshOutcome(t *testing.T) {
	req := invite(t)
	for _, c := range []struct {
		status     int
		err        error
		ev         sessionEvent
		useOptions bool
	}{
		{status: 200, ev: evRefreshOK},
		{status: 486, ev: evRefreshOK},
		{status: 405, ev: evRefreshOK, useOptions: true},
		{status: 501, ev: evRefreshOK, useOptions: true},
		{status: 408, ev: evRefreshLost},
		{status: 481, ev: evRefreshLost},
		{err: errors.New("timeout"), ev: evRefreshLost},
	} {
		var res *sip.Response
		if c.err == nil {
			res = sip.NewResponseFromRequest(req, c.status, "x", nil)
		}
		ev, opt := refreshOutcome(res, c.err)
		if ev != c.ev || opt != c.useOptions {
			t.Errorf("%d %v: %s %v", c.status, c.err, ev, opt)
		}
	}
}

// The sipp tests below run the path signalling-only (no anchor), where a
// session timer is the only thing that can notice a vanished phone.
// Intervals are shortened to 2 s (probes every second, a second to
// answer).
func timerServer(t *testing.T, r *router) *harness {
	return startServer(t, Config{}, r.script, withSessionTiming(2*time.Second, time.Second))
}

func (p *sipp) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// sawMessage reports whether sipp's message trace holds s.
func (p *sipp) sawMessage(s string) bool {
	files, _ := filepath.Glob(filepath.Join(p.dir, "*_messages.log"))
	for _, f := range files {
		if b, _ := os.ReadFile(f); strings.Contains(string(b), s) {
			return true
		}
	}
	return false
}

func sipTimerCaller(t *testing.T, h *harness, scen string) *sipp {
	t.Helper()
	return startSipp(t, "caller "+scen, testpeer.FreeUDPPort(t), h.addr, "-sf", scenario(scen), "-m", "1", "-s", "800", "-key", "se", "2")
}

// A live call outlasts several session intervals: callfloor refreshes the
// timer-capable trunk with UPDATE and checks the plain phone with
// OPTIONS; both answer, nothing ends until the trunk hangs up.
func TestSippSessionRefreshKeepsCall(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistApp, timeout: 10 * time.Second}
	h := timerServer(t, r)
	agent := agentPhone(t, h, "a1", "agent_answer_refreshed.xml")
	call := sipTimerCaller(t, h, "caller_timer.xml")
	call.wait(t, 30*time.Second)
	agent.wait(t, 30*time.Second)
	customer, dialled, _ := r.snapshot()
	h.rec.waitFor(t, "customer hung up", time.Second, ended(customer, media.CauseNormal))
	h.rec.waitFor(t, "agent released", time.Second, ended(dialled[0], media.CauseNormal))
	if !agent.sawMessage("OPTIONS sip:") {
		t.Errorf("the phone was never asked whether it is there:\n%s", agent.traces())
	}
	for _, f := range h.rec.all() {
		if e, ok := f.(media.LegEnded); ok && e.Cause == media.CauseFailed {
			t.Errorf("a live leg was ended as gone: %+v", e)
		}
	}
	noErrors(t, r)
}

// An agent phone that vanishes without BYE (killed) is noticed by the
// next refresh: its leg ends as failed and the caller is hung up.
func TestSippGhostAgentEndsCall(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistApp, timeout: 10 * time.Second}
	h := timerServer(t, r)
	agent := agentPhone(t, h, "a1", "agent_answer_refreshed.xml")
	call := caller(t, h, "caller_until_bye_probed.xml", 0)
	var dialled []media.LegID
	waitUntil(t, func() bool { _, dialled, _ = r.snapshot(); return len(dialled) == 1 })
	h.rec.waitFor(t, "agent answered", 10*time.Second, answered(dialled[0]))
	agent.kill()
	h.rec.waitFor(t, "ghost agent leg ended", 10*time.Second, ended(dialled[0], media.CauseFailed))
	call.wait(t, 30*time.Second) // got its BYE
	customer, _, _ := r.snapshot()
	h.rec.waitFor(t, "customer released", time.Second, ended(customer, media.CauseNormal))
}

// A trunk that vanishes mid-call is noticed the same way: the customer
// leg ends as failed and the agent gets a BYE.
func TestSippGhostCallerEndsCall(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistApp, timeout: 10 * time.Second}
	h := timerServer(t, r)
	agent := agentPhone(t, h, "a1", "agent_answer_refreshed.xml")
	call := caller(t, h, "caller_until_bye_probed.xml", 0)
	var dialled []media.LegID
	waitUntil(t, func() bool { _, dialled, _ = r.snapshot(); return len(dialled) == 1 })
	h.rec.waitFor(t, "agent answered", 10*time.Second, answered(dialled[0]))
	customer, _, _ := r.snapshot()
	waitUntil(t, func() bool { return call.sawMessage("ACK sip:") })
	call.kill()
	h.rec.waitFor(t, "ghost customer leg ended", 10*time.Second, ended(customer, media.CauseFailed))
	agent.wait(t, 30*time.Second) // got its BYE
	h.rec.waitFor(t, "agent released", time.Second, ended(dialled[0], media.CauseNormal))
}

// A trunk that took the refresher role and never refreshes is hung up
// when the session expires (RFC 4028 section 10).
func TestSippSilentRefresherIsHungUp(t *testing.T) {
	r := &router{agents: []string{"a1"}, dist: presence.DistApp, timeout: 10 * time.Second}
	h := timerServer(t, r)
	agent := agentPhone(t, h, "a1", "agent_answer_refreshed.xml")
	call := sipTimerCaller(t, h, "caller_timer_refresher.xml")
	call.wait(t, 30*time.Second) // its scenario ends with our BYE
	agent.wait(t, 30*time.Second)
	customer, _, _ := r.snapshot()
	h.rec.waitFor(t, "expired session ended", time.Second, ended(customer, media.CauseFailed))
}

// An INVITE asking for less than RFC 4028's 90 s gets 422 with Min-SE and
// never reaches routing.
func TestSippSessionIntervalTooSmall(t *testing.T) {
	h := startServer(t, Config{}, nil)
	call := startSipp(t, "caller too small", testpeer.FreeUDPPort(t), h.addr, "-sf", scenario("caller_timer_too_small.xml"), "-m", "1", "-s", "800")
	call.wait(t, 30*time.Second)
	for _, f := range h.rec.all() {
		if _, ok := f.(media.CallArrived); ok {
			t.Errorf("a refused INVITE arrived: %+v", f)
		}
	}
}

// waitUntil polls cond for up to 10 s.
// waitUntil waits up to 10 s for cond; explain, if given, says on
// failure what was seen instead.
func waitUntil(t *testing.T, cond func() bool, explain ...func() string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			for _, e := range explain {
				t.Fatalf("condition not met in 10s: %s", e())
			}
			t.Fatal("condition not met in 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liveServer is a Server built but not serving, with its background
// context running, for session keepers that send nothing.
func liveServer(t *testing.T) *Server {
	t.Helper()
	s, err := New(Config{Addr: "127.0.0.1:5999", MinExpires: 1}, demoDir{}, discard{}, WithLogger(testLogger()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.baseCancel(); s.ua.Close() })
	return s
}

// Live dialogs' session timers hold no goroutine each: 2,000 started
// keepers add none, and ending them stops their timers.
func TestSessionKeepersHoldNoGoroutine(t *testing.T) {
	s := liveServer(t)
	const n = 2000
	before := runtime.NumGoroutine()
	keepers := make([]*sessionDialog, n)
	for i := range keepers {
		terms := sessionTerms{interval: 90 * time.Second, weRefresh: i%2 == 0}
		keepers[i] = newSessionDialog(s, media.LegID(fmt.Sprint("leg-", i)), terms, i%3 == 0, nil, func() { t.Error("lost") })
		keepers[i].start()
	}
	if grew := runtime.NumGoroutine() - before; grew > n/100 {
		t.Fatalf("%d started session keepers added %d goroutines", n, grew)
	}
	for _, d := range keepers {
		d.end()
		if d.state != sessionOver || d.timer.Stop() {
			t.Fatalf("ended keeper %s: state %s, timer still running", d.leg, d.state)
		}
	}
}

// When the peer is the refresher, each refresh it sends re-arms the
// expiry; once it stops, the dialog is lost after interval −
// min(32 s, interval/3) (RFC 4028 section 10).
func TestSessionKeeperPeerRefreshRearms(t *testing.T) {
	s := liveServer(t)
	lost := make(chan struct{})
	d := newSessionDialog(s, "leg-1", sessionTerms{interval: 900 * time.Millisecond}, true, nil, func() { close(lost) })
	d.start() // expires 600 ms after the last refresh
	for range 8 {
		time.Sleep(150 * time.Millisecond)
		d.peerRefreshed()
	}
	select {
	case <-lost:
		t.Fatal("a dialog the peer kept refreshing was declared lost")
	default:
	}
	stopped := time.Now()
	select {
	case <-lost:
	case <-time.After(10 * time.Second):
		t.Fatal("a dialog whose peer stopped refreshing was never declared lost")
	}
	if waited := time.Since(stopped); waited < 400*time.Millisecond {
		t.Errorf("declared lost %v after the last refresh; the expiry is 600 ms", waited)
	}
	d.peerRefreshed() // after the loss: nothing to re-arm
	if d.state != sessionLost {
		t.Errorf("state %s after a late refresh, want lost", d.state)
	}
}

// The server's shutdown ends every running keeper; a dialog that ends
// before its ACK never starts one, and starting after the end is a no-op.
func TestSessionKeeperShutdownAndOrder(t *testing.T) {
	s := liveServer(t)
	running := newSessionDialog(s, "leg-1", sessionTerms{interval: 90 * time.Second, weRefresh: true}, true, nil, nil)
	running.start()
	early := newSessionDialog(s, "leg-2", sessionTerms{interval: 90 * time.Second}, true, nil, nil)
	early.end()
	early.start()
	if early.timer != nil {
		t.Error("a keeper started after its dialog ended")
	}
	s.baseCancel()
	waitUntil(t, func() bool {
		running.mu.Lock()
		defer running.mu.Unlock()
		return running.state == sessionOver
	})
	if running.timer.Stop() {
		t.Error("shutdown left a session timer running")
	}
}
