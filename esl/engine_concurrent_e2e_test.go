package esl

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
)

// TestE2EConcurrentCalls: three callers at once, three agents: every
// command is answered on the one connection in order (replies FIFO), each
// call gets its own agent and bridge, and all end cleanly.
func TestE2EConcurrentCalls(t *testing.T) {
	f := newE2E(t)
	agents := []string{"a1", "a2", "a3"}
	for _, a := range agents {
		f.fs.setBehavior(dev(a), dialRing)
	}
	f.available(agents...)
	for n := 1; n <= 3; n++ {
		f.fs.inbound(custUUID(n), caller, hotline)
	}
	f.eventually("three agents rung", func() error {
		if n := strings.Count(strings.Join(f.fs.snapshotCommands(), "\n"), "bgapi originate"); n != 3 {
			return fmt.Errorf("%d originates", n)
		}
		return nil
	})
	for n := 1; n <= 3; n++ {
		f.fs.answerLeg(legUUID(n))
	}
	f.eventually("three calls answered", func() error {
		calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{State: string(routing.StateAnswered)})
		if err != nil {
			return err
		}
		var who []string
		for _, c := range calls {
			who = append(who, *c.Agent)
		}
		slices.Sort(who)
		if !slices.Equal(who, agents) {
			return fmt.Errorf("answered calls with %v", who)
		}
		return nil
	})
	for n := 1; n <= 3; n++ {
		cust := custUUID(n)
		if p := f.fs.peerOf(cust); !strings.HasPrefix(p, "0a0a0a0a-") {
			t.Errorf("caller %d bridged to %q", n, p)
		}
		f.fs.bye(cust)
	}
	f.eventually("calls ended", func() error {
		calls, err := f.eng.Calls(f.ctx, f.admin, routing.CallFilter{})
		if err != nil || len(calls) != 0 {
			return fmt.Errorf("%d calls live (%v)", len(calls), err)
		}
		return nil
	})
	for _, a := range agents {
		f.wantAgent(a, presence.SysAfterCallWork, "")
	}
	f.settle()
	got := f.fs.takeCommands()
	var want []string
	for n := 1; n <= 3; n++ {
		cust, leg := custUUID(n), legUUID(n)
		want = append(want, "api uuid_answer "+cust, "api uuid_broadcast "+cust+moh,
			"api uuid_setvar "+cust+" park_after_bridge true", "api uuid_kill "+leg+" NORMAL_CLEARING")
	}
	var rest []string
	for _, c := range got {
		switch {
		case strings.HasPrefix(c, "bgapi originate "), strings.HasPrefix(c, "api uuid_bridge "):
			continue // the agent ↔ call pairing is routing's choice; checked above
		}
		rest = append(rest, c)
	}
	slices.Sort(rest)
	slices.Sort(want)
	if !slices.Equal(rest, want) {
		t.Errorf("commands:\n got: %s\nwant: %s", quoteLines(rest), quoteLines(want))
	}
	if n := len(got) - len(rest); n != 6 {
		t.Errorf("%d originates and bridges, want 6", n)
	}
}
