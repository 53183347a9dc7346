package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/reports"
	"github.com/callfloor/callfloor/reports/reportstest"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/store"
)

// childEnv makes the test binary run callfloor's main (see TestMain).
const childEnv = "CALLFLOOR_TEST_RUN_MAIN"

// reportsFloor is a small floor for the reports end-to-end tests: a
// 2-second ring timeout and no wrap-up keep the scenarios short.
const reportsFloor = `
timezone: UTC
default_queue: sales
groups:
  - {id: sales, name: Sales, supervisors: []}
agents:
  - {id: admin, name: Admin, email: admin@example.com, phone: "+84901000100", role: admin, groups: [], distribution: app, token: demo-t-admin}
  - {id: a1, name: Agent One, email: a1@example.com, phone: "+84901000011", role: agent, groups: [sales], distribution: app, token: demo-t-a1}
  - {id: a2, name: Agent Two, email: a2@example.com, phone: "+84901000012", role: agent, groups: [sales], distribution: app, token: demo-t-a2}
queues:
  - {id: sales, name: Sales, hotlines: ["+842873000001"], members: [sales], strategy: round_robin, ring_timeout_seconds: 2, wrapup_seconds: 0, service_level_seconds: 20}
`

func writeFloor(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "floor.yaml")
	if err := os.WriteFile(p, []byte(reportsFloor), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p *process) setStatus(agent, status string) {
	p.t.Helper()
	if code := p.call("PUT", "/v1/agents/"+agent+"/status", "demo-t-admin", `{"call_status":"`+status+`"}`, nil); code != 200 {
		p.t.Fatalf("%s → %s: %d", agent, status, code)
	}
}

func (p *process) sysStatus(agent string) string {
	var a map[string]any
	p.call("GET", "/v1/agents/"+agent, "demo-t-admin", "", &a)
	s, _ := a["system_status"].(string)
	return s
}

func (p *process) liveCall() map[string]any {
	var calls []map[string]any
	p.call("GET", "/v1/calls", "demo-t-admin", "", &calls)
	if len(calls) == 0 {
		return nil
	}
	return calls[0]
}

type callsPage struct {
	Items []reports.CallRow `json:"items"`
}

