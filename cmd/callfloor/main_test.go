package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callfloor/callfloor/internal/testpeer"
)

func TestMain(m *testing.M) {
	// The kill -9 test runs callfloor as a real child process: this test
	// binary re-executed with childEnv set runs main() instead of tests.
	if os.Getenv(childEnv) == "1" {
		main()
		os.Exit(0)
	}
	// go-redis probes a server that refused its dials from a goroutine
	// that sleeps 1 s between probes and sees the client closed only
	// after the sleep (tests that kill Redis leave one behind briefly);
	// every goroutine of ours is still checked.
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).tryDial"))
}

// process is one callfloor run() serving on a free loopback port.
type process struct {
	t      *testing.T
	base   string
	cancel context.CancelFunc
	done   chan error
	banner string
}

// start runs callfloor as `go run ./cmd/callfloor` would, with env as its
// environment, and waits for its banner.
func start(t *testing.T, env map[string]string) *process {
	t.Helper()
	env = withDefault(env, "CALLFLOOR_HTTP_ADDR", fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)))
	env = withDefault(env, "CALLFLOOR_SIP_ADDR", fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t)))
	// The SQLite reports database goes under the test's own directory.
	env = withDefault(env, "CALLFLOOR_DATA_DIR", t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	p := &process{t: t, cancel: cancel, done: make(chan error, 1)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	go func() {
		err := run(ctx, func(k string) string { return env[k] }, log, pw)
		pw.CloseWithError(io.EOF)
		p.done <- err
	}()
	sc := bufio.NewScanner(pr)
	var banner strings.Builder
	for sc.Scan() {
		line := sc.Text()
		banner.WriteString(line + "\n")
		if strings.HasPrefix(strings.TrimSpace(line), "dashboard") {
			p.base = strings.TrimSuffix(strings.Fields(line)[1], "/")
		}
		if strings.HasPrefix(strings.TrimSpace(line), "try") {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	p.banner = banner.String()
	if p.base == "" {
		cancel()
		t.Fatalf("callfloor did not start: %v\n%s", <-p.done, p.banner)
	}
	return p
}

// withDefault returns a copy of m with k set to v unless m sets it.
func withDefault(m map[string]string, k, v string) map[string]string {
	out := maps.Clone(m)
	if out == nil {
		out = map[string]string{}
	}
	if _, ok := out[k]; !ok {
		out[k] = v
	}
	return out
}

// stop shuts the process down like SIGTERM and waits for it.
func (p *process) stop() {
	p.t.Helper()
	p.cancel()
	select {
	case err := <-p.done:
		if err != nil {
			p.t.Errorf("run returned %v", err)
		}
	case <-time.After(15 * time.Second):
		p.t.Fatal("callfloor did not stop within 15 s")
	}
}

func (p *process) call(method, path, token, body string, out any) int {
	p.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, _ := http.NewRequest(method, p.base+path, rd)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer res.Body.Close()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			p.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return res.StatusCode
}

// TestDefaultRunServesDemoFloor is the README's first command: no
// configuration at all gives the demo floor, health, and the banner.
func TestDefaultRunServesDemoFloor(t *testing.T) {
	p := start(t, nil)
	defer p.stop()
	for _, want := range []string{"dashboard  http://127.0.0.1:", "demo-admin", "bundled demo floor", "in-memory"} {
		if !strings.Contains(p.banner, want) {
			t.Errorf("banner lacks %q:\n%s", want, p.banner)
		}
	}
	if code := p.call("GET", "/v1/healthz", "", "", nil); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code := p.call("GET", "/v1/readyz", "", "", nil); code != 200 {
		t.Fatalf("readyz %d", code)
	}
	var agents []map[string]any
	if code := p.call("GET", "/v1/agents", "demo-admin", "", &agents); code != 200 || len(agents) != 11 {
		t.Fatalf("agents: %d, %d agents", code, len(agents))
	}
	// The built-in SIP path anchors media by default: every action works.
	var media struct {
		Path      string
		Connected bool
		Actions   map[string]struct {
			Supported bool
			Reason    string
		}
	}
	if code := p.call("GET", "/v1/media", "demo-a1", "", &media); code != 200 || media.Path != "sip" || !media.Connected {
		t.Fatalf("media: %d %+v", code, media)
	}
	for name, a := range media.Actions {
		if !a.Supported {
			t.Errorf("%s on the anchored SIP path: %+v", name, a)
		}
	}
	if len(media.Actions) == 0 {
		t.Error("GET /v1/media lists no actions")
	}
	if code := p.call("GET", "/", "", "", nil); code != 200 {
		// The dashboard is HTML; decoding is skipped (nil out).
		t.Fatalf("dashboard %d", code)
	}
}

// TestRestartKeepsStateOnRedis kills and restarts the server on a real
// Redis: agents, statuses and history survive.
func TestRestartKeepsStateOnRedis(t *testing.T) {
	rs := testpeer.StartRedis(t)
	env := map[string]string{"CALLFLOOR_REDIS_URL": rs.URL()}
	p := start(t, env)
	if code := p.call("POST", "/v1/statuses", "demo-admin", `{"id":"coaching","name":"Coaching"}`, nil); code != 201 {
		t.Fatalf("create status: %d", code)
	}
	if code := p.call("PUT", "/v1/agents/a3/status", "demo-sup-sales", `{"call_status":"coaching"}`, nil); code != 200 {
		t.Fatalf("set status: %d", code)
	}
	var before []map[string]any
	p.call("GET", "/v1/agents/a3/history", "demo-admin", "", &before)
	p.stop()

	p2 := start(t, env)
	defer p2.stop()
	var a3 map[string]any
	if code := p2.call("GET", "/v1/agents/a3", "demo-admin", "", &a3); code != 200 || a3["call_status"] != "coaching" {
		t.Fatalf("after restart a3 = %v (%d)", a3, code)
	}
	var after []map[string]any
	p2.call("GET", "/v1/agents/a3/history", "demo-admin", "", &after)
	if len(after) != len(before) || len(after) == 0 || after[len(after)-1]["by"] != "sup-sales" {
		t.Errorf("history before %v\nafter %v", before, after)
	}
	var statuses []map[string]any
	p2.call("GET", "/v1/statuses", "demo-a1", "", &statuses)
	found := false
	for _, s := range statuses {
		found = found || s["id"] == "coaching"
	}
	if !found {
		t.Errorf("custom status lost on restart: %v", statuses)
	}
}
