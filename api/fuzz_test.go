package api_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/store"
)

// FuzzAgentBodies sends arbitrary bodies to every endpoint that takes
// JSON: the answer is never a 500, a refusal is always API.md's shape,
// and a refused request leaves the agent's stored record untouched.
func FuzzAgentBodies(f *testing.F) {
	for _, s := range []string{
		`{"call_status":"available"}`, `{"chat_status":"available","call_status":"training"}`,
		`{"phone":"+84901000011"}`, `{"groups":["sales","support"]}`, `{"name":""}`,
		`{"id":"x","name":"y"}`, `{"supervisors":["sup-sales"]}`, `{"call_status":null}`,
		`[]`, `"str"`, `{"call_status":{"a":1}}`, "\xff\xfe", `{"a":1}{"b":2}`,
		// The limits: duplicate and case-variant keys, null, control
		// characters, lone surrogates, long names and lists.
		`{"call_status":"available","call_status":"lunch_break"}`, `{"Call_Status":"available"}`, `null`,
		`{"name":"a\u0000b"}`, `{"name":"\ud800"}`, `{"name":"` + strings.Repeat("n", 201) + `"}`,
		`{"id":"s1","name":"x\ty"}`, `{"groups":["sales","sales","support"]}`, `{"supervisors":[]}`,
	} {
		f.Add(uint8(0), []byte(s))
	}
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		f.Fatal(err)
	}
	st := store.NewMemory()
	svc := presence.NewService(st)
	if err := config.Bootstrap(context.Background(), cfg, svc); err != nil {
		f.Fatal(err)
	}
	lim := api.DefaultLimits()
	lim.RequestsPerSecond = 0 // the fuzzer outpaces any budget; 429s would hide the handlers
	h := api.New(svc, st, api.WithLimits(lim)).Handler()
	targets := []struct{ method, path string }{
		{"PUT", "/v1/agents/a1/status"}, {"PATCH", "/v1/agents/a1"}, {"POST", "/v1/agents"},
		{"POST", "/v1/statuses"}, {"POST", "/v1/groups"}, {"PATCH", "/v1/groups/sales"},
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		tg := targets[int(which)%len(targets)]
		before, _ := svc.Agent(context.Background(), "a1")
		req := httptest.NewRequest(tg.method, tg.path, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer demo-admin")
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q → %d %s", tg.method, tg.path, body, rec.Code, rec.Body)
		}
		if rec.Code < 300 {
			// Whatever was accepted is within the input limits.
			agents, _ := svc.Agents(context.Background())
			for _, a := range agents {
				if err := presence.CheckName("name", a.Name, presence.MaxNameLen); err != nil {
					t.Fatalf("%s %s %q stored agent %s with name %q: %v", tg.method, tg.path, body, a.ID, a.Name, err)
				}
			}
			groups, _ := svc.Groups(context.Background(), presence.System)
			for _, g := range groups {
				if err := presence.CheckName("name", g.Name, presence.MaxNameLen); err != nil {
					t.Fatalf("%s %s %q stored group %s with name %q: %v", tg.method, tg.path, body, g.ID, g.Name, err)
				}
			}
		}
		if rec.Code >= 400 {
			if !bytes.Contains(rec.Body.Bytes(), []byte(`"error":{"code":`)) {
				t.Fatalf("refusal not in API.md's shape: %s", rec.Body)
			}
			after, _ := svc.Agent(context.Background(), "a1")
			if after.Version != before.Version {
				t.Fatalf("refused %s %s %q changed a1", tg.method, tg.path, body)
			}
		}
	})
}
