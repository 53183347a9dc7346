package metrics

import (
	"context"
	"log/slog"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// Calls and Queues are what the floor gauges read at scrape time;
// *routing.Engine satisfies both.
type Calls interface {
	Calls(ctx context.Context, actor presence.Actor, f routing.CallFilter) ([]routing.CallView, error)
	Queues(ctx context.Context, actor presence.Actor) ([]routing.QueueView, error)
}

// Agents lists every agent; *presence.Service satisfies it.
type Agents interface {
	Agents(ctx context.Context) ([]presence.Agent, error)
}

// scrapeTimeout bounds the store reads of one scrape.
const scrapeTimeout = 5 * time.Second

var (
	callsDesc  = prometheus.NewDesc(Namespace+"_calls", "Live calls by state and queue.", []string{"state", "queue"}, nil)
	agentsDesc = prometheus.NewDesc(Namespace+"_agents", "Agents by manual call status, system status and presence.",
		[]string{"call_status", "system_status", "online"}, nil)
	waitingDesc     = prometheus.NewDesc(Namespace+"_queue_waiting_calls", "Inbound calls waiting in the queue (not answered).", []string{"queue"}, nil)
	longestWaitDesc = prometheus.NewDesc(Namespace+"_queue_longest_wait_seconds", "Longest current wait in the queue.", []string{"queue"}, nil)
)

// FloorCollector reads calls, agents and queues from the store at each
// scrape, so the gauges are what GET /v1/calls, /v1/agents and /v1/queues
// would say at that moment.
type FloorCollector struct {
	calls  Calls
	agents Agents
	log    *slog.Logger
}

// Floor registers the floor gauges over calls and agents.
func (m *Metrics) Floor(calls Calls, agents Agents, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	m.reg.MustRegister(&FloorCollector{calls: calls, agents: agents, log: log})
}

// Describe implements prometheus.Collector.
func (f *FloorCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- callsDesc
	ch <- agentsDesc
	ch <- waitingDesc
	ch <- longestWaitDesc
}

// Collect implements prometheus.Collector. A store read that fails leaves
// its series out of this scrape (and is logged) rather than failing it.
func (f *FloorCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if calls, err := f.calls.Calls(ctx, presence.System, routing.CallFilter{}); err != nil {
		f.log.Warn("metrics: read calls", "err", err)
	} else {
		type key struct{ state, queue string }
		n := map[key]int{}
		for _, c := range calls {
			n[key{string(c.State), c.Queue}]++
		}
		for k, v := range n {
			ch <- prometheus.MustNewConstMetric(callsDesc, prometheus.GaugeValue, float64(v), k.state, k.queue)
		}
	}
	if agents, err := f.agents.Agents(ctx); err != nil {
		f.log.Warn("metrics: read agents", "err", err)
	} else {
		type key struct{ call, sys, online string }
		n := map[key]int{}
		for i := range agents {
			a := &agents[i]
			n[key{a.CallStatus, string(a.SystemStatus), strconv.FormatBool(a.Online)}]++
		}
		for k, v := range n {
			ch <- prometheus.MustNewConstMetric(agentsDesc, prometheus.GaugeValue, float64(v), k.call, k.sys, k.online)
		}
	}
	if queues, err := f.calls.Queues(ctx, presence.System); err != nil {
		f.log.Warn("metrics: read queues", "err", err)
	} else {
		for _, q := range queues {
			ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(q.Waiting), q.ID)
			ch <- prometheus.MustNewConstMetric(longestWaitDesc, prometheus.GaugeValue, float64(q.LongestWaitSeconds), q.ID)
		}
	}
}
