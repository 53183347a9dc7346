package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
)

// sippRun is one sipp process of a test.
type sippRun struct {
	name string
	cmd  *exec.Cmd
	out  bytes.Buffer
	dir  string
	done chan error
}

// scenarioPath names one of the SIP path's sipp scenarios.
func scenarioPath(name string) string {
	p, _ := filepath.Abs(filepath.Join("..", "..", "sip", "testdata", name))
	return p
}

func runSipp(t *testing.T, name, target string, port int, args ...string) *sippRun {
	t.Helper()
	bin := testpeer.Require(t, "sipp", "sip-tester")
	s := &sippRun{name: name, dir: t.TempDir(), done: make(chan error, 1)}
	all := append([]string{target}, args...)
	all = append(all, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_err", "-nr")
	s.cmd = exec.Command(bin, all...)
	s.cmd.Dir, s.cmd.Stdout, s.cmd.Stderr = s.dir, &s.out, &s.out
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start sipp %s: %v", name, err)
	}
	exited := make(chan struct{})
	go func() {
		s.done <- s.cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		select {
		case <-exited:
		default:
			_ = s.cmd.Process.Kill()
			<-exited
		}
	})
	return s
}

// kill stops sipp now (its call died with a killed server) and waits.
func (s *sippRun) kill() {
	_ = s.cmd.Process.Kill()
	<-s.done
}

// wait requires sipp to exit 0 (every call of its scenario succeeded).
func (s *sippRun) wait(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case err := <-s.done:
		if err != nil {
			logs, _ := filepath.Glob(filepath.Join(s.dir, "*.log"))
			var b strings.Builder
			for _, l := range logs {
				data, _ := os.ReadFile(l)
				fmt.Fprintf(&b, "--- %s\n%s\n", filepath.Base(l), data)
			}
			t.Fatalf("sipp %s: %v\n%s%s", s.name, err, s.out.String(), b.String())
		}
	case <-time.After(timeout):
		_ = s.cmd.Process.Kill()
		t.Fatalf("sipp %s still running after %s\n%s", s.name, timeout, s.out.String())
	}
}

// sseLog collects a /v1/events stream's events.
type sseLog struct {
	mu     sync.Mutex
	events []string // "type data"
}

func (l *sseLog) has(pred func(typ, data string) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.events {
		typ, data, _ := strings.Cut(e, " ")
		if pred(typ, data) {
			return true
		}
	}
	return false
}

func follow(t *testing.T, ctx context.Context, base, token string) *sseLog {
	t.Helper()
	return followTypes(t, ctx, base, token, "call,call_ended")
}

// followTypes reads /v1/events?types=types in the background.
func followTypes(t *testing.T, ctx context.Context, base, token, types string) *sseLog {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", base+"/v1/events?types="+types, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("events: %v %v", res, err)
	}
	l := &sseLog{}
	go func() {
		defer res.Body.Close()
		sc := bufio.NewScanner(res.Body)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		var typ string
		for sc.Scan() {
			line := sc.Text()
			if v, ok := strings.CutPrefix(line, "event: "); ok {
				typ = v
			} else if v, ok := strings.CutPrefix(line, "data: "); ok {
				l.mu.Lock()
				l.events = append(l.events, typ+" "+v)
				l.mu.Unlock()
			}
		}
	}()
	return l
}