// TestReportsFromRealSIPCalls places real sipp calls through the built-in
// SIP path — answered; RONA then answered by another agent; abandoned;
// transferred — and checks the rows and figures of every report, the CSV
// export and today's counters against a recount from the rows. These
// calls run in signalling mode (the sipp phones check the SDP passes
// through); the monitored call, which needs the anchored media, is
// TestReportsOfMonitoredSIPCall.
func TestReportsFromRealSIPCalls(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	dataDir := t.TempDir()
	p := start(t, map[string]string{"CALLFLOOR_SIP_ADDR": sipAddr, "CALLFLOOR_CONFIG": writeFloor(t), "CALLFLOOR_DATA_DIR": dataDir,
		"CALLFLOOR_SIP_MEDIA": "signalling"}) // the sipp phones check the SDP passes through
	defer p.stop()
	phones := registerPhones(t, sipAddr, "a1", "a2")
	phone := func(agent, scenario string) *sippRun {
		return runSipp(t, agent+" "+scenario, "", phones[agent], "-sf", scenarioPath(scenario), "-m", "1", "-key", "agent", agent)
	}
	trunk := func(scenario string, args ...string) *sippRun {
		return runSipp(t, "trunk "+scenario, sipAddr, testpeer.FreeUDPPort(t),
			append([]string{"-sf", scenarioPath(scenario), "-m", "1", "-s", "+842873000001"}, args...)...)
	}
	noCall := func() bool { return p.liveCall() == nil }

	// 1. a1 answers; the caller talks 1 s and hangs up.
	p.setStatus("a1", "available")
	ag, caller := phone("a1", "agent_answer.xml"), trunk("caller.xml", "-d", "1000")
	caller.wait(t, 20*time.Second)
	ag.wait(t, 20*time.Second)
	waitFor(t, "call 1 to end", noCall)

	// 2. a1 lets it ring out (RONA after 2 s); a2 then becomes available
	// and answers; the caller talks 1 s and hangs up.
	ag = phone("a1", "agent_noanswer.xml")
	ag2 := phone("a2", "agent_answer.xml")
	caller = trunk("caller.xml", "-d", "1000")
	waitFor(t, "a1 in rona", func() bool { return p.sysStatus("a1") == "rona" })
	p.setStatus("a2", "available")
	caller.wait(t, 20*time.Second)
	ag.wait(t, 20*time.Second)
	ag2.wait(t, 20*time.Second)
	waitFor(t, "call 2 to end", noCall)
	p.setStatus("a2", "unavailable")
	p.setStatus("a1", "available")

	// 3. The caller gives up after 1 s while a1 rings: abandoned.
	ag = phone("a1", "agent_noanswer.xml")
	caller = trunk("caller_cancel.xml", "-d", "1000")
	caller.wait(t, 20*time.Second)
	ag.wait(t, 20*time.Second)
	waitFor(t, "call 3 to end", noCall)

	// 4. a1 answers; the call is transferred to a2, who answers; the
	// caller hangs up.
	ag = phone("a1", "agent_answer.xml")
	ag2 = phone("a2", "agent_answer.xml")
	caller = trunk("caller_transfer.xml")
	var id string
	waitFor(t, "call 4 answered by a1", func() bool {
		c := p.liveCall()
		if c != nil && c["state"] == "answered" {
			id = c["id"].(string)
			return true
		}
		return false
	})
	p.setStatus("a2", "available")
	if code := p.call("POST", "/v1/calls/"+id+"/transfer", "demo-t-admin", `{"agent":"a2"}`, nil); code != 200 {
		t.Fatalf("transfer: %d", code)
	}
	caller.wait(t, 20*time.Second)
	ag.wait(t, 20*time.Second)
	ag2.wait(t, 20*time.Second)
	waitFor(t, "call 4 to end", noCall)

	// The projection catches up: four ended calls.
	var page callsPage
	waitFor(t, "four ended calls in /v1/reports/calls", func() bool {
		p.call("GET", "/v1/reports/calls", "demo-t-admin", "", &page)
		ended := 0
		for _, c := range page.Items {
			if c.EndedAt != nil {
				ended++
			}
		}
		return ended == 4
	})
	calls := page.Items
	if len(calls) != 4 {
		t.Fatalf("%d calls: %+v", len(calls), calls)
	}
	want := []struct {
		outcome, agent, hung string
		transfers            int
	}{
		{"answered", "a1", "customer", 0}, {"answered", "a2", "customer", 0}, {"abandoned", "a1", "customer", 0}, {"answered", "a2", "customer", 1},
	}
	for i, w := range want {
		c := calls[i]
		if c.Outcome != w.outcome || c.Agent != w.agent || c.HungUpBy != w.hung || c.Transfers != w.transfers ||
			c.Queue != "sales" || c.Hotline != "+842873000001" || c.CustomerNumber != "+4930123456" || c.Direction != "inbound" {
			t.Errorf("call %d = %+v; want %+v", i+1, c, w)
		}
		// Calls 1 and 2 talk 1 s (sipp -d 1000); every answered call's talk
		// is its end minus its first answer.
		if w.outcome == "answered" && (c.TalkSeconds == nil || (i < 2 && *c.TalkSeconds < 1) || c.AnsweredAt == nil ||
			*c.TalkSeconds != int64(c.EndedAt.Sub(*c.AnsweredAt)/time.Second)) {
			t.Errorf("call %d talk %v answered %v ended %v", i+1, c.TalkSeconds, c.AnsweredAt, c.EndedAt)
		}
	}
	if w := calls[1].WaitSeconds; w == nil || *w < 2 {
		t.Errorf("call 2 waited through a 2 s RONA, wait_seconds = %v", w)
	}
	if calls[2].TalkSeconds != nil || calls[2].AnsweredAt != nil {
		t.Errorf("abandoned call has talk: %+v", calls[2])
	}

	// Ring attempts per call.
	var atts struct{ Items []reports.AttemptRow }
	p.call("GET", "/v1/reports/attempts", "demo-t-admin", "", &atts)
	got := map[string][]string{}
	for _, a := range atts.Items {
		got[a.CallID] = append(got[a.CallID], a.Agent+":"+a.Outcome)
		if a.Device != "app" {
			t.Errorf("attempt device %q", a.Device)
		}
	}
	for i, w := range []string{"a1:answered", "a1:no_answer a2:answered", "a1:cancelled", "a1:answered a2:answered"} {
		if g := strings.Join(got[calls[i].ID], " "); g != w {
			t.Errorf("call %d attempts %q; want %q", i+1, g, w)
		}
	}

	// Agents: a1 offered 4 (answered 2, RONA 1), a2 offered 2 (answered 2).
	var agents struct{ Items []reports.AgentRow }
	p.call("GET", "/v1/reports/agents", "demo-t-admin", "", &agents)
	byAgent := map[string]reports.AgentRow{}
	for _, a := range agents.Items {
		byAgent[a.Agent] = a
	}
	if a1, a2 := byAgent["a1"], byAgent["a2"]; a1.Offered != 4 || a1.Answered != 2 || a1.NoAnswer != 1 || a2.Offered != 2 || a2.Answered != 2 || a1.TalkSeconds < 1 {
		t.Errorf("agents: a1 %+v a2 %+v", a1, a2)
	}

	// Queue: 4 offered, 3 answered, 1 abandoned.
	var queues struct{ Items []reports.QueueRow }
	p.call("GET", "/v1/reports/queues?interval=day", "demo-t-admin", "", &queues)
	if len(queues.Items) != 1 || queues.Items[0].Offered != 4 || queues.Items[0].Answered != 3 || queues.Items[0].Abandoned != 1 {
		t.Errorf("queues: %+v", queues.Items)
	}

	// CSV: the same four calls.
	res := getRaw(t, p.base+"/v1/reports/calls?format=csv", "demo-t-admin")
	recs, err := csv.NewReader(bytes.NewReader(res)).ReadAll()
	if err != nil || len(recs) != 5 {
		t.Fatalf("csv: %v %q", err, recs)
	}
	for i := range calls {
		if recs[i+1][0] != calls[i].ID {
			t.Errorf("csv row %d id %s; want %s", i+1, recs[i+1][0], calls[i].ID)
		}
	}

	// Today's counters agree with a recount from the SQL rows.
	db, err := reports.OpenSQLite(context.Background(), filepath.Join(dataDir, "reports.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var stats routing.Stats
	p.call("GET", "/v1/stats/today?queue=sales", "demo-t-admin", "", &stats)
	re, err := db.Recount(context.Background(), stats.DayStart, stats.DayStart.AddDate(0, 0, 1), "sales", "")
	if err != nil {
		t.Fatal(err)
	}
	if stats.Accepted != re.Accepted || stats.Missed != re.Missed || stats.AvgWaitSeconds != re.AvgWaitSeconds || re.Accepted != 3 {
		t.Errorf("counters %+v; recount from rows %+v", stats, re)
	}
}

func getRaw(t *testing.T, url, token string) []byte {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, res.StatusCode, b)
	}
	return b
}

