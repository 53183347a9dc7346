package webhook_test

import (
	"context"
	"errors"
	"testing"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/webhook"
)

var admin = presence.Actor{ID: "root", Role: presence.RoleAdmin}

func TestRegistry(t *testing.T) {
	ctx := context.Background()
	st := store.NewMemory()
	reg := webhook.NewRegistry(st, st)
	h, err := reg.Create(ctx, admin, webhook.Input{URL: "https://crm.example.com/hook?x=1", Types: []string{"call", "agent", "call"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Secret) != 64 || h.ID == "" || len(h.Types) != 2 || h.Types[0] != "agent" {
		t.Fatalf("created %+v", h)
	}
	got, err := reg.Get(ctx, admin, h.ID)
	if err != nil || got.Secret != "" || got.URL != h.URL {
		t.Fatalf("get %+v %v (the secret must not be shown again)", got, err)
	}
	list, err := reg.List(ctx, admin)
	if err != nil || len(list) != 1 || list[0].Secret != "" {
		t.Fatalf("list %+v %v", list, err)
	}
	ds, err := reg.Deliveries(ctx, admin, h.ID)
	if err != nil || len(ds) != 0 {
		t.Fatalf("deliveries %v %v", ds, err)
	}
	sup := presence.Actor{ID: "s", Role: presence.RoleSupervisor, Supervises: []string{"g"}}
	if _, err := reg.List(ctx, sup); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("supervisor list: %v", err)
	}
	if _, err := reg.Create(ctx, sup, webhook.Input{URL: "https://x.example"}); !errors.Is(err, presence.ErrForbidden) {
		t.Fatalf("supervisor create: %v", err)
	}
	if err := reg.Delete(ctx, admin, h.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Get(ctx, admin, h.ID); !errors.Is(err, presence.ErrNotFound) {
		t.Fatalf("after delete: %v", err)
	}
	if err := reg.Delete(ctx, admin, h.ID); !errors.Is(err, presence.ErrNotFound) {
		t.Fatalf("delete twice: %v", err)
	}
}

func TestRegistryValidation(t *testing.T) {
	mem := store.NewMemory()
	reg := webhook.NewRegistry(mem, mem)
	for _, tc := range []struct {
		in    webhook.Input
		field string
	}{
		{webhook.Input{URL: ""}, "url"},
		{webhook.Input{URL: "ftp://crm.example.com/x"}, "url"},
		{webhook.Input{URL: "javascript:alert(1)"}, "url"},
		{webhook.Input{URL: "/relative/path"}, "url"},
		{webhook.Input{URL: "http://"}, "url"},
		{webhook.Input{URL: "https://user:pw@crm.example.com/"}, "url"},
		{webhook.Input{URL: "https://crm.example.com/#frag"}, "url"},
		{webhook.Input{URL: "https://crm.example.com/", Types: []string{"calls"}}, "types"},
		{webhook.Input{URL: "https://crm.example.com/", Secret: "short"}, "secret"},
	} {
		_, err := reg.Create(context.Background(), admin, tc.in)
		var fe *presence.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field || !errors.Is(err, presence.ErrInvalid) {
			t.Errorf("%+v: err %v, want an invalid %s", tc.in, err, tc.field)
		}
	}
}