// TestSIPCallThroughTheProduct is issue 5's acceptance on the default
// run: a sipp phone registers as a1 with digest on the documented port,
// a sipp trunk calls the sales hotline, routing rings a1, a1 answers, and
// the call is in GET /v1/calls and on the event stream; after the caller
// hangs up, a1 is wrapping up.
func TestSIPCallThroughTheProduct(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	sipPort := testpeer.FreeDualPort(t)
	sipAddr := fmt.Sprintf("127.0.0.1:%d", sipPort)
	p := start(t, map[string]string{"CALLFLOOR_SIP_ADDR": sipAddr, "CALLFLOOR_SIP_MEDIA": "signalling"})
	defer p.stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := follow(t, ctx, p.base, "demo-admin")

	phone := testpeer.FreeUDPPort(t)
	runSipp(t, "register a1", sipAddr, phone, "-sf", scenarioPath("register.xml"), "-m", "1",
		"-au", "a1", "-ap", "sip-a1", "-key", "user", "a1", "-key", "expires", "3600").wait(t, 20*time.Second)
	// The registrar answers 200 OK, then reports the binding as a fact
	// that presence applies on its own loop: online follows shortly.
	waitFor(t, "a1 online after registering", func() bool {
		var a1 map[string]any
		p.call("GET", "/v1/agents/a1", "demo-a1", "", &a1)
		return a1["online"] == true
	})
	if code := p.call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available: %d", code)
	}
	agent := runSipp(t, "a1 answers", "", phone, "-sf", scenarioPath("agent_answer.xml"), "-m", "1", "-key", "agent", "a1")
	// 127.0.0.1 is the demo floor's trunk; the caller talks 3 s, then BYE.
	caller := runSipp(t, "trunk caller", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller.xml"),
		"-m", "1", "-s", "+842873000001", "-d", "3000")

	var seen map[string]any
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && seen == nil {
		var calls []map[string]any
		p.call("GET", "/v1/calls", "demo-sup-sales", "", &calls)
		for _, c := range calls {
			if c["state"] == "answered" {
				seen = c
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	if seen == nil {
		t.Fatal("no answered call in GET /v1/calls")
	}
	for k, want := range map[string]any{"hotline": "+842873000001", "queue": "sales", "agent": "a1", "direction": "inbound", "customer_number": "+4930123456"} {
		if seen[k] != want {
			t.Errorf("call %s = %v, want %v (%v)", k, seen[k], want, seen)
		}
	}
	caller.wait(t, 20*time.Second)
	agent.wait(t, 20*time.Second)

	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && !events.has(func(typ, _ string) bool { return typ == "call_ended" }) {
		time.Sleep(100 * time.Millisecond)
	}
	if !events.has(func(typ, data string) bool { return typ == "call" && strings.Contains(data, `"state":"answered"`) }) {
		t.Error("no answered call event on the stream")
	}
	if !events.has(func(typ, data string) bool { return typ == "call_ended" && strings.Contains(data, seen["id"].(string)) }) {
		t.Error("no call_ended event on the stream")
	}
	var a1 map[string]any
	p.call("GET", "/v1/agents/a1", "demo-a1", "", &a1)
	if a1["system_status"] != "after_call_work" {
		t.Errorf("a1 after the call: %v", a1["system_status"])
	}
	var stats map[string]any
	p.call("GET", "/v1/stats/today?queue=sales", "demo-sup-sales", "", &stats)
	if stats["accepted"] != float64(1) {
		t.Errorf("accepted today = %v, want 1", stats["accepted"])
	}
}

// answeredSIPCall registers a1 with a sipp phone that answers, makes a1
// available, places a trunk call that waits for callfloor's BYE, and
// returns the answered call's id with both sipp processes.
func answeredSIPCall(t *testing.T, p *process, sipAddr string) (string, *sippRun, *sippRun) {
	t.Helper()
	phone := testpeer.FreeUDPPort(t)
	runSipp(t, "register a1", sipAddr, phone, "-sf", scenarioPath("register.xml"), "-m", "1",
		"-au", "a1", "-ap", "sip-a1", "-key", "user", "a1", "-key", "expires", "3600").wait(t, 20*time.Second)
	if code := p.call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available: %d", code)
	}
	agent := runSipp(t, "a1 answers", "", phone, "-sf", scenarioPath("agent_answer.xml"), "-m", "1", "-key", "agent", "a1")
	caller := runSipp(t, "trunk caller", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_until_bye.xml"),
		"-m", "1", "-s", "+842873000001")
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		var calls []map[string]any
		p.call("GET", "/v1/calls", "demo-sup-sales", "", &calls)
		for _, c := range calls {
			if c["state"] == "answered" {
				return c["id"].(string), caller, agent
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no answered call in GET /v1/calls")
	return "", nil, nil
}

// TestSIPPathSupervisorActions: on the built-in SIP path in signalling
// mode (sip.media: signalling, no mixer), actions that need a media mixer
// answer 501 saying so (and change nothing), and a supervisor's hang-up
// sends BYE to both the caller and the agent.
func TestSIPPathSupervisorActions(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	p := start(t, map[string]string{"CALLFLOOR_SIP_ADDR": sipAddr, "CALLFLOOR_SIP_MEDIA": "signalling"})
	defer p.stop()
	id, caller, agent := answeredSIPCall(t, p, sipAddr)

	for _, action := range []string{"listen", "whisper", "barge", "takeover"} {
		var body struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		code := p.call("POST", "/v1/calls/"+id+"/"+action, "demo-sup-sales", "", &body)
		if code != 501 || body.Error.Code != "not_supported" || !strings.Contains(body.Error.Message, "media server") {
			t.Errorf("%s on the SIP path: %d %+v, want 501 naming the need for a media server", action, code, body.Error)
		}
	}
	var c map[string]any
	if code := p.call("GET", "/v1/calls/"+id, "demo-sup-sales", "", &c); code != 200 || c["state"] != "answered" || c["monitor"] != nil {
		t.Fatalf("refused actions changed the call: %d %v", code, c)
	}
	if code := p.call("POST", "/v1/calls/"+id+"/hangup", "demo-sup-sales", "", nil); code != 200 {
		t.Fatalf("hangup: %d", code)
	}
	caller.wait(t, 15*time.Second) // got its BYE
	agent.wait(t, 15*time.Second)  // got its BYE
	if code := p.call("GET", "/v1/calls/"+id, "demo-sup-sales", "", &c); code != 404 {
		t.Errorf("call after hang-up: %d %v", code, c)
	}
}

// TestSIPRegistrationsSurviveRestart: on Redis, a restarted callfloor
// still reaches a device registered with the process before it — the
// phone does not re-register for up to an hour — so a routed call rings
// and is answered with no new REGISTER.
func TestSIPRegistrationsSurviveRestart(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	rs := testpeer.StartRedis(t)
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	env := map[string]string{"CALLFLOOR_REDIS_URL": rs.URL(), "CALLFLOOR_SIP_ADDR": sipAddr, "CALLFLOOR_SIP_MEDIA": "signalling"}
	p := start(t, env)
	phone := testpeer.FreeUDPPort(t)
	runSipp(t, "register a1", sipAddr, phone, "-sf", scenarioPath("register.xml"), "-m", "1",
		"-au", "a1", "-ap", "sip-a1", "-key", "user", "a1", "-key", "expires", "3600").wait(t, 20*time.Second)
	p.stop()

	p2 := start(t, env)
	defer p2.stop()
	// The new process restores the stored registrations once it holds the
	// media lease and its SIP path listens: a1 comes online from them.
	var a1 map[string]any
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		a1 = nil
		p2.call("GET", "/v1/agents/a1", "demo-a1", "", &a1)
		if a1["online"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a1 offline after the restart: %v", a1)
		}
	}
	if code := p2.call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available: %d", code)
	}
	agent := runSipp(t, "a1 answers", "", phone, "-sf", scenarioPath("agent_answer.xml"), "-m", "1", "-key", "agent", "a1")
	caller := runSipp(t, "trunk caller", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller.xml"),
		"-m", "1", "-s", "+842873000001", "-d", "1000")
	caller.wait(t, 20*time.Second)
	agent.wait(t, 20*time.Second)
	var stats map[string]any
	p2.call("GET", "/v1/stats/today?queue=sales", "demo-sup-sales", "", &stats)
	if stats["accepted"] != float64(1) {
		t.Errorf("accepted today = %v, want 1 (the restarted process reached a1's phone)", stats["accepted"])
	}
}

// TestSIPPathAnchoredListen: the default run anchors media. A sipp trunk
// caller playing sip-tester's recordings reaches a1 (sipp) through the
// anchor, a supervisor listens from their own sipp device, switches to
// barge, and the call ends cleanly when the caller hangs up; GET /metrics
// counts the anchored call.
func TestSIPPathAnchoredListen(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	if _, err := os.Stat("/usr/share/sip-tester/g711a.pcap"); err != nil {
		testpeer.Require(t, "sip-tester-pcaps", "sip-tester")
	}
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	p := start(t, map[string]string{"CALLFLOOR_SIP_ADDR": sipAddr, "CALLFLOOR_METRICS_ADDR": metricsAddr})
	defer p.stop()

	phone, supPhone := testpeer.FreeUDPPort(t), testpeer.FreeUDPPort(t)
	for user, port := range map[string]int{"a1": phone, "sup-sales": supPhone} {
		runSipp(t, "register "+user, sipAddr, port, "-sf", scenarioPath("register.xml"), "-m", "1",
			"-au", user, "-ap", "sip-"+user, "-key", "user", user, "-key", "expires", "3600").wait(t, 20*time.Second)
	}
	if code := p.call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available: %d", code)
	}
	agent := runSipp(t, "a1 answers", "", phone, "-sf", scenarioPath("agent_answer_anchored.xml"), "-m", "1", "-key", "agent", "a1")
	sup := runSipp(t, "supervisor answers", "", supPhone, "-sf", scenarioPath("agent_answer_anchored.xml"), "-m", "1", "-key", "agent", "sup-sales")
	caller := runSipp(t, "trunk caller with RTP", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_rtp.xml"),
		"-m", "1", "-s", "+842873000001", "-mp", strconv.Itoa(testpeer.FreeUDPPort(t)))

	var id string
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) && id == "" {
		var calls []map[string]any
		p.call("GET", "/v1/calls", "demo-sup-sales", "", &calls)
		for _, c := range calls {
			if c["state"] == "answered" {
				id = c["id"].(string)
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	if id == "" {
		t.Fatal("no answered call in GET /v1/calls")
	}
	var mon map[string]any
	if code := p.call("POST", "/v1/calls/"+id+"/listen", "demo-sup-sales", "", &mon); code != 201 {
		t.Fatalf("listen on the anchored SIP path: %d %v", code, mon)
	}
	mid, _ := mon["id"].(string)
	var c map[string]any
	deadline = time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		p.call("GET", "/v1/calls/"+id, "demo-sup-sales", "", &c)
		if m, ok := c["monitor"].(map[string]any); ok && m["answered"] == true {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if m, ok := c["monitor"].(map[string]any); !ok || m["answered"] != true {
		t.Fatalf("monitor not answered: %v", c["monitor"])
	}
	if code := p.call("POST", "/v1/monitors/"+mid+"/barge", "demo-sup-sales", "", nil); code != 200 {
		t.Errorf("barge: %d", code)
	}
	res, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body := new(bytes.Buffer)
	_, _ = body.ReadFrom(res.Body)
	res.Body.Close()
	if !strings.Contains(body.String(), "callfloor_sip_anchored_calls 1") {
		t.Errorf("metrics lack one anchored call:\n%s", grepLines(body.String(), "anchored"))
	}
	caller.wait(t, 30*time.Second) // played its audio and DTMF, hung up
	agent.wait(t, 20*time.Second)  // got its BYE
	sup.wait(t, 20*time.Second)    // got its BYE
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
