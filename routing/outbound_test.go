package routing_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
)

func TestOutboundClickToCall(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addGroup("sales")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addAgent("a2", presence.RoleAgent)
	f.addQueue("main", routing.LongestIdle, 0, []string{"sales"}, "+842800")
	me := f.actor("a1")
	if _, err := f.eng.Originate(f.ctx, me, "a1", "0901", ""); !errors.Is(err, presence.ErrUnprocessable) {
		t.Fatalf("bad number: %v", err)
	}
	if _, err := f.eng.Originate(f.ctx, me, "a2", "+84901000009", ""); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("calling for someone else: %v", err)
	}
	c, err := f.eng.Originate(f.ctx, me, "a1", "+84901000009", "renewals")
	if err != nil {
		t.Fatal(err)
	}
	if c.Direction != "outbound" || c.Campaign == nil || *c.Campaign != "renewals" || c.State != routing.StateRinging || *c.Agent != "a1" {
		t.Fatalf("call = %+v", c)
	}
	f.wantSys("a1", presence.SysRinging)
	agentDial, _ := f.media.DialOf("a1")
	if agentDial.Dial.Number != "" || agentDial.Dial.CallerID != "+84901000009" {
		t.Fatalf("agent dial = %+v", agentDial.Dial)
	}
	if _, err := f.eng.Originate(f.ctx, me, "a1", "+84901000008", ""); !errors.Is(err, presence.ErrConflict) {
		t.Fatalf("second outbound while ringing: %v", err)
	}
	f.answer(agentDial.Result)
	f.wantSys("a1", presence.SysRinging) // the customer's phone rings now
	ds := f.media.Dials()
	custDial := ds[len(ds)-1]
	// The customer sees the hotline of the agent's queue, so a call-back
	// reaches the floor.
	if custDial.Dial.Number != "+84901000009" || custDial.Dial.CallerID != "+842800" {
		t.Fatalf("customer dial = %+v", custDial.Dial)
	}
	if s := f.stats("", ""); s.Agents.Outbound != 1 || s.Waiting != 0 {
		t.Fatalf("stats while ringing out: %+v", s)
	}
	f.answer(custDial.Result)
	f.wantCall(c.ID, routing.StateAnswered, "a1")
	f.wantSys("a1", presence.SysTalking)
	if con := f.media.Ops("connect"); len(con) != 1 || con[0].Leg != agentDial.Result || con[0].Other != custDial.Result {
		t.Fatalf("connect = %+v", con)
	}
	f.ended(custDial.Result, media.CauseNormal)
	f.wantGone(c.ID)
	f.wantSys("a1", presence.SysAvailable)
	if !f.media.HungUp(agentDial.Result) {
		t.Fatal("agent leg not hung up")
	}
}

func TestOutboundCustomerNoAnswer(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	c, err := f.eng.Originate(f.ctx, f.admin, "a1", "+84901000009", "")
	if err != nil {
		t.Fatal(err)
	}
	f.answer(f.legOf("a1"))
	f.advance(45 * time.Second)
	f.wantGone(c.ID)
	f.wantSys("a1", presence.SysAvailable) // no RONA for the agent's own call
	ended := f.events(routing.EventCallEnded)
	if r := ended[len(ended)-1]["ended"].(map[string]any)["reason"]; r != "the customer did not answer (no_answer)" {
		t.Fatalf("reason = %v", r)
	}
}

func TestOutboundMediaUnavailable(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.media.Fail = func(c routingtest.Command) error {
		if c.Op == "dial" {
			return media.ErrMediaUnavailable
		}
		return nil
	}
	if _, err := f.eng.Originate(f.ctx, f.admin, "a1", "+84901000009", ""); !errors.Is(err, media.ErrMediaUnavailable) {
		t.Fatalf("err = %v, want ErrMediaUnavailable", err)
	}
	f.wantSys("a1", presence.SysAvailable)
	if calls, _ := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{}); len(calls) != 0 {
		t.Fatalf("calls left behind: %+v", calls)
	}
}

