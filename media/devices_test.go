package media

import (
	"errors"
	"reflect"
	"testing"

	"github.com/callfloor/callfloor/presence"
)

// TestRing pins what each distribution mode rings; every path dials
// exactly this list (README.md, "Devices").
func TestRing(t *testing.T) {
	app := Endpoint{Kind: EndpointApp, User: "a1"}
	desk := Endpoint{Kind: EndpointDesk, User: "a1-desk"}
	for _, tc := range []struct {
		name string
		t    Target
		want []Endpoint
		err  error
	}{
		{"app", Target{AgentID: "a1", Distribution: presence.DistApp}, []Endpoint{app}, nil},
		{"no mode is app", Target{AgentID: "a1"}, []Endpoint{app}, nil},
		{"ip_phone", Target{AgentID: "a1", Distribution: presence.DistIPPhone}, []Endpoint{desk}, nil},
		{"app_sip", Target{AgentID: "a1", Distribution: presence.DistAppSIP}, []Endpoint{app, desk}, nil},
		{"renamed", Target{AgentID: "a1", Distribution: presence.DistAppSIP, AppDevice: "web-a1", DeskDevice: "7001"},
			[]Endpoint{{Kind: EndpointApp, User: "web-a1"}, {Kind: EndpointDesk, User: "7001"}}, nil},
		{"phone", Target{AgentID: "a1", Distribution: presence.DistPhone, Phone: "+84901000011"},
			[]Endpoint{{Kind: EndpointPhone, Number: "+84901000011"}}, nil},
		{"phone without number", Target{AgentID: "a1", Distribution: presence.DistPhone}, nil, ErrUnreachable},
		{"unknown mode", Target{AgentID: "a1", Distribution: "pager"}, nil, ErrNotSupported},
		{"no agent", Target{Distribution: presence.DistApp}, nil, ErrUnreachable},
	} {
		got, err := Ring(tc.t)
		if !reflect.DeepEqual(got, tc.want) || !errors.Is(err, tc.err) {
			t.Errorf("%s: %+v, %v; want %+v, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestTargetOf(t *testing.T) {
	a := presence.Agent{ID: "a3", Distribution: presence.DistIPPhone, DeskDevice: "desk-a3", Phone: "+84901000013"}
	want := Target{AgentID: "a3", Distribution: presence.DistIPPhone, AppDevice: "a3", DeskDevice: "desk-a3", Phone: "+84901000013"}
	if got := TargetOf(a); got != want {
		t.Fatalf("TargetOf = %+v", got)
	}
}
