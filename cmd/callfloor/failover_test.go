package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// replica is one callfloor process started from the built binary.
type replica struct {
	t       *testing.T
	name    string
	base    string
	sipAddr string
	cmd     *exec.Cmd
	logs    *lockedBuffer
	exited  chan struct{}
}

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

// buildBinary builds cmd/callfloor once per test into a temp directory.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "callfloor")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build callfloor: %v\n%s", err, out)
	}
	return bin
}

// startReplica runs the binary with env plus its own HTTP and SIP
// addresses and waits until it answers /v1/healthz.
func startReplica(t *testing.T, bin, name string, env map[string]string) *replica {
	t.Helper()
	r := &replica{t: t, name: name, logs: &lockedBuffer{}, exited: make(chan struct{}), sipAddr: env["CALLFLOOR_SIP_ADDR"]}
	if r.sipAddr == "" {
		r.sipAddr = fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	r.base = "http://" + httpAddr
	r.cmd = exec.Command(bin)
	r.cmd.Env = append(os.Environ(), "CALLFLOOR_HTTP_ADDR="+httpAddr, "CALLFLOOR_SIP_ADDR="+r.sipAddr,
		"CALLFLOOR_DATA_DIR="+t.TempDir()) // each replica's SQLite reports database in the test's directory
	for k, v := range env {
		r.cmd.Env = append(r.cmd.Env, k+"="+v)
	}
	r.cmd.Stdout, r.cmd.Stderr = r.logs, r.logs
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(func() {
		_ = r.cmd.Process.Kill()
		<-r.exited
		if t.Failed() {
			t.Logf("--- replica %s log:\n%s", r.name, r.logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if res, err := http.Get(r.base + "/v1/healthz"); err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s did not start:\n%s", name, r.logs.String())
		}
	}
}

func (r *replica) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatal(err)
	}
}

func (r *replica) call(method, path, token, body string, out any) int {
	r.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, r.base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s on %s: %v", method, path, r.name, err)
	}
	defer res.Body.Close()
	if out != nil {
		_ = json.NewDecoder(res.Body).Decode(out)
	}
	return res.StatusCode
}

// answeredCallOn waits until some replica shows an answered call and
// returns its id.
func answeredCallOn(t *testing.T, r *replica, not string) string {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var calls []map[string]any
		r.call("GET", "/v1/calls", "demo-sup-sales", "", &calls)
		for _, c := range calls {
			if c["state"] == "answered" && c["id"] != not {
				return c["id"].(string)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no answered call on %s", r.name)
		}
	}
}

// replicaHolding finds the replica whose process holds a lease (holder
// ids carry the process id).
func replicaHolding(t *testing.T, among []*replica, holder string) *replica {
	t.Helper()
	for _, r := range among {
		if strings.Contains(holder, fmt.Sprintf("-%d-", r.cmd.Process.Pid)) {
			return r
		}
	}
	t.Fatalf("holder %q is none of the replicas", holder)
	return nil
}

