package api_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/callfloor/callfloor/api"
	"github.com/callfloor/callfloor/internal/config"
	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/media"
	"github.com/callfloor/callfloor/presence"
	"github.com/callfloor/callfloor/routing"
	"github.com/callfloor/callfloor/routing/routingtest"
	"github.com/callfloor/callfloor/store"
	"github.com/callfloor/callfloor/stream"
)

// productFloor is the whole product surface over the demo floor: agent
// service, routing engine on a recording media double, event hub, every
// route set, all running until the test ends.
type productFloor struct {
	srv    *httptest.Server
	svc    *presence.Service
	engine *routing.Engine
	media  *routingtest.Media
}

func newProductFloor(t *testing.T) *productFloor {
	t.Helper()
	cfg, err := config.Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMemory()
	f := &productFloor{media: &routingtest.Media{}}
	f.svc = presence.NewService(st, presence.WithLocation(cfg.Location()),
		presence.WithLogoutGuard(func(ctx context.Context, id string) error { return f.engine.LogoutGuard(ctx, id) }))
	ctx := context.Background()
	if err := config.Bootstrap(ctx, cfg, f.svc); err != nil {
		t.Fatal(err)
	}
	f.engine = routing.NewEngine(st, f.svc, f.media, routing.WithDefaultQueue(cfg.DefaultQueue), routing.WithAgentEvents(st))
	if err := config.BootstrapQueues(ctx, cfg, f.engine); err != nil {
		t.Fatal(err)
	}
	hub := stream.NewHub(st)
	f.srv = httptest.NewServer(api.New(f.svc, st,
		api.WithAgentChanged(f.engine.Kick),
		api.WithRoutes(api.RoutingRoutes(f.engine)),
		api.WithRoutes(api.EventRoutes(hub)),
	).Handler())
	runCtx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{f.engine.Run, hub.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(runCtx); err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("run: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		stop()
		wg.Wait()
		f.srv.Close()
		st.Close()
	})
	return f
}

// browser starts headless Debian chromium (a real peer) for one test.
func browser(t *testing.T) context.Context {
	t.Helper()
	exe := testpeer.Require(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// waitJS polls a JavaScript predicate in the page until it is true.
func waitJS(t *testing.T, ctx context.Context, what, expr string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
	t.Fatalf("page never showed %s (%s)\n%s", what, expr, html)
}

// TestDashboardInChromium drives the real dashboard in headless Chromium
// as the sales supervisor: their floor and queue appear, the event stream
// goes live, a status change made in the page lands in the store, a call
// that arrives shows up live and gets answered, and clicking "listen"
// starts a monitor that the page then shows.
func TestDashboardInChromium(t *testing.T) {
	f := newProductFloor(t)
	ctx := browser(t)
	q := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	if err := chromedp.Do(ctx,
		chromedp.Navigate(f.srv.URL+"/"),
		chromedp.WaitVisible(q("#token")),
		chromedp.SendKeys(q("#token"), "demo-sup-sales"),
		chromedp.Click(q("#login button")),
		chromedp.WaitVisible(q(`#agents tr[data-agent="a1"]`)),
	); err != nil {
		t.Fatalf("browser: %v", err)
	}
	waitJS(t, ctx, "five sales agents", `document.querySelectorAll("#agents tbody tr").length === 5`)
	waitJS(t, ctx, "only the sales queue", `document.querySelectorAll("#queues tbody tr").length === 1 && !!document.querySelector('#queues tr[data-queue="sales"]')`)
	waitJS(t, ctx, "the sales counters", `document.querySelector("#c-accepted").textContent === "0" && document.querySelector("#daystart").textContent.includes("group sales")`)
	waitJS(t, ctx, "the live stream", `document.querySelector("#live").textContent === "live"`)
	who, _ := chromedp.Run(ctx, chromedp.Text(q("#who")))
	if !strings.Contains(who, "supervisor") {
		t.Errorf("who = %q", who)
	}

	// A status change in the page reaches the store, credited to sup-sales.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(q(`select[aria-label="call status of a1"]`), "available"),
		chromedp.Evaluate[chromedp.Void](`void document.querySelector('select[aria-label="call status of a1"]').dispatchEvent(new Event("change"))`),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "a1 available", `document.querySelector('#agents tr[data-agent="a1"] select').value === "available"`)
	a, err := f.svc.Agent(context.Background(), "a1")
	if err != nil || a.CallStatus != presence.StatusAvailable {
		t.Fatalf("a1 after the page changed it: %s %v", a.CallStatus, err)
	}

	// A call arrives on the sales hotline; routing rings a1 (the only
	// available agent); a1 answers. The page follows over SSE alone.
	f.engine.Report(media.CallArrived{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-1", Caller: "+84901234567", Hotline: "+842873000001"})
	waitJS(t, ctx, "the call ringing a1", `[...document.querySelectorAll("#calls tbody tr")].some(r => r.innerText.includes("+84901234567") && r.innerText.includes("a1"))`)
	dial, ok := f.media.DialOf("a1")
	if !ok {
		t.Fatal("a1 was never dialled")
	}
	f.engine.Report(media.LegAnswered{FactBase: media.FactBase{At: time.Now()}, Leg: dial.Result})
	waitJS(t, ctx, "the call answered", `[...document.querySelectorAll("#calls tbody tr")].some(r => r.innerText.includes("answered"))`)
	waitJS(t, ctx, "a1 talking", `document.querySelector('#agents tr[data-agent="a1"] td.s-talking') !== null`)

	// The supervisor clicks "listen": a monitor starts and the page shows it.
	if err := chromedp.Do(ctx, chromedp.Click(q(`#calls td.actions button`))); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "the monitor", `[...document.querySelectorAll("#calls tbody tr")].some(r => r.innerText.includes("listen by sup-sales"))`)
	if len(f.media.Ops("monitor")) != 1 {
		t.Errorf("media monitor commands: %+v", f.media.Ops("monitor"))
	}
	if msg, _ := chromedp.Run(ctx, chromedp.Text(q("#error"))); msg != "" {
		t.Errorf("page shows an error: %q", msg)
	}
	if dir := os.Getenv("CALLFLOOR_SCREENSHOTS"); dir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), png, 0o644)
		}
	}
}
