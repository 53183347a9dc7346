package api_test

import (
	"bytes"
	"context"
	"net/http/httptest"
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
	h := api.New(svc, st).Handler()
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
