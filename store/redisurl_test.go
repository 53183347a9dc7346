package store

import (
	"errors"
	"net"
	"strings"
	"testing"
)

func TestParseRedisURL(t *testing.T) {
	cases := []struct {
		raw    string
		mode   string
		addrs  []string
		master string
		db     int
		user   string
		pass   string
		tls    bool
		redact string
	}{
		{raw: "redis://127.0.0.1:6380/2", mode: modeSingle, db: 2, redact: "redis://127.0.0.1:6380/2"},
		{raw: "rediss://u:p%40ss@h:1", mode: modeSingle, user: "u", pass: "p@ss", redact: "rediss://u:xxxxx@h:1/0"},
		{raw: "redis+sentinel://:s3cret@s1:26379,s2/mymaster/3", mode: modeSentinel,
			addrs: []string{"s1:26379", "s2:26379"}, master: "mymaster", db: 3, pass: "s3cret",
			redact: "redis+sentinel://:xxxxx@s1:26379,s2:26379/mymaster/3"},
		{raw: "rediss+sentinel://s1:1/m?sentinel_password=sp&sentinel_username=su", mode: modeSentinel,
			addrs: []string{"s1:1"}, master: "m", tls: true,
			redact: "rediss+sentinel://s1:1/m/0?sentinel_password=xxxxx&sentinel_username=su"},
		{raw: "redis+cluster://c1:7000,c2:7001,[::1]:7002", mode: modeCluster,
			addrs: []string{"c1:7000", "c2:7001", "[::1]:7002"}, redact: "redis+cluster://c1:7000,c2:7001,[::1]:7002"},
		{raw: "rediss+cluster://user:pw@c1,[::1]", mode: modeCluster, addrs: []string{"c1:6379", "[::1]:6379"},
			user: "user", pass: "pw", tls: true, redact: "rediss+cluster://user:xxxxx@c1:6379,[::1]:6379"},
	}
	for _, c := range cases {
		got, err := parseRedisURL(c.raw)
		if err != nil {
			t.Fatalf("parseRedisURL(%q): %v", c.raw, err)
		}
		if got.mode != c.mode || got.master != c.master || got.db != c.db || got.username != c.user ||
			got.password != c.pass || got.tls != c.tls || strings.Join(got.addrs, " ") != strings.Join(c.addrs, " ") {
			t.Fatalf("parseRedisURL(%q) = %+v", c.raw, got)
		}
		if got.String() != c.redact {
			t.Fatalf("String() = %q, want %q", got.String(), c.redact)
		}
	}
}

func TestParseRedisURLErrors(t *testing.T) {
	for _, raw := range []string{
		"localhost:6379",
		"http://h:1",
		"redis+sentinel://s1:26379",           // no master
		"redis+sentinel://s1:26379/m/x",       // bad db
		"redis+sentinel://s1:26379/m/1/2",     // too long
		"redis+sentinel://s1:26379/m?foo=bar", // unknown option
		"redis+cluster://c1:7000/0",           // clusters have no db
		"redis+cluster://c1:7000?x=1",
		"redis+cluster://",
		"redis+cluster://c1:7000,,c2:7001",
		"redis+cluster://c1:0",
		"redis+cluster://c1:99999",
		"redis+cluster://c1:port",
		"redis+cluster://::1:7000",
		"redis://:hunter2@h:badport",
		"redis://h:1/notadb",
		"redis://h:1/?nope=1",
	} {
		_, err := parseRedisURL(raw)
		if !errors.Is(err, errBadURL) {
			t.Errorf("parseRedisURL(%q) error = %v, want errBadURL", raw, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("error for %q leaks the password: %v", raw, err)
		}
	}
}

// FuzzParseRedisURL: no panics; an accepted URL names usable addresses,
// its redacted form never carries the password and parses back to the
// same target.
func FuzzParseRedisURL(f *testing.F) {
	for _, seed := range []string{
		"", "redis://127.0.0.1:6379/0", "rediss://u:p@h:1/2?dial_timeout=3s", "unix:///tmp/r.sock",
		"redis+sentinel://:pw@s1:26379,s2:26380/mymaster/1?sentinel_password=x",
		"redis+cluster://a:1,b:2,[::1]:3", "rediss+cluster://u:%41@h", "redis+sentinel://[::1]/m",
		"redis+cluster://c@d@e:1", "redis+sentinel://h/m%2F/0",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := parseRedisURL(raw)
		if err != nil {
			if !errors.Is(err, errBadURL) {
				t.Fatalf("error %v does not wrap errBadURL", err)
			}
			return
		}
		redacted := got.String()
		if len(got.password) >= 4 && strings.Contains(redacted, got.password) {
			t.Fatalf("String() %q carries the password %q", redacted, got.password)
		}
		if got.mode == modeSingle {
			return // go-redis's ParseURL owns these
		}
		if len(got.addrs) == 0 {
			t.Fatalf("%q: accepted without addresses", raw)
		}
		for _, a := range got.addrs {
			if _, _, err := net.SplitHostPort(a); err != nil {
				t.Fatalf("%q: address %q: %v", raw, a, err)
			}
		}
		back, err := parseRedisURL(redacted)
		if err != nil {
			t.Fatalf("redacted %q of %q does not parse: %v", redacted, raw, err)
		}
		if back.mode != got.mode || back.master != got.master || back.db != got.db || back.username != got.username ||
			strings.Join(back.addrs, ",") != strings.Join(got.addrs, ",") || back.tls != got.tls {
			t.Fatalf("round trip of %q via %q: %+v != %+v", raw, redacted, back, got)
		}
	})
}
