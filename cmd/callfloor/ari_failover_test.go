package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
)

// fakeAsterisk is ari's in-process Asterisk fake run as a peer process
// (ari's TestServeFake), so that several callfloor binaries drive one
// Asterisk; the test plays the trunk and the phones through its control API.
type fakeAsterisk struct {
	t       *testing.T
	ari     string // ARI base URL (…/ari)
	control string
}

// startFakeAsterisk builds ari's test binary and runs the fake until the
// test ends (closing its standard input stops it).
func startFakeAsterisk(t *testing.T) *fakeAsterisk {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "ari.test")
	if out, err := exec.Command("go", "test", "-c", "-o", bin, "github.com/callfloor/callfloor/ari").CombinedOutput(); err != nil {
		t.Fatalf("build the ARI fake: %v\n%s", err, out)
	}
	addrs := filepath.Join(dir, "addrs")
	cmd := exec.Command(bin, "-test.run", "^TestServeFake$")
	cmd.Env = append(os.Environ(), "CALLFLOOR_FAKE_ARI_ADDR_FILE="+addrs)
	logs := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = stdin.Close()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("--- ARI fake log:\n%s", logs.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if b, err := os.ReadFile(addrs); err == nil {
			lines := strings.Fields(string(b))
			return &fakeAsterisk{t: t, ari: lines[0], control: lines[1]}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the ARI fake did not start:\n%s", logs.String())
		}
	}
}

// do calls the control API; out, if not nil, receives the JSON answer.
func (f *fakeAsterisk) do(method, path string, out any) {
	f.t.Helper()
	req, _ := http.NewRequest(method, f.control+path, nil)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		f.t.Fatalf("ARI fake %s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if res.StatusCode >= 300 {
		b, _ := io.ReadAll(res.Body)
		f.t.Fatalf("ARI fake %s %s: %d %s", method, path, res.StatusCode, b)
	}
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			f.t.Fatalf("ARI fake %s %s: %v", method, path, err)
		}
	}
}

type fakeChannel struct {
	ID         string `json:"id"`
	Endpoint   string `json:"endpoint"`
	Originated bool   `json:"originated"`
}

// originatedTo returns the channels callfloor originated to endpoint.
func (f *fakeAsterisk) originatedTo(endpoint string) []string {
	var chans []fakeChannel
	f.do("GET", "/channels", &chans)
	var out []string
	for _, c := range chans {
		if c.Originated && c.Endpoint == endpoint {
			out = append(out, c.ID)
		}
	}
	return out
}

// requests counts the ARI requests logged so far that start with prefix
// and contain every one of parts.
func (f *fakeAsterisk) requests(prefix string, parts ...string) int {
	var reqs []string
	f.do("GET", "/requests", &reqs)
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, prefix) && !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(r, p) }) {
			n++
		}
	}
	return n
}