// child is callfloor running as a separate process (this test binary
// re-executed; see TestMain), so it can be killed with SIGKILL.
type child struct {
	cmd  *exec.Cmd
	base string
	done chan struct{}
}

func startChild(t *testing.T, env map[string]string) *child {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	t.Cleanup(func() {
		c.kill()
		if t.Failed() {
			t.Logf("callfloor log:\n%s", tail(logs.String(), 6000))
		}
	})
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	timeout := time.After(60 * time.Second)
	for c.base == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("callfloor exited before serving:\n%s", logs.String())
			}
			if f := strings.Fields(l); len(f) > 1 && f[0] == "dashboard" {
				c.base = strings.TrimSuffix(f[1], "/")
			}
		case <-timeout:
			t.Fatalf("callfloor did not start:\n%s", logs.String())
		}
	}
	go func() {
		for range lines {
		}
	}()
	return c
}

// kill ends the process with SIGKILL, as a crash would, and reaps it.
func (c *child) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// TestReportsSurviveKill9: callfloor is killed with SIGKILL in the middle
// of a burst of calls through the SIP path, then restarted on the same
// Redis and data directory, and a second burst is placed through the
// restarted process; the projection ends with every event of the log
// applied exactly once — no duplicate and no missing row, the second
// burst's calls included — and equal to a replay of the log into an empty
// database.
//
// The restarted process takes calls once it holds the media lease, which
// the killed one still holds until its TTL lapses (1 s here; README.md,
// Running several replicas): until then nothing listens on the SIP port.
// sipp gives up a call whose INVITE draws an ICMP port unreachable and
// then waits out its -timeout, so the test waits for the SIP path to
// answer an OPTIONS before placing the second burst.
func TestReportsSurviveKill9(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	rs := testpeer.StartRedis(t, testpeer.WithAppendOnly())
	dataDir := t.TempDir()
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	env := map[string]string{"CALLFLOOR_REDIS_URL": rs.URL(), "CALLFLOOR_DATA_DIR": dataDir, "CALLFLOOR_CONFIG": writeFloor(t),
		"CALLFLOOR_SIP_ADDR": sipAddr, "CALLFLOOR_SIP_MEDIA": "signalling", "CALLFLOOR_HTTP_ADDR": fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)),
		"CALLFLOOR_LEASE_TTL_SECONDS": "1"}
	c := startChild(t, env)
	// A burst of 100 calls at 20/s that nobody answers: each caller gives
	// up after 300 ms (call, queue and call_ended events).
	burst := runSipp(t, "burst", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_cancel.xml"),
		"-s", "+842873000001", "-m", "100", "-r", "20", "-d", "300")
	var page callsPage
	waitFor(t, "ten calls of the burst in the reports", func() bool {
		_ = callJSON(c.base, "/v1/reports/calls?limit=1000", &page)
		return len(page.Items) >= 10
	})
	select {
	case <-burst.done:
		t.Fatal("the burst ended before the kill")
	default:
	}
	c.kill()
	_ = burst.cmd.Process.Kill() // its calls in flight have lost their server
	c = startChild(t, env)
	restarted := time.Now()
	waitFor(t, "the restarted process's SIP path to answer OPTIONS", func() bool { return sipAnswers(sipAddr) })
	// The second burst: 20 calls at 10/s through the restarted process,
	// every one of which must complete (sipp exits 0).
	const second = 20
	runSipp(t, "burst after the restart", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_cancel.xml"),
		"-s", "+842873000001", "-m", fmt.Sprint(second), "-r", "10", "-d", "300").wait(t, 30*time.Second)
	ctx := context.Background()
	st2, err := store.Open(ctx, rs.URL(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	db, err := reports.OpenSQLite(ctx, filepath.Join(dataDir, "reports.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var cur reports.Cursor
	waitFor(t, "the projector to reach the end of the log", func() bool {
		last, err := st2.Last(ctx)
		if err != nil {
			return false
		}
		cur, err = db.Cursor(ctx)
		return err == nil && cur.Position == last
	})
	// Stop the restarted process too (it keeps appending stats events),
	// then check the cursor against the frozen log: the events up to its
	// position were each applied once.
	c.kill()
	evs, err := st2.ReadAfter(ctx, "", 1000000, 0)
	if err != nil {
		t.Fatal(err)
	}
	if cur, err = db.Cursor(ctx); err != nil {
		t.Fatal(err)
	}
	upTo := -1
	for i, e := range evs {
		if e.ID == cur.Position {
			upTo = i
		}
	}
	if upTo < 0 || cur.Applied != int64(upTo+1) || cur.Gaps != 0 {
		t.Fatalf("applied %d events (gaps %d) up to position %q, which is event %d of the log: an event was applied twice or skipped",
			cur.Applied, cur.Gaps, cur.Position, upTo+1)
	}
	// Resume to the end of the log (a further restart), then compare.
	projectAll(t, db, st2, evs[len(evs)-1].ID)
	if cur, _ = db.Cursor(ctx); cur.Applied != int64(len(evs)) {
		t.Fatalf("applied %d events; the log holds %d", cur.Applied, len(evs))
	}
	ids := map[string]bool{}
	for _, e := range evs {
		if e.Type == routing.EventCall || e.Type == routing.EventCallEnded {
			var v struct{ ID string }
			_ = json.Unmarshal(e.Data, &v)
			ids[v.ID] = true
		}
	}
	q := reports.Query{Scope: reports.Scope{All: true}, From: time.Now().Add(-24 * time.Hour), To: time.Now().Add(24 * time.Hour), Limit: 100000, Loc: time.UTC}
	rows, _, err := db.Calls(ctx, q, reports.CallFilter{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.ID]++
	}
	for id := range ids {
		if seen[id] != 1 {
			t.Errorf("call %s has %d rows", id, seen[id])
		}
	}
	if len(rows) != len(ids) || len(ids) < 10+second {
		t.Fatalf("%d call rows for %d calls in the log", len(rows), len(ids))
	}
	after := 0
	for _, r := range rows {
		if r.StartedAt.After(restarted) {
			after++
			if r.Outcome != "abandoned" || r.EndedAt == nil || r.HungUpBy != "customer" {
				t.Errorf("a call of the second burst: %+v", r)
			}
		}
	}
	if after != second {
		t.Errorf("%d call rows started after the restart; the second burst placed %d", after, second)
	}
	// A replay of the same log into an empty database gives the same rows.
	fresh, err := reports.OpenSQLite(ctx, filepath.Join(t.TempDir(), "replay.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer fresh.Close()
	projectAll(t, fresh, st2, evs[len(evs)-1].ID)
	if a, b := reportstest.Dump(t, db, q), reportstest.Dump(t, fresh, q); a != b {
		t.Fatalf("after kill -9 and restart the rows differ from a replay:\n%s\n---\n%s", a, b)
	}
}

// callJSON GETs path as the test admin into out.
func callJSON(base, path string, out any) error {
	req, _ := http.NewRequest("GET", base+path, nil)
	req.Header.Set("Authorization", "Bearer demo-t-admin")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	return json.NewDecoder(res.Body).Decode(out)
}

// projectAll runs a projector over st's log into db until it has applied
// the event at last.
func projectAll(t *testing.T, db *reports.DB, st store.Backend, last string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	proj := reports.NewProjector(db, st, st, reports.WithReadWait(20*time.Millisecond))
	done := make(chan error, 1)
	go func() { done <- proj.Project(ctx) }()
	waitFor(t, "the projector to reach "+last, func() bool {
		c, err := db.Cursor(context.Background())
		return err == nil && c.Position == last
	})
	cancel()
	<-done
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// TestReportsOfMonitoredSIPCall: on the default (anchored) SIP path a sipp
// trunk call reaches a1 (sipp), the sales supervisor listens from their
// own sipp device, pauses, resumes, barges, then ends the monitor; the
// call is hung up. The monitors report holds one row with those mode
// changes, both ends and its seconds, the call row counts one monitor,
// and the CSV export of the monitors report says the same.
func TestReportsOfMonitoredSIPCall(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	p := start(t, map[string]string{"CALLFLOOR_SIP_ADDR": sipAddr}) // anchored media, the default
	defer p.stop()
	phones := registerPhones(t, sipAddr, "a1", "sup-sales")
	phone, supPhone := phones["a1"], phones["sup-sales"]
	if code := p.call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available: %d", code)
	}
	agent := runSipp(t, "a1 answers", "", phone, "-sf", scenarioPath("agent_answer_anchored.xml"), "-m", "1", "-key", "agent", "a1")
	sup := runSipp(t, "supervisor answers", "", supPhone, "-sf", scenarioPath("agent_answer_anchored.xml"), "-m", "1", "-key", "agent", "sup-sales")
	caller := runSipp(t, "trunk caller", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_until_bye_anchored.xml"),
		"-m", "1", "-s", "+842873000001")
	var id string
	waitFor(t, "an answered call", func() bool {
		var calls []map[string]any
		p.call("GET", "/v1/calls", "demo-sup-sales", "", &calls)
		if len(calls) == 1 && calls[0]["state"] == "answered" {
			id = calls[0]["id"].(string)
			return true
		}
		return false
	})
	var mon map[string]any
	if code := p.call("POST", "/v1/calls/"+id+"/listen", "demo-sup-sales", "", &mon); code != 201 {
		t.Fatalf("listen: %d %v", code, mon)
	}
	mid, _ := mon["id"].(string)
	monitor := func() map[string]any {
		var c map[string]any
		p.call("GET", "/v1/calls/"+id, "demo-sup-sales", "", &c)
		m, _ := c["monitor"].(map[string]any)
		return m
	}
	waitFor(t, "the supervisor's device to answer", func() bool { m := monitor(); return m != nil && m["answered"] == true })
	for _, action := range []string{"pause", "resume", "barge"} {
		if code := p.call("POST", "/v1/monitors/"+mid+"/"+action, "demo-sup-sales", "", nil); code != 200 {
			t.Fatalf("%s: %d", action, code)
		}
	}
	if code := p.call("DELETE", "/v1/monitors/"+mid, "demo-sup-sales", "", nil); code != 200 && code != 204 {
		t.Fatalf("end monitor: %d", code)
	}
	sup.wait(t, 20*time.Second) // its leg got a BYE
	waitFor(t, "the monitor to end", func() bool { return monitor() == nil })
	if code := p.call("POST", "/v1/calls/"+id+"/hangup", "demo-sup-sales", "", nil); code != 200 {
		t.Fatalf("hangup: %d", code)
	}
	caller.wait(t, 20*time.Second)
	agent.wait(t, 20*time.Second)

	var mons struct{ Items []reports.MonitorRow }
	waitFor(t, "the ended monitor in /v1/reports/monitors", func() bool {
		p.call("GET", "/v1/reports/monitors", "demo-sup-sales", "", &mons)
		return len(mons.Items) == 1 && mons.Items[0].EndedAt != nil
	})
	m := mons.Items[0]
	if m.ID != mid || m.CallID != id || m.Supervisor != "sup-sales" || m.Agent != "a1" || m.Queue != "sales" ||
		m.ModeChanges != "listen,paused,listen,barge" || m.AnsweredAt == nil || m.AnsweredAt.Before(m.StartedAt) ||
		m.Seconds == nil || *m.Seconds != int64(m.EndedAt.Sub(m.StartedAt)/time.Second) {
		t.Errorf("monitor row %+v (seconds %v)", m, m.Seconds)
	}
	var page callsPage
	waitFor(t, "the ended call in /v1/reports/calls", func() bool {
		p.call("GET", "/v1/reports/calls", "demo-sup-sales", "", &page)
		return len(page.Items) == 1 && page.Items[0].EndedAt != nil
	})
	if c := page.Items[0]; c.ID != id || c.Monitors != 1 || c.Outcome != "answered" || c.Agent != "a1" || c.HungUpBy != "sup-sales" {
		t.Errorf("call row %+v", c)
	}
	res := getRaw(t, p.base+"/v1/reports/monitors?format=csv", "demo-sup-sales")
	recs, err := csv.NewReader(bytes.NewReader(res)).ReadAll()
	if err != nil || len(recs) != 2 {
		t.Fatalf("monitors csv: %v %q", err, recs)
	}
	col := map[string]string{}
	for i, h := range recs[0] {
		col[h] = recs[1][i]
	}
	if col["id"] != mid || col["mode_changes"] != "listen,paused,listen,barge" || col["supervisor"] != "sup-sales" || col["ended_at"] == "" {
		t.Errorf("monitors csv row %v", col)
	}
}

// sipAnswers reports whether the SIP path at addr answers an OPTIONS over
// UDP with 200 within 300 ms.
func sipAnswers(addr string) bool {
	conn, err := net.Dial("udp", addr)
	if err != nil {
		return false
	}
	defer conn.Close()
	local := conn.LocalAddr().String()
	branch := fmt.Sprintf("z9hG4bK-probe-%d", time.Now().UnixNano())
	msg := "OPTIONS sip:" + addr + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + local + ";branch=" + branch + "\r\n" +
		"From: <sip:probe@" + local + ">;tag=probe\r\n" +
		"To: <sip:" + addr + ">\r\n" +
		"Call-ID: " + branch + "\r\n" +
		"CSeq: 1 OPTIONS\r\n" +
		"Max-Forwards: 70\r\n" +
		"Content-Length: 0\r\n\r\n"
	if _, err := conn.Write([]byte(msg)); err != nil {
		return false
	}
	_ = conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	return err == nil && strings.HasPrefix(string(buf[:n]), "SIP/2.0 200")
}

// registerPhones registers a sipp phone on a free port for each SIP user
// (password sip-<user>, as the test floors set) and returns the ports.
func registerPhones(t *testing.T, sipAddr string, users ...string) map[string]int {
	t.Helper()
	ports := map[string]int{}
	for _, u := range users {
		ports[u] = testpeer.FreeUDPPort(t)
		runSipp(t, "register "+u, sipAddr, ports[u], "-sf", scenarioPath("register.xml"), "-m", "1",
			"-au", u, "-ap", "sip-"+u, "-key", "user", u, "-key", "expires", "3600").wait(t, 20*time.Second)
	}
	return ports
}
