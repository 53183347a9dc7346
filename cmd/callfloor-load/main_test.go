package main

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
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