// TestFailoverARIRealProcesses is issue 11's failover acceptance on the
// Asterisk path with real processes: three callfloor binaries on one real
// redis-server (lease TTL 2 s) drive the ARI fake, itself a separate
// process. A trunk call is offered to a1 by the owner and answered; the
// owner is killed with SIGKILL mid-call. A standby takes the media lease
// within the TTL (measured) with a greater token, and a write carrying the
// dead owner's token is refused. The new owner connects to the same
// Asterisk, resyncs the channels still in Stasis and adopts the call as
// it is: same call, still answered by a1, no second offer. A listen sent
// to a replica that does not own the media server is relayed to the new
// owner, rings the supervisor and answers with the owner's result. When
// the caller hangs up, the new owner ends the call normally
// (hangs up a1's channel, frees a1). The log holds that one call, ended
// once, and Asterisk saw exactly one originate to a1.
func TestFailoverARIRealProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries and runs five processes")
	}
	bin := buildBinary(t)
	fake := startFakeAsterisk(t)
	rs := testpeer.StartRedis(t)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr()})
	defer rdb.Close()
	const ttl = 2 * time.Second
	mediaLease := "media:asterisk:" + fake.ari + "#callfloor"
	env := map[string]string{"CALLFLOOR_REDIS_URL": rs.URL(), "CALLFLOOR_LEASE_TTL_SECONDS": "2",
		"CALLFLOOR_ARI_URL": fake.ari, "CALLFLOOR_ARI_USER": "callfloor", "CALLFLOOR_ARI_PASSWORD": "secret", "CALLFLOOR_ARI_APP": "callfloor"}

	var order []*replica
	replicas := map[string]*replica{}
	for _, name := range []string{"A", "B", "C"} {
		r := startReplica(t, bin, name, env)
		replicas[name], order = r, append(order, r)
		if name == "A" {
			waitHolder(t, rdb, mediaLease, "")
		}
	}
	holder1, tok1 := leaseHolder(t, rdb, mediaLease)
	a := replicas["A"]
	if replicaHolding(t, order, holder1) != a {
		t.Fatalf("first owner is not A (started first): %s", holder1)
	}
	eventually(t, "A connected to Asterisk", func() (bool, string) {
		code := a.call("GET", "/v1/readyz", "", "", nil)
		return code == 200, fmt.Sprint(code)
	})

	// A trunk call, offered by the owner to a1 and answered.
	if code := replicas["B"].call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"available"}`, nil); code != 200 {
		t.Fatalf("a1 available through B: %d", code)
	}
	const caller = "+84905550001"
	var in struct{ Channel string }
	fake.do("POST", "/inbound?"+url.Values{"caller": {caller}, "hotline": {"+842873000001"}}.Encode(), &in)
	var agentChan string
	eventually(t, "a1's device is rung", func() (bool, string) {
		ch := fake.originatedTo("a1")
		if len(ch) == 1 {
			agentChan = ch[0]
		}
		return len(ch) == 1, fmt.Sprint(ch)
	})
	fake.do("POST", "/ring?channel="+agentChan, nil)
	fake.do("POST", "/answer?channel="+agentChan, nil)
	callID := answeredCallOn(t, replicas["C"], "")
	eventually(t, "caller and a1 bridged by A", func() (bool, string) {
		n := fake.requests("POST /bridges")
		return n >= 1, fmt.Sprint(n)
	})

	// kill -9 the owner mid-call.
	killed := time.Now()
	a.signal(syscall.SIGKILL)
	<-a.exited
	holder2, tok2 := waitHolder(t, rdb, mediaLease, holder1)
	takeover := time.Since(killed)
	owner2 := replicaHolding(t, order, holder2)
	t.Logf("takeover after SIGKILL of the ARI owner: %v (TTL %v) by %s", takeover.Round(time.Millisecond), ttl, owner2.name)
	if tok2 <= tok1 {
		t.Fatalf("new owner's token %d, want > %d", tok2, tok1)
	}
	if takeover > 2*ttl {
		t.Errorf("takeover took %v, beyond the TTL (%v) plus slack", takeover, ttl)
	}
	st := store.NewRedis(redis.NewClient(&redis.Options{Addr: rs.Addr()}))
	defer st.Close()
	_, err := st.Commit(context.Background(), state.Tx{Fence: state.Fence{Lease: mediaLease, Token: tok1},
		Puts: []state.Put{{Kind: state.KindCall, ID: callID, Data: []byte(`{"stale":true}`), IfVersion: state.AnyVersion}}})
	if !errors.Is(err, state.ErrFenced) {
		t.Fatalf("write with the dead owner's token: %v, want ErrFenced", err)
	}

	// The new owner reconnects and resyncs: it lists the channels (twice
	// in all: once per owner) and then reads endpoints, after which its
	// snapshot of the call is reported to routing.
	eventually(t, "the new owner resynced with Asterisk", func() (bool, string) {
		n := fake.requests("GET /endpoints")
		return n >= 2 && owner2.call("GET", "/v1/readyz", "", "", nil) == 200, fmt.Sprint(n)
	})
	third := replicas["B"]
	if owner2 == third {
		third = replicas["C"]
	}
	var call map[string]any
	if code := third.call("GET", "/v1/calls/"+callID, "demo-sup-sales", "", &call); code != 200 || call["state"] != "answered" || call["agent"] != "a1" {
		t.Fatalf("call %s after the takeover: %d %v, want answered by a1", callID, code, call)
	}

	// A supervisor action sent to a non-owner acts on the call through the
	// new owner and answers with the owner's result.
	req, _ := http.NewRequest("POST", third.base+"/v1/calls/"+callID+"/listen", nil)
	req.Header.Set("Authorization", "Bearer demo-sup-sales")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode/100 != 2 || res.Header.Get("X-Callfloor-Relayed") != "1" {
		t.Fatalf("listen through %s (not the owner): %d relayed=%q %s", third.name, res.StatusCode, res.Header.Get("X-Callfloor-Relayed"), body)
	}
	if len(fake.originatedTo("sup-sales")) == 0 {
		t.Fatal("the relayed listen rang no supervisor device on Asterisk")
	}
	if code := third.call("GET", "/v1/calls/"+callID, "demo-sup-sales", "", &call); code != 200 || call["monitor"] == nil {
		t.Fatalf("call after the relayed listen: %d %v, want a monitor", code, call)
	}

	// The caller hangs up: the new owner ends the call normally.
	fake.do("POST", "/hangup?channel="+in.Channel, nil)
	eventually(t, "the call ended by the new owner", func() (bool, string) {
		code := third.call("GET", "/v1/calls/"+callID, "demo-sup-sales", "", nil)
		return code == 404, fmt.Sprint(code)
	})
	eventually(t, "a1's channel hung up by the new owner", func() (bool, string) {
		n := fake.requests("DELETE /channels/" + agentChan)
		return n == 1, fmt.Sprint(n)
	})
	var a1 map[string]any
	third.call("GET", "/v1/agents/a1", "demo-admin", "", &a1)
	if s := a1["system_status"]; s != "after_call_work" && s != "available" {
		t.Fatalf("a1 after the call: %v, want wrap-up or available", s)
	}
	if n := fake.requests("POST /channels?", "endpoint=PJSIP%2Fa1&"); n != 1 {
		t.Fatalf("%d originates to a1, want exactly 1 (a1 offered once)", n)
	}
	// The log holds one call for the caller, ended once.
	ids, ended := map[string]bool{}, 0
	for after := ""; ; {
		evs, err := st.ReadAfter(context.Background(), after, 1000, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			after = e.ID
			if e.Type != routing.EventCall && e.Type != routing.EventCallEnded {
				continue
			}
			var v routing.CallView
			if json.Unmarshal(e.Data, &v) != nil || v.CustomerNumber != caller {
				continue
			}
			ids[v.ID] = true
			if e.Type == routing.EventCallEnded {
				ended++
			}
		}
	}
	if len(ids) != 1 || !ids[callID] || ended != 1 {
		t.Fatalf("calls of the caller in the log: %v, ended %d times; want only %s, ended once", ids, ended, callID)
	}
}
