package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// server is the demo floor's agent API and event stream on httptest.
func server(t *testing.T) string {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	svc := presence.NewService(st)
	if err := config.Bootstrap(context.Background(), cfg, svc); err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(st)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = hub.Run(ctx) }()
	srv := httptest.NewServer(api.New(svc, st, api.WithRoutes(api.EventRoutes(hub))).Handler())
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		cancel()
		wg.Wait()
		st.Close()
	})
	return srv.URL
}

// TestLoadDeliversEveryChange: every change reaches every client exactly
// once and is measured.
func TestLoadDeliversEveryChange(t *testing.T) {
	base := server(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := run(ctx, options{base: base, token: "demo-admin", clients: 5, changes: 24,
		agents: []string{"a1", "a2", "a3"}, timeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if rep.delivered != 5*24 || rep.expected != 5*24 || len(rep.latencies) != rep.delivered {
		t.Fatalf("report: %d/%d delivered, %d latencies", rep.delivered, rep.expected, len(rep.latencies))
	}
	if rep.String() == "" {
		t.Fatal("empty report")
	}
}

func TestLoadRefusesRemoteTargets(t *testing.T) {
	for target, ok := range map[string]bool{
		"http://127.0.0.1:8080": true, "http://localhost:1": true, "http://[::1]:80": true,
		"http://10.1.2.3:8080": false, "http://example.com": false, "http://0.0.0.0:8080": false,
	} {
		if err := checkLoopback(target); (err == nil) != ok {
			t.Errorf("checkLoopback(%s) = %v", target, err)
		}
	}
	_, err := run(context.Background(), options{base: "http://192.168.1.10:8080", clients: 1, changes: 1})
	if err == nil || errors.Is(err, context.Canceled) {
		t.Fatalf("remote target accepted: %v", err)
	}
}

// buildServer builds cmd/callfloor into a temporary directory.
func buildServer(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "callfloor")
	out, err := exec.Command("go", "build", "-o", bin, "../callfloor").CombinedOutput()
	if err != nil {
		t.Fatalf("build callfloor: %v\n%s", err, out)
	}
	return bin
}

// TestFloorRunSmoke is the load tool's default run at small numbers (CI
// smoke test, no timing asserted): a real callfloor process on a generated
// floor, agents logging in over SIP and changing statuses, calls through
// the SIP path, SSE clients; every call completes, every measurement is
// taken, and the server's CPU and RSS are read from its /proc entry.
func TestFloorRunSmoke(t *testing.T) {
	bin := buildServer(t)
	dir := t.TempDir()
	var floor bytes.Buffer
	if err := writeFloor(&floor, 12, "signalling"); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "floor.yaml")
	if err := os.WriteFile(cfg, floor.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	httpAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	srv := exec.Command(bin)
	srv.Env = append(os.Environ(), "CALLFLOOR_CONFIG="+cfg, "CALLFLOOR_HTTP_ADDR="+httpAddr, "CALLFLOOR_SIP_ADDR="+sipAddr,
		"CALLFLOOR_DATA_DIR="+filepath.Join(dir, "data")) // the reports database stays in the test's directory
	var logs bytes.Buffer
	srv.Stdout, srv.Stderr = &logs, &logs
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		_ = srv.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(15 * time.Second):
			_ = srv.Process.Kill()
			<-exited
		}
	}()
	base := "http://" + httpAddr
	deadline := time.Now().Add(30 * time.Second)
	for {
		res, err := http.Get(base + "/v1/readyz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("callfloor not ready: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if pid, err := serverPID(httpAddr); err != nil || pid != srv.Process.Pid {
		t.Errorf("serverPID(%s) = %d, %v; want %d", httpAddr, pid, err, srv.Process.Pid)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := runFloor(ctx, floorOptions{base: base, sipAddr: sipAddr, hotline: loadHotline,
		agents: 12, clients: 3, statusRate: 10, callRate: 5, answerDelay: 50 * time.Millisecond,
		talk: 200 * time.Millisecond, duration: 2 * time.Second})
	if err != nil {
		t.Fatalf("%v\n%s", err, logs.String())
	}
	t.Logf("\n%s", rep)
	if rep.callErrors != 0 || rep.unfinished() != 0 || rep.changeErrors != 0 || rep.streamErrors != 0 {
		t.Fatalf("errors: calls %d, changes %d, streams %d: %v", rep.callErrors, rep.changeErrors, rep.streamErrors, rep.firstErrors)
	}
	if rep.callsPlaced == 0 || rep.callsDone != rep.callsPlaced || rep.callsAnswered != rep.callsPlaced {
		t.Errorf("calls placed %d, answered %d, completed %d", rep.callsPlaced, rep.callsAnswered, rep.callsDone)
	}
	if got, want := rep.callLat.len(), int(rep.callsPlaced)*3; got != want {
		t.Errorf("call latency samples %d, want one per call and client (%d)", got, want)
	}
	if got, want := rep.changeLat.len(), int(rep.changesSent)*3; got != want || want == 0 {
		t.Errorf("status change samples %d, want one per change and client (%d)", got, want)
	}
	if rep.procErr != nil || rep.pid != srv.Process.Pid || rep.rssMax <= 0 || rep.cpu <= 0 {
		t.Errorf("server process: pid %d (want %d), cpu %s, rss max %d, err %v", rep.pid, srv.Process.Pid, rep.cpu, rep.rssMax, rep.procErr)
	}
	if !strings.Contains(rep.String(), "per 1,000 calls") {
		t.Errorf("report lacks CPU per 1,000 calls:\n%s", rep)
	}
}
