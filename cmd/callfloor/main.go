// Command callfloor runs the contact-center control plane: REST + SSE API,
// dashboard, agent presence, routing, and the configured media path.
//
//	go run ./cmd/callfloor            # bundled demo floor, in-memory store, built-in SIP path
//	CALLFLOOR_CONFIG=floor.yaml CALLFLOOR_REDIS_URL=redis://127.0.0.1:6379/0 callfloor
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/callfloor/callfloor/internal/config"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv, log, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		log.Error("callfloor stopped", "err", err)
		os.Exit(1)
	}
}

// run loads the configuration and serves until ctx ends.
func run(ctx context.Context, getenv func(string) string, log *slog.Logger, out interface{ Write([]byte) (int, error) }) error {
	cfg, err := config.Load(getenv)
	if err != nil {
		return err
	}
	app, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	return app.serve(ctx, func(httpAddr string) {
		printBanner(out, cfg, httpAddr)
	})
}

func printBanner(out interface{ Write([]byte) (int, error) }, cfg config.Config, httpAddr string) {
	store := "in-memory (state is lost on exit; set CALLFLOOR_REDIS_URL to keep it)"
	if cfg.RedisURL != "" {
		store = "redis"
	}
	fmt.Fprintf(out, "callfloor is running\n")
	fmt.Fprintf(out, "  dashboard  http://%s/\n", httpAddr)
	fmt.Fprintf(out, "  API        http://%s/v1/  (contract: http://%s/v1/openapi.json)\n", httpAddr, httpAddr)
	fmt.Fprintf(out, "  config     %s\n", cfg.Source)
	fmt.Fprintf(out, "  store      %s\n", store)
	fmt.Fprintf(out, "  media      %s\n", mediaLine(cfg))
	fmt.Fprintf(out, "  reports    %s (GET /v1/reports/calls|attempts|agents|queues)\n", reportsLine(cfg))
	if toks := cfg.DemoTokens(); len(toks) > 0 {
		fmt.Fprintf(out, "  demo token %s (admin); supervisors demo-sup-sales, demo-sup-support; agents demo-a1..demo-a8\n", toks[0])
		fmt.Fprintf(out, "  try        curl -H 'Authorization: Bearer %s' http://%s/v1/agents\n", toks[0], httpAddr)
	}
}

func mediaLine(cfg config.Config) string {
	switch cfg.Media() {
	case "asterisk":
		return "Asterisk ARI at " + cfg.ARI.URL + " (app " + cfg.ARI.App + ")"
	case "freeswitch":
		return "FreeSWITCH ESL at " + cfg.ESL.Addr
	}
	return "built-in SIP path on " + cfg.SIPAddr + " (UDP+TCP; trunk calls from " + fmt.Sprint(cfg.SIP.TrunkSources) + ")"
}

// reportsLine says where call history and reports are kept.
func reportsLine(cfg config.Config) string {
	if cfg.Reports.URL != "" {
		return "PostgreSQL (CALLFLOOR_REPORTS_URL)"
	}
	return "SQLite " + filepath.Join(cfg.DataDir, "reports.db") + " (set CALLFLOOR_DATA_DIR, or CALLFLOOR_REPORTS_URL for PostgreSQL)"
}
