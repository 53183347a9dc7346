package main

import (
	"net/http"
	"net/http/pprof"
)

// pprofHandler serves net/http/pprof under /debug/pprof/. It is mounted
// only behind an admin token on the HTTP listener, or on the loopback-only
// debug address (README.md, Metrics and profiles); the package's own
// registration on http.DefaultServeMux is never served.
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// opsListeners are the extra listeners the configuration asks for: the
// metrics address (GET /metrics without a token, for Prometheus) and the
// loopback-only debug address (profiles and metrics).
func (a *app) opsListeners() map[string]http.Handler {
	out := map[string]http.Handler{}
	if a.cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.Handler())
		out[a.cfg.MetricsAddr] = mux
	}
	if a.cfg.DebugAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", a.metrics.Handler())
		mux.Handle("/debug/pprof/", pprofHandler())
		out[a.cfg.DebugAddr] = mux
	}
	return out
}