// Every call change is one Tx: the call event carries the same JSON as
// GET, scoped to the queue and its groups, and the agent event is beside it.
func TestEventsMatchViews(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addGroup("sales")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addQueue("main", routing.LongestIdle, 0, []string{"sales"})
	id, _ := f.arrive("+84901000001", "+842800")
	f.answer(f.legOf("a1"))
	evs, err := f.st.ReadAfter(f.ctx, "", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var lastCall, prev string
	for i, e := range evs {
		if e.Type == routing.EventCall {
			// Events add "report" (for the reports projection); the rest
			// is the GET's JSON byte for byte.
			var v routing.CallView
			if err := json.Unmarshal(e.Data, &v); err != nil || v.Report == nil {
				t.Fatalf("call event without report: %s (%v)", e.Data, err)
			}
			v.Report = nil
			b, _ := json.Marshal(v)
			lastCall = string(b)
			if e.Scope.Queue != "main" || len(e.Scope.Groups) != 1 || e.Scope.Groups[0] != "sales" {
				t.Fatalf("call event scope = %+v", e.Scope)
			}
			if i > 0 {
				prev = evs[i-1].Type
			}
		}
	}
	if prev != presence.EventAgent {
		t.Fatalf("the answer's call event is not committed with the agent change (previous event %q)", prev)
	}
	want, _ := json.Marshal(f.call(id))
	if lastCall != string(want) {
		t.Fatalf("event data\n%s\n!= GET\n%s", lastCall, want)
	}
	// Queue views follow the calls: waiting 1 on arrival, then answered.
	qevs := f.events(routing.EventQueue)
	sawWaiting := false
	for _, q := range qevs {
		if q["id"] == "main" && q["waiting"] == 1.0 {
			sawWaiting = true
		}
	}
	last := qevs[len(qevs)-1]
	if !sawWaiting || last["waiting"] != 0.0 || last["answered_today"] != 1.0 {
		t.Fatalf("queue events = %v", qevs)
	}
}

// blockingMedia never answers a Dial until its context ends.
type blockingMedia struct{ routingtest.Media }

func (b *blockingMedia) Dial(ctx context.Context, _ media.DialRequest) (media.LegID, error) {
	<-ctx.Done()
	return "", fmt.Errorf("dial: %w: %w", media.ErrMediaUnavailable, ctx.Err())
}

// A wedged media command times out instead of holding the call's loop.
func TestWedgedMediaCommandTimesOut(t *testing.T) {
	f := newFloor(t, nil, time.Time{}, routing.WithMediaTimeout(50*time.Millisecond))
	f.addAgent("a1", presence.RoleAgent)
	f.eng.SetMedia(&blockingMedia{})
	if _, err := f.eng.Originate(f.ctx, f.admin, "a1", "+84901000009", ""); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want the media deadline", err)
	}
	f.wantSys("a1", presence.SysAvailable)
}

