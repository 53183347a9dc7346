package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/callfloor/callfloor/lease"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/rtpanchor"
	"github.com/callfloor/callfloor/sip"
	"github.com/callfloor/callfloor/state"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
	"github.com/callfloor/callfloor/webhook"
)

// Lease returns the observer of this replica's leases (lease.WithObserver):
// whether it holds each, its token, and how often it lost one.
func (m *Metrics) Lease() func(lease.Status) {
	var mu sync.Mutex
	lost := map[string]int64{}
	return func(s lease.Status) {
		held := 0.0
		if s.Held {
			held = 1
		}
		m.leaseHeld.WithLabelValues(s.Name).Set(held)
		m.leaseToken.WithLabelValues(s.Name).Set(float64(s.Token))
		mu.Lock()
		// Status counts losses since the lease was made; the counter
		// takes the growth since the last report.
		delta := s.Lost - lost[s.Name]
		lost[s.Name] = s.Lost
		mu.Unlock()
		m.leaseLost.WithLabelValues(s.Name).Add(float64(max(delta, 0)))
	}
}

// Stream returns the event hub's observer.
func (m *Metrics) Stream() stream.Observer { return streamObserver{m} }

type streamObserver struct{ m *Metrics }

func (o streamObserver) Subscribers(n int) { o.m.subscribers.Set(float64(n)) }
func (o streamObserver) Delivered(n int)   { o.m.eventsDelivered.Add(float64(n)) }
func (o streamObserver) SlowConsumer()     { o.m.slowConsumers.Inc() }

// Routing returns the routing engine's observer.
func (m *Metrics) Routing() routing.Observer { return routingObserver{m} }

type routingObserver struct{ m *Metrics }

func (o routingObserver) QueueDepth(n int) { o.m.queueDepth.Set(float64(n)) }
func (o routingObserver) WorkDone()        { o.m.work.Inc() }
func (o routingObserver) ConflictRetry()   { o.m.conflictRetries.Inc() }
func (o routingObserver) DispatchPass()    { o.m.dispatchPasses.Inc() }
func (o routingObserver) FactsHeld(n int)  { o.m.factsHeld.Set(float64(n)) }
func (o routingObserver) FactDropped()     { o.m.factsDropped.Inc() }

func (o routingObserver) LoopDelay(d time.Duration) { o.m.loopDelay.Observe(d.Seconds()) }
func (o routingObserver) CallRefused(reason string) { o.m.routingRefused.WithLabelValues(reason).Inc() }

func (o routingObserver) MediaCommand(cmd string, d time.Duration, err error) {
	o.m.mediaLatency.WithLabelValues(cmd).Observe(d.Seconds())
	if err != nil {
		o.m.mediaErrors.WithLabelValues(cmd).Inc()
	}
}

// Media returns the observer of the media path named path ("asterisk",
// "freeswitch", "sip"): its connection state and reconnects.
func (m *Metrics) Media(path string) media.Observer {
	m.mediaConnected.WithLabelValues(path).Set(0)
	m.mediaReconnects.WithLabelValues(path).Add(0)
	return &mediaObserver{m: m, path: path}
}

type mediaObserver struct {
	m     *Metrics
	path  string
	wasUp atomic.Bool
}

func (o *mediaObserver) EventLag(d time.Duration) {
	o.m.mediaEventLag.WithLabelValues(o.path).Set(d.Seconds())
}

func (o *mediaObserver) CallRefused(reason string) {
	o.m.mediaRefused.WithLabelValues(o.path, reason).Inc()
}

func (o *mediaObserver) EventReceived(typ string) {
	o.m.mediaEvents.WithLabelValues(o.path, typ).Inc()
}

func (o *mediaObserver) RequestSent(method string) {
	o.m.mediaRequests.WithLabelValues(o.path, method).Inc()
}

func (o *mediaObserver) Connected(up bool) {
	if !up {
		o.m.mediaConnected.WithLabelValues(o.path).Set(0)
		return
	}
	o.m.mediaConnected.WithLabelValues(o.path).Set(1)
	if o.wasUp.Swap(true) {
		o.m.mediaReconnects.WithLabelValues(o.path).Inc()
	}
}

// Anchor returns the SIP path's media anchor observer.
func (m *Metrics) Anchor() rtpanchor.Observer { return anchorObserver{m} }

type anchorObserver struct{ m *Metrics }

func (o anchorObserver) CallRefused()              { o.m.anchorRefused.Inc() }
func (o anchorObserver) CallsActive(n int)         { o.m.anchoredCalls.Set(float64(n)) }
func (o anchorObserver) FrameLate(_ time.Duration) { o.m.anchorLateTicks.Inc() }

// Store returns the store's observer.
func (m *Metrics) Store() store.Observer { return storeObserver{m} }

type storeObserver struct{ m *Metrics }

func (o storeObserver) Command(op string, d time.Duration) {
	o.m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
}

func (o storeObserver) Appended(evs []state.Event) {
	for i := range evs {
		o.m.eventsAppended.WithLabelValues(evs[i].Type).Inc()
	}
}

// Webhook returns the webhook dispatcher's observer.
func (m *Metrics) Webhook() webhook.Observer { return webhookObserver{m} }

type webhookObserver struct{ m *Metrics }

func (o webhookObserver) Attempted(err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	o.m.webhookAttempts.WithLabelValues(result).Inc()
}

func (o webhookObserver) Finished(state string) { o.m.webhookDeliveries.WithLabelValues(state).Inc() }

// SIPPackets returns the built-in SIP path's packet observer.
func (m *Metrics) SIPPackets() sip.PacketObserver { return sipPacketObserver{m} }

type sipPacketObserver struct{ m *Metrics }

// MalformedPacket counts without the source: a label per address would
// let a flood from many addresses grow the series without bound.
func (o sipPacketObserver) MalformedPacket(string) { o.m.sipMalformed.Inc() }

// Reports returns the reports projector's observer (it satisfies
// reports.Observer; the type is named here so that metrics does not
// import the reports package and its database drivers).
func (m *Metrics) Reports() ReportsObserver { return ReportsObserver{m} }

// ReportsObserver counts what the reports projector does.
type ReportsObserver struct{ m *Metrics }

// Applied counts n events projected.
func (o ReportsObserver) Applied(n int) { o.m.reportsApplied.Add(float64(n)) }

// Gap counts a trimmed-away stretch of the log the projector never saw.
func (o ReportsObserver) Gap() { o.m.reportsGaps.Inc() }
