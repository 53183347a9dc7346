package reports

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/state"
)

// callEvents is what routing logs for one answered inbound call: arrival,
// ringing, answer (with the agent's status change), end.
func callEvents(i int, start time.Time) []state.Event {
	id, agent := "c"+strconv.Itoa(i), "a"+strconv.Itoa(i%50)
	scope := state.Scope{Queue: "sales", Groups: []string{"sales"}}
	view := func(st routing.CallState, at time.Time, r *routing.CallReport) []byte {
		v := routing.CallView{ID: id, CustomerNumber: "+84900000001", Hotline: "+842800", Queue: "sales", State: st,
			StartedAt: start, Direction: routing.DirectionInbound, Agent: &agent, Report: r}
		r.At = at
		b, _ := json.Marshal(v)
		return b
	}
	ring, ans, end := start.Add(time.Second), start.Add(5*time.Second), start.Add(65*time.Second)
	agentEv := func(at time.Time, from, to string) []byte {
		b, _ := json.Marshal(presence.AgentView{ID: agent, Name: agent, Groups: []string{"sales"}, Distribution: presence.DistApp,
			Changes: []presence.HistoryRow{{At: at, Field: presence.FieldSystemStatus, From: from, To: to, By: "system"}}})
		return b
	}
	ended := &routing.CallReport{EnqueuedAt: start, RingStartedAt: ring, AnsweredAt: &ans}
	endView := routing.CallView{ID: id, CustomerNumber: "+84900000001", Hotline: "+842800", Queue: "sales", State: routing.StateAnswered,
		StartedAt: start, Direction: routing.DirectionInbound, Agent: &agent, AnsweredAt: &ans,
		Ended: &routing.EndedInfo{At: end, Reason: "caller hung up"}, Report: ended}
	ended.At = end
	eb, _ := json.Marshal(endView)
	return []state.Event{
		{Type: routing.EventCall, Scope: scope, Data: view(routing.StateCalling, start, &routing.CallReport{EnqueuedAt: start})},
		{Type: presence.EventAgent, Data: agentEv(ring, "available", "ringing")},
		{Type: routing.EventCall, Scope: scope, Data: view(routing.StateRinging, ring, &routing.CallReport{EnqueuedAt: start, RingStartedAt: ring})},
		{Type: presence.EventAgent, Data: agentEv(ans, "ringing", "talking")},
		{Type: routing.EventCall, Scope: scope, Data: view(routing.StateAnswered, ans, &routing.CallReport{EnqueuedAt: start, RingStartedAt: ring, AnsweredAt: &ans,
			Attempts: []routing.AttemptEnded{{Agent: agent, Kind: routing.OfferRouted, StartedAt: ring, EndedAt: ans, Outcome: routing.OutcomeAnswered}}})},
		{Type: presence.EventAgent, Data: agentEv(end, "talking", "available")},
		{Type: routing.EventCallEnded, Scope: scope, Data: eb},
	}
}

// BenchmarkApplySQLite: projecting the log into SQLite, one op being one
// answered call's seven events; batch-500 is a projector catching up
// (its default batch), batch-7 a live floor where each read finds about
// one call's events (docs/performance.md, Reports).
func BenchmarkApplySQLite(b *testing.B) {
	for _, size := range []int{500, 7} {
		b.Run("batch-"+strconv.Itoa(size), func(b *testing.B) { benchApplySQLite(b, size) })
	}
}

func benchApplySQLite(b *testing.B, size int) {
	d, err := OpenSQLite(context.Background(), filepath.Join(b.TempDir(), "reports.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	start := time.Date(2026, 11, 21, 8, 0, 0, 0, time.UTC)
	var batch []state.Event
	pos, seq := "", 0
	flush := func() {
		if err := d.Apply(context.Background(), pos, "", batch, time.Now()); err != nil {
			b.Fatal(err)
		}
		pos = batch[len(batch)-1].ID
		batch = batch[:0]
	}
	i := 0
	for b.Loop() {
		for _, e := range callEvents(i, start.Add(time.Duration(i)*time.Second)) {
			seq++
			e.ID = strconv.Itoa(seq)
			batch = append(batch, e)
		}
		if len(batch) >= size {
			flush()
		}
		i++
	}
	if len(batch) > 0 {
		flush()
	}
}
