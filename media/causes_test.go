package media

import (
	"errors"
	"testing"
)

func TestCauseFromQ850(t *testing.T) {
	for q850, want := range map[int]Cause{
		0: CauseNormal, 16: CauseNormal, 31: CauseNormal, 17: CauseBusy, 18: CauseNoAnswer,
		19: CauseNoAnswer, 20: CauseUnreachable, 27: CauseUnreachable, 1: CauseUnreachable, 3: CauseUnreachable,
		41: CauseUnreachable, 102: CauseUnreachable, 21: CauseRejected, 34: CauseFailed, 127: CauseFailed,
	} {
		if got := CauseFromQ850(q850); got != want {
			t.Errorf("CauseFromQ850(%d) = %s, want %s", q850, got, want)
		}
	}
	for cause, want := range map[Cause]int{
		CauseNormal: 16, CauseBusy: 17, CauseNoAnswer: 19, CauseUnreachable: 20,
		CauseRejected: 21, CauseCancelled: 16, CauseFailed: 41,
	} {
		if got := Q850(cause); got != want {
			t.Errorf("Q850(%s) = %d, want %d", cause, got, want)
		}
	}
}

func TestCauseFromSIP(t *testing.T) {
	for status, want := range map[int]Cause{
		486: CauseBusy, 600: CauseBusy, 603: CauseRejected, 480: CauseNoAnswer, 408: CauseNoAnswer,
		487: CauseCancelled, 404: CauseUnreachable, 503: CauseUnreachable, 500: CauseFailed, 488: CauseFailed,
	} {
		if got := CauseFromSIP(status); got != want {
			t.Errorf("CauseFromSIP(%d) = %s, want %s", status, got, want)
		}
	}
	for cause, want := range map[Cause]int{
		CauseBusy: 486, CauseRejected: 603, CauseCancelled: 487, CauseNoAnswer: 480,
		CauseUnreachable: 480, CauseFailed: 503, CauseNormal: 480,
	} {
		if got, _ := SIPStatus(cause); got != want {
			t.Errorf("SIPStatus(%s) = %d, want %d", cause, got, want)
		}
	}
}

// TestForkCause pins the one ranking every path uses for a dial whose
// forks all failed: "app 480, desk 486" is a no-answer on Asterisk,
// FreeSWITCH and the SIP path alike.
func TestForkCause(t *testing.T) {
	for _, tc := range []struct {
		in   []Cause
		want Cause
	}{
		{nil, CauseFailed},
		{[]Cause{CauseUnreachable}, CauseUnreachable},
		{[]Cause{CauseNoAnswer, CauseBusy}, CauseNoAnswer},
		{[]Cause{CauseBusy, CauseNoAnswer}, CauseNoAnswer},
		{[]Cause{CauseBusy, CauseRejected}, CauseRejected},
		{[]Cause{CauseUnreachable, CauseBusy}, CauseBusy},
		{[]Cause{CauseFailed, CauseUnreachable}, CauseUnreachable},
		{[]Cause{CauseCancelled, CauseFailed}, CauseFailed},
		{[]Cause{CauseNormal, CauseCancelled}, CauseCancelled},
		{[]Cause{"something-new", CauseNormal}, CauseNormal},
	} {
		if got := ForkCause(tc.in...); got != tc.want {
			t.Errorf("ForkCause(%v) = %s, want %s", tc.in, got, tc.want)
		}
	}
	// ForkCause and MoreTelling agree: folding one at a time gives the
	// same answer as ranking all at once.
	all := []Cause{CauseNormal, CauseCancelled, CauseFailed, CauseUnreachable, CauseBusy, CauseRejected, CauseNoAnswer}
	for _, a := range all {
		for _, b := range all {
			fold := a
			if MoreTelling(b, fold) {
				fold = b
			}
			if got := ForkCause(a, b); got != fold {
				t.Errorf("ForkCause(%s, %s) = %s, fold gives %s", a, b, got, fold)
			}
		}
	}
}

func TestCapabilities(t *testing.T) {
	c := Capabilities{Path: PathSIP, Unsupported: map[Action]string{ActionMonitor: "needs a mixer"}}
	if err := c.Supports(ActionTransfer); err != nil {
		t.Fatalf("transfer: %v", err)
	}
	err := c.Supports(ActionMonitor)
	if !errors.Is(err, ErrNotSupported) || err.Error() != "needs a mixer: "+ErrNotSupported.Error() {
		t.Fatalf("monitor: %v", err)
	}
	if m := c.Missing(); len(m) != 1 || m[0] != ActionMonitor {
		t.Fatalf("missing = %v", m)
	}
	if err := (Capabilities{}).Supports(ActionTakeOver); err != nil {
		t.Fatalf("zero capabilities refuse: %v", err)
	}
}
