// Package metrics exports callfloor's Prometheus metrics (README.md,
// Metrics and profiles).
//
// The core and the adapters know nothing of Prometheus: each package that
// has something to count declares a small Observer interface and takes it
// as a construction option (routing.WithObserver, stream.WithObserver,
// store.WithObserver, webhook.WithObserver, and media.Observer through
// ari, esl and sip WithObserver). This package implements those
// observers, one accessor per package (Metrics.Routing, Metrics.Stream,
// Metrics.Media, …), and adds gauges read at scrape time from the floor
// itself (Metrics.Floor).
//
// Adding series for another package (lease, SIP hardening, reports):
// declare the observer in that package, implement it here in a file of
// its own with an accessor on Metrics whose series are registered on
// m.Registry() (observers.go's webhookObserver is the smallest example),
// and pass it where cmd/callfloor builds the package.
package metrics
