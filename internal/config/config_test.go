package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// TestDemoFloorLoads: the bundled file is what an unset CALLFLOOR_CONFIG
// loads, and it is the floor issue 2 describes.
func TestDemoFloorLoads(t *testing.T) {
	cfg, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:8080" || cfg.SIPAddr != "127.0.0.1:5060" || cfg.RedisURL != "" || cfg.Media() != "sip" {
		t.Errorf("defaults: %+v", cfg)
	}
	if len(cfg.Agents) != 11 || len(cfg.Groups) != 2 || len(cfg.Queues) != 2 || len(cfg.Statuses) != 1 {
		t.Errorf("floor size: %d agents, %d groups, %d queues, %d statuses", len(cfg.Agents), len(cfg.Groups), len(cfg.Queues), len(cfg.Statuses))
	}
	tokens := map[string]string{}
	for _, a := range cfg.Agents {
		tokens[a.ID] = a.Token
	}
	for id, tok := range map[string]string{"admin": "demo-admin", "sup-sales": "demo-sup-sales", "sup-support": "demo-sup-support", "a1": "demo-a1", "a8": "demo-a8"} {
		if tokens[id] != tok {
			t.Errorf("token of %s = %q, want %q", id, tokens[id], tok)
		}
	}
	if pw := cfg.SIPPasswords()["a3"].Password; pw != "sip-a3" {
		t.Errorf("a3 SIP password = %q", pw)
	}
	if cfg.Queues[0].Hotlines[0] != "+842873000001" || cfg.Queues[1].Strategy != "longest_idle" {
		t.Errorf("queues: %+v", cfg.Queues)
	}
}

func TestEnvOverridesFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "floor.yaml")
	if err := os.WriteFile(path, []byte("http_addr: 0.0.0.0:9000\ntimezone: Europe/Paris\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(env(map[string]string{
		EnvConfig: path, EnvHTTPAddr: "127.0.0.1:9999", EnvRedisURL: "redis://127.0.0.1:6379/0",
		EnvTimezone: "Asia/Ho_Chi_Minh", EnvARIURL: "http://127.0.0.1:8088/ari",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.HTTPAddr != "127.0.0.1:9999" || cfg.RedisURL != "redis://127.0.0.1:6379/0" || cfg.Timezone != "Asia/Ho_Chi_Minh" {
		t.Errorf("env did not override: %+v", cfg)
	}
	if cfg.Media() != "asterisk" || cfg.ARI.App != "callfloor" {
		t.Errorf("media = %s app = %s", cfg.Media(), cfg.ARI.App)
	}
	if cfg.Location().String() != "Asia/Ho_Chi_Minh" {
		t.Errorf("location %s", cfg.Location())
	}
}

func TestBadConfigIsReported(t *testing.T) {
	cases := map[string]string{
		"unknown key":           "http_adr: 127.0.0.1:1\n",
		"unknown nested":        "agents:\n  - {id: a1, nmae: x}\n",
		"bad zone":              "timezone: Mars/Olympus\n",
		"bad addr":              "http_addr: nonsense\n",
		"bad metrics addr":      "metrics_addr: nonsense\n",
		"remote debug":          "debug_addr: 10.0.0.1:6060\n",
		"wildcard debug":        "debug_addr: 0.0.0.0:6060\n",
		"two media":             "ari: {url: http://x}\nesl: {addr: 127.0.0.1:8021}\n",
		"duplicate agent":       "agents:\n  - {id: a1}\n  - {id: a1}\n",
		"token and digest":      "agents:\n  - {id: a1, token: abcdefgh, token_sha256: ab}\n",
		"not yaml":              "agents: [\n",
		"short session":         "sip: {session_expires_seconds: 30}\n",
		"negative contacts age": "ari: {url: http://x, contacts_max_age_seconds: -1}\n",
		"negative loop delay":   "max_loop_delay_ms: -5\n",
	}
	for name, body := range cases {
		path := filepath.Join(t.TempDir(), "c.yaml")
		_ = os.WriteFile(path, []byte(body), 0o600)
		_, err := Load(env(map[string]string{EnvConfig: path}))
		if err == nil {
			t.Errorf("%s: loaded without error", name)
			continue
		}
		if !strings.Contains(err.Error(), path) {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	if _, err := Load(env(map[string]string{EnvConfig: "/nonexistent/c.yaml"})); err == nil {
		t.Error("missing file loaded")
	}
}

func TestEmptyFileIsDefaults(t *testing.T) {
	path := filepath.Join(t.TempDir(), "empty.yaml")
	_ = os.WriteFile(path, nil, 0o600)
	cfg, err := Load(env(map[string]string{EnvConfig: path}))
	if err != nil || cfg.HTTPAddr != "127.0.0.1:8080" || len(cfg.Agents) != 0 {
		t.Fatalf("%+v %v", cfg, err)
	}
}

// max_loop_delay_ms: unset takes routing's default, -1 turns refusals
// off, a number is milliseconds.
func TestMaxLoopDelay(t *testing.T) {
	const def = 250 * time.Millisecond
	for body, want := range map[string]time.Duration{
		"":                         def,
		"max_loop_delay_ms: -1\n":  0,
		"max_loop_delay_ms: 400\n": 400 * time.Millisecond,
	} {
		path := filepath.Join(t.TempDir(), "c.yaml")
		_ = os.WriteFile(path, []byte(body), 0o600)
		cfg, err := Load(env(map[string]string{EnvConfig: path}))
		if err != nil {
			t.Fatalf("%q: %v", body, err)
		}
		if got := cfg.MaxLoopDelay(def); got != want {
			t.Errorf("%q: MaxLoopDelay = %v, want %v", body, got, want)
		}
	}
}

func TestIsLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:8080": true, "[::1]:80": true, "localhost:1": true, "127.1.2.3:9": true,
		"0.0.0.0:8080": false, ":8080": false, "10.0.0.1:80": false, "bad": false,
	} {
		if got := IsLoopback(addr); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
