package config

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/store"
)

func TestBootstrapDemoFloorIsIdempotent(t *testing.T) {
	cfg, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	defer st.Close()
	svc := presence.NewService(st)
	ctx := context.Background()
	if err := Bootstrap(ctx, cfg, svc); err != nil {
		t.Fatalf("demo floor does not pass validation: %v", err)
	}
	admin, err := svc.Authenticate(ctx, "demo-admin")
	if err != nil || !admin.IsAdmin() {
		t.Fatalf("demo-admin: %+v %v", admin, err)
	}
	sup, err := svc.Authenticate(ctx, "demo-sup-sales")
	if err != nil || len(sup.Supervises) != 1 || sup.Supervises[0] != "sales" {
		t.Fatalf("demo-sup-sales: %+v %v", sup, err)
	}
	// An agent changes status; a second bootstrap (a restart) keeps it.
	if _, err := svc.SetStatus(ctx, admin, "a1", ptr("available"), nil); err != nil {
		t.Fatal(err)
	}
	if err := Bootstrap(ctx, cfg, svc); err != nil {
		t.Fatalf("second bootstrap: %v", err)
	}
	a1, _ := svc.Agent(ctx, "a1")
	if a1.CallStatus != "available" {
		t.Errorf("restart bootstrap reset a1 to %s", a1.CallStatus)
	}
	agents, _ := svc.Agents(ctx)
	if len(agents) != 11 {
		t.Errorf("%d agents after two bootstraps", len(agents))
	}
	rows, _ := svc.History(ctx, admin, "a1", time.Time{}, time.Time{})
	if len(rows) != 1 {
		t.Errorf("history after restart: %+v", rows)
	}
}

func ptr[T any](v T) *T { return &v }

// available_after_outdial in the YAML seeds the stored setting on first
// start; a restart keeps what an admin changed since.
func TestBootstrapSeedsAvailableAfterOutdial(t *testing.T) {
	cfg, err := Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AvailableAfterOutdial == nil || *cfg.AvailableAfterOutdial {
		t.Fatalf("demo floor available_after_outdial = %v, want false", cfg.AvailableAfterOutdial)
	}
	cfg.AvailableAfterOutdial = ptr(true)
	st := store.NewMemory()
	defer st.Close()
	svc := presence.NewService(st)
	ctx := context.Background()
	if err := Bootstrap(ctx, cfg, svc); err != nil {
		t.Fatal(err)
	}
	if set, err := svc.Settings(ctx); err != nil || !set.AvailableAfterOutdial {
		t.Fatalf("settings after bootstrap = %+v, %v", set, err)
	}
	if _, err := svc.UpdateSettings(ctx, presence.System, presence.SettingsInput{AvailableAfterOutdial: ptr(false)}); err != nil {
		t.Fatal(err)
	}
	if err := Bootstrap(ctx, cfg, svc); err != nil {
		t.Fatal(err)
	}
	if set, err := svc.Settings(ctx); err != nil || set.AvailableAfterOutdial {
		t.Fatalf("a restart overwrote the admin's setting: %+v, %v", set, err)
	}
}

// default_region reads the YAML's national phone numbers; they are stored
// as E.164. A region the numbering plan does not know stops the start.
func TestBootstrapPhonesInDefaultRegion(t *testing.T) {
	cfg, err := Load(env(map[string]string{EnvRegion: "XX"}))
	if err == nil || !strings.Contains(err.Error(), `default_region "XX"`) {
		t.Fatalf("unknown region: %v", err)
	}
	cfg, err = Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.DefaultRegion != "VN" {
		t.Fatalf("demo floor default_region = %q, want VN", cfg.DefaultRegion)
	}
	cfg.Agents = append(cfg.Agents, Agent{ID: "a9", Name: "N", Email: "a9@example.com", Phone: "0901 000 099", Role: "agent", Groups: []string{"sales"}, Distribution: "phone"})
	st := store.NewMemory()
	defer st.Close()
	svc := presence.NewService(st, presence.WithDefaultRegion(cfg.DefaultRegion))
	ctx := context.Background()
	if err := Bootstrap(ctx, cfg, svc); err != nil {
		t.Fatal(err)
	}
	if a, err := svc.Agent(ctx, "a9"); err != nil || a.Phone != "+84901000099" {
		t.Fatalf("a9's phone = %q, %v; want +84901000099", a.Phone, err)
	}
	cfg.Agents[len(cfg.Agents)-1] = Agent{ID: "a10", Name: "N", Email: "a10@example.com", Phone: "12345", Role: "agent"}
	if err := Bootstrap(ctx, cfg, svc); err == nil || !strings.Contains(err.Error(), "phone") {
		t.Fatalf("bootstrap with a bad phone: %v", err)
	}
}