// An outbound call shows the hotline presented to the customer and the
// queue it belongs to; once the customer answers its state time is talk
// time (state_since = the answer), and the agent takes no queue wrap-up.
func TestOutboundShowsHotlineQueueAndTalkTime(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addGroup("sales")
	f.addAgent("a1", presence.RoleAgent, "sales")
	f.addQueue("main", routing.LongestIdle, 30, []string{"sales"}, "+842800")
	c, err := f.eng.Originate(f.ctx, f.actor("a1"), "a1", "+84901000009", "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Hotline != "+842800" || c.Queue != "main" {
		t.Fatalf("outbound call shows hotline %q queue %q, want +842800 main", c.Hotline, c.Queue)
	}
	f.advance(5 * time.Second)
	f.answer(f.legOf("a1"))
	f.advance(7 * time.Second)
	ds := f.media.Dials()
	cust := ds[len(ds)-1]
	if cust.Dial.CallerID != "+842800" {
		t.Fatalf("customer sees %q, want the hotline shown on the call", cust.Dial.CallerID)
	}
	f.answer(cust.Result)
	answeredAt := f.clock.Now()
	f.advance(20 * time.Second)
	v := f.wantCall(c.ID, routing.StateAnswered, "a1")
	if !v.StateSince.Equal(answeredAt) || v.StateSeconds != 20 || v.Hotline != "+842800" || v.Queue != "main" {
		t.Fatalf("answered outbound call = %+v; want state_since %v (talk time 20 s) on +842800 / main", v, answeredAt)
	}
	evs := f.events(routing.EventCall)
	if last := evs[len(evs)-1]; last["hotline"] != "+842800" || last["queue"] != "main" {
		t.Fatalf("last call event = %v", last)
	}
	// Visible to the queue: GET /v1/calls?queue=main lists it.
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{Queue: "main"})
	if err != nil || len(calls) != 1 || calls[0].ID != c.ID {
		t.Fatalf("calls in main = %+v, %v", calls, err)
	}
	f.ended(cust.Result, media.CauseNormal)
	f.wantGone(c.ID)
	f.wantSys("a1", presence.SysAvailable)
	if q, err := f.eng.Queue(f.ctx, f.admin, "main"); err != nil || q.AnsweredToday != 0 || q.AbandonedToday != 0 {
		t.Fatalf("queue counters after an outbound call = %+v, %v", q, err)
	}
}

// "Available after outdial": yes → the agent is available after an
// outbound call even if they dialled from a not-available status; no →
// they keep the status they had.
func TestAvailableAfterOutdial(t *testing.T) {
	for _, c := range []struct {
		setting bool
		from    string
		want    string
	}{
		{true, presence.StatusLunchBreak, presence.StatusAvailable},
		{false, presence.StatusLunchBreak, presence.StatusLunchBreak},
		{true, presence.StatusAvailable, presence.StatusAvailable},
		{false, presence.StatusAvailable, presence.StatusAvailable},
	} {
		t.Run(fmt.Sprintf("%v from %s", c.setting, c.from), func(t *testing.T) {
			f := newFloor(t, nil, time.Time{})
			f.addAgent("a1", presence.RoleAgent)
			if _, err := f.agents.UpdateSettings(f.ctx, f.admin, presence.SettingsInput{AvailableAfterOutdial: &c.setting}); err != nil {
				t.Fatal(err)
			}
			f.setStatus("a1", c.from)
			since := f.agent("a1").StatusSince
			f.advance(time.Minute)
			call, err := f.eng.Originate(f.ctx, f.actor("a1"), "a1", "+84901000009", "")
			if err != nil {
				t.Fatal(err)
			}
			f.answer(f.legOf("a1"))
			ds := f.media.Dials()
			cust := ds[len(ds)-1].Result
			f.answer(cust)
			f.advance(time.Minute)
			f.ended(cust, media.CauseNormal)
			f.wantGone(call.ID)
			a := f.agent("a1")
			if a.CallStatus != c.want || a.SystemStatus != presence.SysAvailable {
				t.Fatalf("after the outbound call: %s / %s, want %s / available", a.CallStatus, a.SystemStatus, c.want)
			}
			if c.want == c.from && !a.StatusSince.Equal(since) {
				t.Fatalf("status_since moved from %v to %v though the status was kept", since, a.StatusSince)
			}
			if c.want != c.from {
				h, err := f.agents.History(f.ctx, f.admin, "a1", time.Time{}, time.Time{})
				if err != nil {
					t.Fatal(err)
				}
				last := h[len(h)-1]
				if last.Field != presence.FieldCallStatus || last.From != c.from || last.To != c.want || last.By != presence.BySystem {
					t.Fatalf("last history row = %+v", last)
				}
			}
		})
	}
}

