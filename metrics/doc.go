// Package metrics exports callfloor's Prometheus metrics (README.md,
// Metrics and profiles).
//
// The core and the adapters know nothing of Prometheus: each package that
// has something to count declares a small Observer interface and takes it
// as a construction option (routing.WithObserver, stream.WithObserver,
// store.WithObserver, webhook.WithObserver, the media paths'
// observers). This package implements those observers, one adapter
// method per package (Metrics.Routing, Metrics.Stream, …), and adds the
// gauges read at scrape time from the floor itself (FloorCollector).
//
// Adding a series for another package: declare the observer in that
// package, add a file here with a type implementing it over m.Registry()
// (see webhook.go for the smallest example) and an accessor on Metrics,
// and pass it where cmd/callfloor builds the package.
package metrics
