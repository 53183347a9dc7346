package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
)

// scrape is one /metrics answer: every sample by its series name and labels.
type scrape map[string]float64

func (p *process) scrape(base, token string) scrape {
	p.t.Helper()
	req, _ := http.NewRequest("GET", base+"/metrics", nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		b, _ := io.ReadAll(res.Body)
		p.t.Fatalf("GET /metrics: %d %s", res.StatusCode, b)
	}
	out := scrape{}
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			p.t.Fatalf("bad sample %q", line)
		}
		out[line[:i]] = v
	}
	return out
}

// sum adds the samples of series name whose labels contain every one of
// labels (`k="v"`); ok is false when there is none.
func (s scrape) sum(name string, labels ...string) (total float64, ok bool) {
	for k, v := range s {
		n, l, _ := strings.Cut(k, "{")
		if n != name {
			continue
		}
		match := true
		for _, want := range labels {
			match = match && strings.Contains(l, want)
		}
		if match {
			total, ok = total+v, true
		}
	}
	return total, ok
}

func (s scrape) must(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := s.sum(name, labels...)
	if !ok {
		t.Fatalf("no series %s%v in /metrics", name, labels)
	}
	return v
}

// waitFor polls until cond holds, failing after 20 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestMetricsMoveWithACallAndAStatusChange is issue 15's acceptance for
// GET /metrics: a call waits in its queue, a status change makes its
// agent available, the call is routed over the built-in SIP path and
// answered, and every listed series is present and moves.
func TestMetricsMoveWithACallAndAStatusChange(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	sipPort := testpeer.FreeDualPort(t)
	sipAddr := fmt.Sprintf("127.0.0.1:%d", sipPort)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	debugAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	p := start(t, map[string]string{"CALLFLOOR_SIP_ADDR": sipAddr, "CALLFLOOR_SIP_MEDIA": "signalling",
		"CALLFLOOR_METRICS_ADDR": metricsAddr, "CALLFLOOR_DEBUG_ADDR": debugAddr})
	defer p.stop()

	// Only admins read metrics and profiles on the API listener.
	for token, want := range map[string]int{"": 401, "demo-a1": 403, "demo-sup-sales": 403, "demo-admin": 200} {
		if code := p.call("GET", "/metrics", token, "", nil); code != want {
			t.Errorf("GET /metrics as %q: %d, want %d", token, code, want)
		}
		if code := p.call("GET", "/debug/pprof/cmdline", token, "", nil); code != want {
			t.Errorf("GET /debug/pprof/cmdline as %q: %d, want %d", token, code, want)
		}
	}
	// The separate addresses need no token; profiles only on the debug one.
	for url, want := range map[string]int{
		"http://" + metricsAddr + "/metrics": 200, "http://" + metricsAddr + "/debug/pprof/": 404,
		"http://" + debugAddr + "/metrics": 200, "http://" + debugAddr + "/debug/pprof/": 200,
	} {
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", url, res.StatusCode, want)
		}
	}

	hooks := make(chan struct{}, 1000)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		hooks <- struct{}{}
	}))
	defer receiver.Close()
	if code := p.call("POST", "/v1/webhooks", "demo-admin", `{"url":"`+receiver.URL+`","types":["call"]}`, nil); code != 201 {
		t.Fatalf("create webhook: %d", code)
	}

	before := p.scrape(p.base, "demo-admin")
	for _, name := range []string{
		"callfloor_events_appended_total", "callfloor_events_delivered_total", "callfloor_sse_clients",
		"callfloor_sse_slow_consumers_total", "callfloor_routing_queue_depth", "callfloor_routing_work_total",
		"callfloor_routing_conflict_retries_total", "callfloor_routing_dispatch_passes_total",
		"callfloor_routing_facts_held", "callfloor_routing_facts_dropped_total", "callfloor_routing_calls_refused_total",
		"callfloor_store_command_seconds_count", "callfloor_agents", "callfloor_queue_waiting_calls",
		"callfloor_queue_longest_wait_seconds", "process_resident_memory_bytes", "callfloor_media_reconnects_total",
	} {
		before.must(t, name)
	}
	// One replica: it holds every lease (floor, webhooks, the media path).
	for _, l := range []string{`lease="floor"`, `lease="webhooks"`} {
		if held := before.must(t, "callfloor_lease_held", l); held != 1 {
			t.Errorf("lease_held{%s} = %v", l, held)
		}
		if tok := before.must(t, "callfloor_lease_token", l); tok < 1 {
			t.Errorf("lease_token{%s} = %v", l, tok)
		}
	}
	if up := before.must(t, "callfloor_media_connected", `path="sip"`); up != 1 {
		t.Errorf("media_connected{path=sip} = %v while listening", up)
	}
	if _, ok := before.sum("callfloor_calls"); ok {
		t.Fatal("calls reported before any call")
	}

	ctx := t.Context()
	events := follow(t, ctx, p.base, "demo-admin")
	waitFor(t, "the SSE client to be counted", func() bool {
		return p.scrape(p.base, "demo-admin").must(t, "callfloor_sse_clients") > before.must(t, "callfloor_sse_clients")
	})

	phone := testpeer.FreeUDPPort(t)
	runSipp(t, "register a1", sipAddr, phone, "-sf", scenarioPath("register.xml"), "-m", "1",
		"-au", "a1", "-ap", "sip-a1", "-key", "user", "a1", "-key", "expires", "3600").wait(t, 20*time.Second)
	// a1 starts unavailable: the trunk's call waits in the sales queue.
	caller := runSipp(t, "trunk caller", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller.xml"),
		"-m", "1", "-s", "+842873000001", "-d", "2000")
	waitFor(t, "the call to wait in sales", func() bool {
		s := p.scrape(p.base, "demo-admin")
		w, _ := s.sum("callfloor_queue_waiting_calls", `queue="sales"`)
		c, _ := s.sum("callfloor_calls", `state="calling"`, `queue="sales"`)
		return w == 1 && c == 1
	})
	agentsAvailable, _ := before.sum("callfloor_agents", `call_status="available"`)

	agent := runSipp(t, "a1 answers", "", phone, "-sf", scenarioPath("agent_answer.xml"), "-m", "1", "-key", "agent", "a1")
	if code := p.call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available: %d", code)
	}
	waitFor(t, "the call to be answered by a talking a1", func() bool {
		s := p.scrape(p.base, "demo-admin")
		c, _ := s.sum("callfloor_calls", `state="answered"`, `queue="sales"`)
		a, _ := s.sum("callfloor_agents", `call_status="available"`, `system_status="talking"`)
		return c == 1 && a == 1
	})
	mid := p.scrape(p.base, "demo-admin")
	if got := mid.must(t, "callfloor_agents", `call_status="available"`); got != agentsAvailable+1 {
		t.Errorf("agents with call status available: %v → %v", agentsAvailable, got)
	}
	if w, _ := mid.sum("callfloor_queue_waiting_calls", `queue="sales"`); w != 0 {
		t.Errorf("sales still has %v waiting once answered", w)
	}
	caller.wait(t, 20*time.Second)
	agent.wait(t, 20*time.Second)
	waitFor(t, "call_ended on the stream", func() bool {
		return events.has(func(typ, _ string) bool { return typ == "call_ended" })
	})
	select {
	case <-hooks:
	case <-time.After(20 * time.Second):
		t.Fatal("no webhook delivery")
	}

	var after scrape
	waitFor(t, "the webhook delivery to be counted", func() bool {
		after = p.scrape(p.base, "demo-admin")
		v, _ := after.sum("callfloor_webhook_deliveries_total", `state="delivered"`)
		return v > 0
	})
	if _, ok := after.sum("callfloor_calls"); ok {
		t.Error("calls still reported after the call ended")
	}
	for _, m := range []struct {
		name   string
		labels []string
	}{
		{"callfloor_events_appended_total", []string{`type="call"`}},
		{"callfloor_events_appended_total", []string{`type="agent"`}},
		{"callfloor_events_appended_total", []string{`type="call_ended"`}},
		{"callfloor_events_delivered_total", nil},
		{"callfloor_routing_work_total", nil},
		{"callfloor_routing_dispatch_passes_total", nil},
		{"callfloor_routing_loop_delay_seconds_count", nil},
		{"callfloor_store_command_seconds_count", []string{`op="commit"`}},
		{"callfloor_store_command_seconds_count", []string{`op="get"`}},
		{"callfloor_webhook_attempts_total", []string{`result="ok"`}},
		{"callfloor_media_command_seconds_count", []string{`command="dial"`}},
		{"callfloor_reports_events_projected_total", nil},
		{"callfloor_media_command_seconds_count", []string{`command="connect"`}},
	} {
		b, _ := before.sum(m.name, m.labels...)
		if a := after.must(t, m.name, m.labels...); a <= b {
			t.Errorf("%s%v did not move: %v → %v", m.name, m.labels, b, a)
		}
	}
}
