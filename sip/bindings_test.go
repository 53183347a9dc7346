package sip

import (
	"testing"
	"time"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/store"
)

// TestRegistrationsSurviveRestart: with a binding store, a SIP path
// started again on the same store still reaches every device registered
// before (phones re-register only near the end of their registration),
// reports them as registered, and forgets a contact that unregistered.
func TestRegistrationsSurviveRestart(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	st := store.NewMemory()
	t.Cleanup(func() { _ = st.Close() })
	bs := StateBindings(st)

	first := startServer(t, Config{}, nil, WithBindingStore(bs))
	web, desk := testpeer.FreeUDPPort(t), testpeer.FreeUDPPort(t)
	first.register(t, "a1", web)
	first.register(t, "a1-desk", desk)
	first.stop(t)

	second := startServer(t, Config{}, nil, WithBindingStore(bs))
	for _, user := range []string{"a1", "a1-desk"} {
		second.rec.waitFor(t, user+" restored", 5*time.Second, func(f media.Fact) bool {
			d, ok := f.(media.DeviceState)
			return ok && d.AgentID == user && d.Registered && d.Until.After(time.Now().Add(50*time.Minute))
		})
	}
	ts, err := second.srv.dialTargets(media.DialRequest{Target: media.Target{AgentID: "a1", Distribution: presence.DistAppSIP}})
	if err != nil || len(ts) != 2 {
		t.Fatalf("after restart: %d targets, %v; want the app and the IP phone", len(ts), err)
	}
	ports := map[int]bool{ts[0].uri.Port: true, ts[1].uri.Port: true}
	if !ports[web] || !ports[desk] {
		t.Fatalf("after restart: ports %v, want %d and %d", ports, web, desk)
	}

	// Unregistering is stored too: a third start has no desk phone.
	second.unregister(t, "a1-desk", desk)
	second.stop(t)
	third := startServer(t, Config{}, nil, WithBindingStore(bs))
	third.rec.waitFor(t, "a1 restored", 5*time.Second, func(f media.Fact) bool {
		d, ok := f.(media.DeviceState)
		return ok && d.AgentID == "a1" && d.Registered
	})
	if ts, err := third.srv.dialTargets(media.DialRequest{Target: media.Target{AgentID: "a1", Distribution: presence.DistIPPhone}}); err == nil {
		t.Fatalf("unregistered desk phone restored: %+v", ts)
	}
}
