package metrics

import (
	"net/http"

	"github.com/callfloor/callfloor/routing"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every series this package defines.
const Namespace = "callfloor"

// latencyBuckets (seconds) span an in-memory store operation (µs) to a
// media command that waits on a remote server (seconds).
var latencyBuckets = []float64{
	0.00001, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// Metrics holds one process's registry and the series every observer
// feeds. Create it with New.
type Metrics struct {
	reg *prometheus.Registry

	eventsAppended  *prometheus.CounterVec
	eventsDelivered prometheus.Counter
	subscribers     prometheus.Gauge
	slowConsumers   prometheus.Counter

	queueDepth      prometheus.Gauge
	work            prometheus.Counter
	conflictRetries prometheus.Counter
	dispatchPasses  prometheus.Counter
	loopDelay       prometheus.Histogram
	routingRefused  *prometheus.CounterVec
	factsHeld       prometheus.Gauge
	factsDropped    prometheus.Counter

	storeLatency *prometheus.HistogramVec

	webhookAttempts   *prometheus.CounterVec
	webhookDeliveries *prometheus.CounterVec

	mediaConnected  *prometheus.GaugeVec
	mediaReconnects *prometheus.CounterVec
	mediaEventLag   *prometheus.GaugeVec
	mediaRefused    *prometheus.CounterVec
	mediaEvents     *prometheus.CounterVec
	mediaRequests   *prometheus.CounterVec
	mediaLatency    *prometheus.HistogramVec
	mediaErrors     *prometheus.CounterVec

	reportsApplied prometheus.Counter
	reportsGaps    prometheus.Counter

	sipMalformed prometheus.Counter

	leaseHeld       *prometheus.GaugeVec
	leaseToken      *prometheus.GaugeVec
	leaseLost       *prometheus.CounterVec
	anchoredCalls   prometheus.Gauge
	anchorRefused   prometheus.Counter
	anchorLateTicks prometheus.Counter
}

// New builds the registry with the Go runtime and process collectors and
// every series of the observers in this package.
func New() *Metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &Metrics{reg: reg}
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	gauge := func(name, help string) prometheus.Gauge {
		g := prometheus.NewGauge(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help})
		reg.MustRegister(g)
		return g
	}
	counterVec := func(name, help string, labels ...string) *prometheus.CounterVec {
		c := prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		reg.MustRegister(c)
		return c
	}
	histogramVec := func(name, help string, labels ...string) *prometheus.HistogramVec {
		h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: Namespace, Name: name, Help: help, Buckets: latencyBuckets}, labels)
		reg.MustRegister(h)
		return h
	}

	m.eventsAppended = counterVec("events_appended_total", "Events this process appended to the event log, by event type.", "type")
	m.eventsDelivered = counter("events_delivered_total", "Events handed to event-stream subscribers (one per subscriber and event).")
	m.subscribers = gauge("sse_clients", "Event-stream subscribers attached to this process (SSE clients plus the stats publisher).")
	m.slowConsumers = counter("sse_slow_consumers_total", "Event-stream subscribers cut off because they fell too far behind.")

	m.queueDepth = gauge("routing_queue_depth", "Work queued or running on the routing engine's ordered loops.")
	m.work = counter("routing_work_total", "Work items the routing engine's loops finished.")
	m.conflictRetries = counter("routing_conflict_retries_total", "Call changes retried because a record changed between read and commit.")
	m.dispatchPasses = counter("routing_dispatch_passes_total", "Distribution passes over every queue.")
	m.loopDelay = prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: Namespace, Name: "routing_loop_delay_seconds",
		Help: "How long each item (fact, action, offer, pass) waited on the routing engine's ordered loops before it ran.", Buckets: latencyBuckets})
	reg.MustRegister(m.loopDelay)
	m.routingRefused = counterVec("routing_calls_refused_total", "New calls routing turned away because its loops ran later than max_loop_delay_ms, by reason.", "reason")
	m.routingRefused.WithLabelValues(routing.ReasonOverload).Add(0) // scraped as 0 before the first
	m.factsHeld = gauge("routing_facts_held", "Media facts waiting, in order, for the store to answer again.")
	m.factsDropped = counter("routing_facts_dropped_total", "Media facts dropped because more were held for the store than routing.held_facts allows.")

	m.storeLatency = histogramVec("store_command_seconds", "Store command latency: Redis commands by name, in-memory operations by method.", "op")

	m.webhookAttempts = counterVec("webhook_attempts_total", "Webhook POST attempts by result (ok, error).", "result")
	m.webhookDeliveries = counterVec("webhook_deliveries_total", "Webhook deliveries that ended, by state (delivered, failed).", "state")

	m.mediaConnected = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "media_connected",
		Help: "1 while the media path is connected to its server (Asterisk, FreeSWITCH) or listening (built-in SIP path)."}, []string{"path"})
	reg.MustRegister(m.mediaConnected)
	m.mediaReconnects = counterVec("media_reconnects_total", "Connections to the media server re-established after a loss.", "path")
	m.mediaEventLag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: "media_event_lag_seconds",
		Help: "How long after the media server emitted its last event the path handled it."}, []string{"path"})
	reg.MustRegister(m.mediaEventLag)
	m.mediaRefused = counterVec("media_calls_refused_total", "New calls the media path turned away to protect the media server, by reason.", "path", "reason")
	m.mediaEvents = counterVec("media_events_total", "Events the media path read from its server, by type (Asterisk: ARI event types).", "path", "type")
	m.mediaRequests = counterVec("media_requests_total", "Requests the media path sent to its server (Asterisk: ARI REST requests), by method.", "path", "method")
	m.mediaLatency = histogramVec("media_command_seconds", "Latency of the commands routing sends to the media path, by command.", "command")
	m.reportsApplied = counter("reports_events_projected_total", "Events the reports projector wrote to the reports database.")
	m.reportsGaps = counter("reports_gaps_total", "Times the event log was trimmed past the reports projector's position (events never projected).")
	m.mediaErrors = counterVec("media_command_errors_total", "Media commands that failed, by command.", "command")
	m.sipMalformed = counter("sip_malformed_packets_total", "Packets the built-in SIP path dropped because they do not parse as SIP.")

	gaugeVec := func(name, help string, labels ...string) *prometheus.GaugeVec {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
		reg.MustRegister(g)
		return g
	}
	m.leaseHeld = gaugeVec("lease_held", "1 while this replica holds the lease (floor, webhooks, media:…) and does its work.", "lease")
	m.leaseToken = gaugeVec("lease_token", "Fencing token of this replica's current or last term of the lease.", "lease")
	m.leaseLost = counterVec("lease_lost_total", "Terms of the lease this replica lost without releasing it (expired, taken over, store unreachable).", "lease")
	m.anchoredCalls = gauge("sip_anchored_calls", "Calls whose audio the built-in SIP path carries right now.")
	m.anchorRefused = counter("sip_anchored_calls_refused_total", "Calls refused (SIP 503) at the cap of concurrent anchored calls.")
	m.anchorLateTicks = counter("sip_media_late_ticks_total", "20 ms mixing ticks whose frames went out after their deadline (the media anchor is overloaded).")
	return m
}

// Registry is where other packages' collectors are registered (see the
// package documentation).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
