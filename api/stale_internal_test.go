package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestMarkStale(t *testing.T) {
	for in, want := range map[string]string{
		`{"id":"a1"}`:               `{"stale":true,"id":"a1"}`,
		`{}`:                        `{"stale":true}`,
		" {\"x\":[1,2]}\n":          `{"stale":true,"x":[1,2]}`,
		`[{"id":"c1"},{"id":"c2"}]`: `[{"stale":true,"id":"c1"},{"stale":true,"id":"c2"}]`,
		`[]`:                        `[]`,
		`[1,{"a":1}]`:               `[1,{"stale":true,"a":1}]`,
	} {
		got, err := markStale([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("markStale(%q) = %s, %v; want %s", in, got, err, want)
		}
	}
	for _, bad := range []string{``, `"s"`, `12`, `{"a":`, `[{]`} {
		if _, err := markStale([]byte(bad)); err == nil {
			t.Errorf("markStale(%q): no error", bad)
		}
	}
}

// FuzzMarkStale: valid JSON in, valid JSON out, with the mark on objects.
func FuzzMarkStale(f *testing.F) {
	for _, s := range []string{`{"id":"a1"}`, `[{"id":"c1"}]`, `[]`, `{}`, `[1,"x",{"a":{"b":1}}]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := markStale(b)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("markStale(%q) = %q: not JSON", b, out)
		}
		var obj map[string]any
		if json.Unmarshal(out, &obj) == nil && obj["stale"] != true {
			t.Fatalf("markStale(%q) = %q: object without the mark", b, out)
		}
	})
}

// The kept answers stay within staleMaxBytes, the oldest going first, and
// a key put again keeps only its newest answer.
func TestStaleCacheBound(t *testing.T) {
	now := time.Unix(0, 0)
	c := newStaleCache(func() time.Time { return now })
	body := []byte(strings.Repeat("x", staleMaxEntry))
	n := staleMaxBytes/staleMaxEntry + 3
	for i := range n {
		c.put(fmt.Sprint("k", i), body, http.Header{})
	}
	if c.bytes > staleMaxBytes {
		t.Fatalf("%d bytes kept, bound %d", c.bytes, staleMaxBytes)
	}
	if _, ok := c.get("k0"); ok {
		t.Fatal("the oldest answer is still kept past the bound")
	}
	if _, ok := c.get(fmt.Sprint("k", n-1)); !ok {
		t.Fatal("the newest answer was dropped")
	}
	for range 1000 {
		c.put("same", []byte("{}"), http.Header{})
	}
	if len(c.order) > 4*len(c.entries)+64 {
		t.Fatalf("order grew to %d for %d entries", len(c.order), len(c.entries))
	}
}