// TestFailoverRealProcesses is issue 11's failover acceptance on the
// built-in SIP path with real processes: three callfloor binaries on one
// real redis-server (lease TTL 2 s), sipp phones, one SIP address that
// only the owner binds (the floating address of README.md, "The SIP
// listener in production"). A call is answered through the owner, which
// is then killed with SIGKILL mid-call. A standby takes the media lease
// within the TTL (measured), with a greater token; a write made with the
// dead owner's token is refused by the store; the new owner restores the
// call's dialogs, so the call stays answered with a1 talking, not offered
// again, until a1's phone hangs up (its BYE reaches the new owner): the
// caller gets the BYE and the call ends normally, a1 wrapping up. The
// agent's stored registration lets the new owner ring the same phone for
// the next call, which is answered once and hung up through the third
// replica (relayed to the owner). Then the new owner is frozen (SIGSTOP)
// past the TTL: the third replica takes over, and when the frozen one
// resumes it notices it lost the lease and stops driving media instead
// of fighting for it.
func TestFailoverRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three processes")
	}
	testpeer.Require(t, "sipp", "sip-tester")
	bin := buildBinary(t)
	rs := testpeer.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	const ttl = 2 * time.Second
	const mediaLease = "media:sip:default"
	// Signalling mode: the sipp phones check the SDP passes through.
	env := map[string]string{"CALLFLOOR_REDIS_URL": rs.URL(), "CALLFLOOR_LEASE_TTL_SECONDS": "2", "CALLFLOOR_SIP_MEDIA": "signalling",
		"CALLFLOOR_SIP_ADDR": fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))}

	replicas := map[string]*replica{}
	var order []*replica
	for _, name := range []string{"A", "B", "C"} {
		r := startReplica(t, bin, name, env)
		replicas[name], order = r, append(order, r)
		if name == "A" {
			waitHolder(t, rdb, mediaLease, "")
		}
	}
	ownerOf := func(holder string) *replica { return replicaHolding(t, order, holder) }
	holder1, tok1 := leaseHolder(t, rdb, mediaLease)
	owner := ownerOf(holder1)
	if owner.name != "A" {
		t.Fatalf("first owner is %s, want A (started first)", owner.name)
	}

	// A call through the owner: a1's phone registers there and answers.
	a := replicas["A"]
	phone := testpeer.FreeUDPPort(t)
	runSipp(t, "register a1", a.sipAddr, phone, "-sf", scenarioPath("register.xml"), "-m", "1",
		"-au", "a1", "-ap", "sip-a1", "-key", "user", "a1", "-key", "expires", "3600").wait(t, 20*time.Second)
	if code := replicas["B"].call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available through B: %d", code)
	}
	// a1 talks for 8 s after the ACK, then hangs up: well past the
	// takeover, so its BYE goes to whoever owns the SIP address then.
	agent1 := runSipp(t, "a1 answers, hangs up later", "", phone, "-sf", scenarioPath("agent_hangup_later.xml"), "-m", "1",
		"-key", "agent", "a1", "-d", "8000")
	caller1 := runSipp(t, "trunk caller", a.sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_until_bye.xml"),
		"-m", "1", "-s", "+842873000001")
	call1 := answeredCallOn(t, replicas["C"], "")

	// kill -9 the owner mid-call.
	killed := time.Now()
	a.signal(syscall.SIGKILL)
	<-a.exited
	holder2, tok2 := waitHolder(t, rdb, mediaLease, holder1)
	takeover := time.Since(killed)
	owner2 := ownerOf(holder2)
	t.Logf("takeover after SIGKILL of the owner: %v (TTL %v) by %s", takeover.Round(time.Millisecond), ttl, owner2.name)
	if tok2 <= tok1 {
		t.Fatalf("new owner's token %d, want > %d", tok2, tok1)
	}
	if takeover > 2*ttl {
		t.Errorf("takeover took %v, beyond the TTL (%v) plus slack", takeover, ttl)
	}
	// A write carrying the dead owner's token is refused.
	st := store.NewRedis(redis.NewClient(&redis.Options{Addr: rs.Addr()}))
	defer st.Close()
	_, err := st.Commit(context.Background(), state.Tx{Fence: state.Fence{Lease: mediaLease, Token: tok1},
		Puts: []state.Put{{Kind: state.KindCall, ID: call1, Data: []byte(`{"stale":true}`), IfVersion: state.AnyVersion}}})
	if !errors.Is(err, state.ErrFenced) {
		t.Fatalf("write with the dead owner's token: %v, want ErrFenced", err)
	}
	// The dead owner's call stays answered, a1 talking, on one call.
	third := replicas["B"]
	if owner2 == third {
		third = replicas["C"]
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		var calls []map[string]any
		third.call("GET", "/v1/calls", "demo-sup-sales", "", &calls)
		var a1 map[string]any
		third.call("GET", "/v1/agents/a1", "demo-admin", "", &a1)
		if len(calls) == 1 && calls[0]["id"] == call1 && calls[0]["state"] == "answered" && a1["system_status"] == "talking" &&
			strings.Contains(owner2.logs.String(), "restored answered dialogs") {
			t.Logf("call %s seen answered on the new owner, a1 talking, %v after the kill", call1, time.Since(killed).Round(time.Millisecond))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the takeover: calls %v, a1 %v; want %s answered with a1 talking", calls, a1["system_status"], call1)
		}
	}
	// a1 hangs up through the new owner: the caller gets the BYE, the
	// call ends, a1 wraps up. One INVITE to a1's phone in all (sipp fails
	// on any other).
	agent1.wait(t, 20*time.Second)
	caller1.wait(t, 20*time.Second)
	t.Logf("the call set up by the killed owner ended by a1's BYE %v after the kill", time.Since(killed).Round(time.Millisecond))
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code := third.call("GET", "/v1/calls/"+call1, "demo-sup-sales", "", nil); code == 404 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("call %s still live after both phones hung up", call1)
		}
	}
	var a1 map[string]any
	if code := third.call("GET", "/v1/agents/a1", "demo-admin", "", &a1); code != 200 || a1["system_status"] != "after_call_work" {
		t.Fatalf("a1 after hanging up: %d %v, want after_call_work", code, a1["system_status"])
	}
	var stats map[string]any
	third.call("GET", "/v1/stats/today", "demo-admin", "", &stats)
	if stats["accepted"] != 1.0 || stats["missed"] != 0.0 {
		t.Fatalf("today after the call: %v, want 1 accepted, 0 missed", stats)
	}
	third.call("POST", "/v1/agents/a1/wrapup/end", "demo-a1", "", nil)
	if code := third.call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available again: %d", code)
	}

	// The next call goes to the new owner's address; a1's stored
	// registration lets it ring the same phone.
	agent2 := runSipp(t, "a1 answers again", "", phone, "-sf", scenarioPath("agent_answer.xml"), "-m", "1", "-key", "agent", "a1")
	caller2 := runSipp(t, "trunk caller 2", owner2.sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_until_bye.xml"),
		"-m", "1", "-s", "+842873000001")
	call2 := answeredCallOn(t, third, call1)
	var calls []map[string]any
	third.call("GET", "/v1/calls", "demo-sup-sales", "", &calls)
	if len(calls) != 1 {
		t.Fatalf("live calls after the takeover: %v, want only %s", calls, call2)
	}
	if code := third.call("POST", "/v1/calls/"+call2+"/hangup", "demo-sup-sales", "", nil); code != 200 {
		t.Fatalf("hang-up through the third replica: %d", code)
	}
	caller2.wait(t, 15*time.Second)
	agent2.wait(t, 15*time.Second) // one INVITE, answered once, one BYE

	// Freeze the owner past the TTL: the third replica takes over.
	frozen := time.Now()
	owner2.signal(syscall.SIGSTOP)
	holder3, tok3 := waitHolder(t, rdb, mediaLease, holder2)
	t.Logf("takeover after SIGSTOP of the owner: %v by %s", time.Since(frozen).Round(time.Millisecond), ownerOf(holder3).name)
	if ownerOf(holder3) != third || tok3 <= tok2 {
		t.Fatalf("after freezing %s: holder %s token %d", owner2.name, holder3, tok3)
	}
	owner2.signal(syscall.SIGCONT)
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(owner2.logs.String(), "lease lost"); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the resumed stale owner never noticed it lost the lease:\n%s", owner2.logs.String())
		}
	}
	time.Sleep(3 * ttl) // it must not take the lease back while the new owner lives
	if h, _ := leaseHolder(t, rdb, mediaLease); h != holder3 {
		t.Fatalf("media lease moved from %s to %s after the stale owner resumed", holder3, h)
	}
}
