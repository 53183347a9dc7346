package api_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/webhook"
)

// TestWebhooksEndToEnd: an admin registers a loopback receiver over the
// API, an agent status change is delivered signed, and the delivery shows
// up under /deliveries; non-admins and bad input get API.md errors.
func TestWebhooksEndToEnd(t *testing.T) {
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	svc := presence.NewService(st, presence.WithLocation(cfg.Location()))
	if err := config.Bootstrap(context.Background(), cfg, svc); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(svc, st, api.WithRoutes(api.WebhookRoutes(webhook.NewRegistry(st, st)))).Handler())
	defer srv.Close()

	var mu sync.Mutex
	var secret string
	got := make(chan string, 10)
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Now(), time.Minute)
		mu.Unlock()
		if err != nil {
			t.Errorf("signature: %v", err)
		}
		got <- string(body)
	}))
	defer rcv.Close()

	call := func(method, path, token, body string) (int, []byte) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, b
	}
	for _, tc := range []struct {
		token, body, code string
		status            int
	}{
		{"demo-sup-sales", `{"url":"` + rcv.URL + `"}`, "forbidden", 403},
		{"demo-admin", `{"url":"ftp://x.example/"}`, "invalid_url", 400},
		{"demo-admin", `{"url":"` + rcv.URL + `","types":["nope"]}`, "invalid_types", 400},
		{"demo-admin", `{"url":"` + rcv.URL + `","colour":"red"}`, "unknown_field", 400},
	} {
		status, body := call("POST", "/v1/webhooks", tc.token, tc.body)
		var e struct{ Error struct{ Code string } }
		_ = json.Unmarshal(body, &e)
		if status != tc.status || e.Error.Code != tc.code {
			t.Errorf("%s %s: %d %s, want %d %s", tc.token, tc.body, status, body, tc.status, tc.code)
		}
	}

	status, body := call("POST", "/v1/webhooks", "demo-admin", `{"url":"`+rcv.URL+`/crm","types":["agent"]}`)
	var hook webhook.Hook
	if err := json.Unmarshal(body, &hook); err != nil || status != 201 || hook.Secret == "" {
		t.Fatalf("create: %d %s", status, body)
	}
	mu.Lock()
	secret = hook.Secret
	mu.Unlock()
	if status, body := call("GET", "/v1/webhooks/"+hook.ID, "demo-admin", ""); status != 200 || strings.Contains(string(body), hook.Secret) {
		t.Fatalf("get: %d %s (must not show the secret)", status, body)
	}

	d := webhook.NewDispatcher(st, st, lease.New(st, webhook.LeaseName), webhook.WithFlushInterval(10*time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		if _, err := st.Get(ctx, "meta", "webhook-dispatcher"); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dispatcher did not start")
		}
	}
	if status, body := call("PUT", "/v1/agents/a1/status", "demo-a1", `{"call_status":"lunch_break"}`); status != 200 {
		t.Fatalf("status change: %d %s", status, body)
	}
	select {
	case b := <-got:
		if !strings.Contains(b, `"type":"agent"`) || !strings.Contains(b, `"lunch_break"`) {
			t.Fatalf("delivered %s", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no delivery")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		status, body := call("GET", "/v1/webhooks/"+hook.ID+"/deliveries", "demo-admin", "")
		var ds []webhook.Delivery
		_ = json.Unmarshal(body, &ds)
		if status == 200 && len(ds) == 1 && ds[0].State == "delivered" && ds[0].Attempts == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("deliveries: %d %s", status, body)
		}
	}
	if status, _ := call("GET", "/v1/webhooks/"+hook.ID+"/deliveries", "demo-a1", ""); status != 403 {
		t.Fatalf("agent reads deliveries: %d", status)
	}
	if status, _ := call("DELETE", "/v1/webhooks/"+hook.ID, "demo-admin", ""); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	if status, _ := call("GET", "/v1/webhooks/"+hook.ID+"/deliveries", "demo-admin", ""); status != 404 {
		t.Fatalf("deliveries of a deleted hook: %d", status)
	}
}