// Click-to-call numbers are accepted as entered in the account's market
// and dialled in E.164; anything else is a 422 naming "number".
func TestOriginateNumberAsEntered(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.agents = presence.NewService(f.st, presence.WithClock(f.clock.Now), presence.WithDefaultRegion("VN"))
	f.restart()
	f.addAgent("a1", presence.RoleAgent)
	f.addAgent("a2", presence.RoleAgent)
	for _, bad := range []string{"12345", "901000009", "+84", "call me"} {
		_, err := f.eng.Originate(f.ctx, f.admin, "a1", bad, "")
		var fe *presence.FieldError
		if !errors.As(err, &fe) || fe.Field != "number" || !errors.Is(err, presence.ErrUnprocessable) {
			t.Fatalf("Originate(%q) = %v, want a 422 naming number", bad, err)
		}
	}
	for agent, entered := range map[string]string{"a1": "0901 000 009", "a2": "84901000008"} {
		c, err := f.eng.Originate(f.ctx, f.admin, agent, entered, "")
		if err != nil {
			t.Fatalf("Originate(%q): %v", entered, err)
		}
		f.answer(f.legOf(agent))
		ds := f.media.Dials()
		if got := ds[len(ds)-1].Dial.Number; got != c.CustomerNumber || got[0] != '+' || !presence.ValidE164(got) {
			t.Fatalf("%q dialled as %q, call shows %q; want the same E.164 number", entered, got, c.CustomerNumber)
		}
	}
}

// The setting applies once the agent picked up their outbound call, even
// if the customer did not answer; an agent who never picked up their own
// device keeps their status.
func TestAvailableAfterOutdialUnansweredCalls(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	on := true
	if _, err := f.agents.UpdateSettings(f.ctx, f.admin, presence.SettingsInput{AvailableAfterOutdial: &on}); err != nil {
		t.Fatal(err)
	}
	f.setStatus("a1", presence.StatusLunchBreak)
	if _, err := f.eng.Originate(f.ctx, f.actor("a1"), "a1", "+84901000009", ""); err != nil {
		t.Fatal(err)
	}
	f.ended(f.legOf("a1"), media.CauseNoAnswer) // a1 never picked up their own device
	if a := f.agent("a1"); a.CallStatus != presence.StatusLunchBreak || a.SystemStatus != presence.SysAvailable {
		t.Fatalf("after an outbound call a1 never picked up: %s / %s, want lunch_break / available", a.CallStatus, a.SystemStatus)
	}
	if _, err := f.eng.Originate(f.ctx, f.actor("a1"), "a1", "+84901000009", ""); err != nil {
		t.Fatal(err)
	}
	f.answer(f.legOf("a1"))
	ds := f.media.Dials()
	f.ended(ds[len(ds)-1].Result, media.CauseNoAnswer) // the customer does not answer
	if a := f.agent("a1"); a.CallStatus != presence.StatusAvailable || a.SystemStatus != presence.SysAvailable {
		t.Fatalf("after an outbound call the customer missed: %s / %s, want available / available", a.CallStatus, a.SystemStatus)
	}
}

// TestClickToCallRefusedByMediaPath: a path that cannot bridge two dialled
// legs refuses click-to-call before anything rings or is stored.
func TestClickToCallRefusedByMediaPath(t *testing.T) {
	f := newFloor(t, nil, time.Time{})
	f.addAgent("a1", presence.RoleAgent)
	f.media.Caps = media.Capabilities{Path: media.PathSIP, Unsupported: map[media.Action]string{
		media.ActionClickToCall: "click-to-call needs a media server"}}
	_, err := f.eng.Originate(f.ctx, f.admin, "a1", "+84901234567", "")
	if !errors.Is(err, media.ErrNotSupported) {
		t.Fatalf("Originate = %v, want ErrNotSupported", err)
	}
	if n := len(f.media.Commands()); n != 0 {
		t.Fatalf("%d media commands for a refused click-to-call", n)
	}
	calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
	if err != nil || len(calls) != 0 {
		t.Fatalf("calls after a refused click-to-call: %v, %v", calls, err)
	}
	f.wantSys("a1", presence.SysAvailable)
}
