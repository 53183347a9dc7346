package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"testing"

	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/store"
)

// mediaPath is the recording media double with the two things GET
// /v1/media also reads: its name and its readiness.
type mediaPath struct {
	*routingtest.Media
	ready error
}

func (m mediaPath) Ready(ctx context.Context) error { return m.ready }

// TestMediaAPI: GET /v1/media names the path, says whether it is
// connected (and why not), and lists every supervisor action with the
// reason the path gives for those it cannot do; hang up is always there.
func TestMediaAPI(t *testing.T) {
	st := store.NewMemory()
	t.Cleanup(func() { st.Close() })
	svc := presence.NewService(st)
	ctx := context.Background()
	id, name, email, role := "boss", "Boss", "boss@example.com", presence.RoleAdmin
	if _, err := svc.CreateAgent(ctx, presence.System, presence.AgentInput{ID: &id, Name: &name, Email: &email, Role: &role, Groups: &[]string{}}); err != nil {
		t.Fatal(err)
	}
	if err := svc.SetToken(ctx, "token-boss", "boss"); err != nil {
		t.Fatal(err)
	}
	m := &mediaPath{Media: &routingtest.Media{}}
	m.Caps = media.Capabilities{Path: media.PathSIP, Unsupported: map[media.Action]string{
		media.ActionMonitor:  "sip: monitor needs a mixer",
		media.ActionTakeOver: "sip: takeover needs a mixer"}}
	srv := httptest.NewServer(api.New(svc, st, api.WithRoutes(api.MediaRoutes(m))).Handler())
	t.Cleanup(srv.Close)
	doc, err := api.OpenAPI()
	if err != nil {
		t.Fatal(err)
	}
	spec, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	r := &routingAPI{t: t, ctx: ctx, srv: srv, spec: spec}

	r.want(r.do("GET", "/v1/media", "nobody", ""), 401, "unauthenticated")
	var v struct {
		Path      string
		Connected bool
		Reason    string
		Actions   map[string]struct {
			Supported bool
			Reason    string
		}
	}
	r.do("GET", "/v1/media", "boss", "").into(t, &v)
	if v.Path != "sip" || !v.Connected || v.Reason != "" || len(v.Actions) != 11 {
		t.Fatalf("media = %+v", v)
	}
	for _, a := range []string{"listen", "whisper", "barge", "monitor_pause", "monitor_resume", "monitor_barge", "monitor_end"} {
		if got := v.Actions[a]; got.Supported || got.Reason != "sip: monitor needs a mixer" {
			t.Errorf("%s = %+v", a, got)
		}
	}
	if got := v.Actions["takeover"]; got.Supported || got.Reason != "sip: takeover needs a mixer" {
		t.Errorf("takeover = %+v", got)
	}
	for _, a := range []string{"transfer", "hangup", "click_to_call"} {
		if got := v.Actions[a]; !got.Supported || got.Reason != "" {
			t.Errorf("%s = %+v", a, got)
		}
	}

	m.ready = errors.New("asterisk ARI not connected")
	r.do("GET", "/v1/media", "boss", "").into(t, &v)
	if v.Connected || v.Reason != "asterisk ARI not connected" {
		t.Errorf("disconnected media = %+v", v)
	}
}
