package routing

import (
	"encoding/json"
	"testing"

	"github.com/callfloor/callfloor/presence"
)

// Only an agent event that leaves the agent routable, while a call may be
// waiting, is worth a distribution pass.
func TestMayRoute(t *testing.T) {
	call := "c1"
	view := func(callStatus string, sys presence.SystemStatus, callID *string) []byte {
		b, err := json.Marshal(presence.AgentView{CallStatus: callStatus, SystemStatus: sys, CallID: callID})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name        string
		view        []byte
		noneWaiting bool
		want        bool
	}{
		{"available, calls may wait", view(presence.StatusAvailable, presence.SysAvailable, nil), false, true},
		{"available, nothing waiting", view(presence.StatusAvailable, presence.SysAvailable, nil), true, false},
		{"lunch break", view(presence.StatusLunchBreak, presence.SysAvailable, nil), false, false},
		{"unavailable", view(presence.StatusUnavailable, presence.SysAvailable, nil), false, false},
		{"available but talking", view(presence.StatusAvailable, presence.SysTalking, &call), false, false},
		{"available but wrapping up", view(presence.StatusAvailable, presence.SysAfterCallWork, nil), false, false},
		{"available but rona", view(presence.StatusAvailable, presence.SysRONA, nil), false, false},
		{"available with a call id", view(presence.StatusAvailable, presence.SysAvailable, &call), false, false},
		{"undecodable", []byte("{"), true, true},
	} {
		e := &Engine{}
		e.noneWaiting.Store(tc.noneWaiting)
		if got := e.mayRoute(tc.view); got != tc.want {
			t.Errorf("%s: mayRoute = %v, want %v", tc.name, got, tc.want)
		}
	}
}
