package sip

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
)

// TestDialTargetsByMode: each distribution mode rings its own devices
// (README.md, "Devices"): app every contact of the app device "a1" (a web
// and a mobile softphone), ip_phone only "a1-desk", app_sip all of them;
// a mode whose device has no contact is unreachable.
func TestDialTargetsByMode(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	h := startServer(t, Config{}, nil)
	web, mobile, desk := testpeer.FreeUDPPort(t), testpeer.FreeUDPPort(t), testpeer.FreeUDPPort(t)
	h.register(t, "a1", web)
	h.register(t, "a1", mobile)
	h.register(t, "a1-desk", desk)
	h.register(t, "a2", testpeer.FreeUDPPort(t))

	ports := func(dist presence.Distribution, agent string) ([]int, error) {
		ts, err := h.srv.dialTargets(media.DialRequest{Target: media.Target{AgentID: agent, Distribution: dist}})
		var out []int
		for _, tg := range ts {
			out = append(out, tg.uri.Port)
		}
		slices.Sort(out)
		return out, err
	}
	sorted := func(p ...int) []int { slices.Sort(p); return p }
	for _, tc := range []struct {
		dist  presence.Distribution
		agent string
		want  []int
	}{
		{presence.DistApp, "a1", sorted(web, mobile)},
		{presence.DistIPPhone, "a1", []int{desk}},
		{presence.DistAppSIP, "a1", sorted(web, mobile, desk)},
	} {
		got, err := ports(tc.dist, tc.agent)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: ports %v, %v; want %v", tc.dist, got, err, tc.want)
		}
	}
	// a2 has an app but no IP phone: ip_phone cannot reach them.
	if _, err := ports(presence.DistIPPhone, "a2"); !errors.Is(err, media.ErrUnreachable) {
		t.Errorf("ip_phone without a desk contact: %v, want ErrUnreachable", err)
	}
}

// TestGoneUnknownLeg: the SIP path holds every leg's dialog itself, so a
// leg it has no dialog for is gone.
func TestGoneUnknownLeg(t *testing.T) {
	h := startServer(t, Config{}, nil)
	gone, err := h.srv.Gone(context.Background(), []media.LegID{"in-nope", "out-nope"})
	if err != nil || len(gone) != 2 {
		t.Fatalf("Gone = %v, %v; want both", gone, err)
	}
}
