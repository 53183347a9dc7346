package api_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
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

	mu          sync.Mutex
	lastEventID []string // Last-Event-ID of every /v1/events request
	forceID     string   // when set, the next stream request resumes from here
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
	h := api.New(f.svc, st,
		api.WithAgentChanged(f.engine.Kick),
		api.WithRoutes(api.RoutingRoutes(f.engine)),
		api.WithRoutes(api.EventRoutes(hub, api.WithStreamPresence(f.svc, 20*time.Second))),
		api.WithRoutes(api.MediaRoutes(mediaPath{Media: f.media})),
	).Handler()
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/events" {
			f.mu.Lock()
			f.lastEventID = append(f.lastEventID, r.Header.Get("Last-Event-ID"))
			if f.forceID != "" {
				r.Header.Set("Last-Event-ID", f.forceID)
				f.forceID = ""
			}
			f.mu.Unlock()
		}
		if r.URL.Path == "/v1/agents" && r.Method == http.MethodGet {
			// Small pages, so the pages must follow X-Next-Cursor to see everyone.
			q := r.URL.Query()
			q.Set("limit", "4")
			r.URL.RawQuery = q.Encode()
		}
		h.ServeHTTP(w, r)
	}))
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

func (f *productFloor) streamRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.lastEventID...)
}

// signIn opens path in a new English-speaking chromium and signs in.
func signIn(t *testing.T, base, path, token string) *testpeer.Page {
	t.Helper()
	return testpeer.Chromium(t, "en-US").SignIn(base, path, token)
}

// waitAgent polls the store until the agent satisfies ok.
func (f *productFloor) waitAgent(t *testing.T, id string, ok func(presence.Agent) bool) {
	t.Helper()
	var a presence.Agent
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		var err error
		if a, err = f.svc.Agent(context.Background(), id); err == nil && ok(a) {
			return
		}
	}
	t.Fatalf("agent %s never got there: %+v", id, a)
}

func (f *productFloor) setStatus(t *testing.T, id, status string) {
	t.Helper()
	if _, err := f.svc.SetStatus(context.Background(), presence.System, id, &status, nil); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleAgentsView signs in as the sales supervisor: only sales
// agents, every column with its value, each filter and the search narrow
// the rows, columns sort, a change made through the API appears without
// reload, and the row actions act (status select, log out's 409 shown).
func TestConsoleAgentsView(t *testing.T) {
	f := newProductFloor(t)
	if _, err := f.svc.Heartbeat(context.Background(), presence.System, "a1"); err != nil {
		t.Fatal(err)
	}
	f.setStatus(t, "a1", "available")
	f.setStatus(t, "a2", "lunch_break")
	chat := "available"
	if _, err := f.svc.SetStatus(context.Background(), presence.System, "a1", nil, &chat); err != nil {
		t.Fatal(err)
	}
	// User-supplied text is shown as text: markup in a status name or an
	// agent name stays inert.
	if _, err := f.svc.CreateCallStatus(context.Background(), presence.System, presence.CallStatusDef{ID: "coaching", Name: `<img src=x onerror="window.pwned=1">Coaching`}); err != nil {
		t.Fatal(err)
	}
	evil := `<b id="bold">Dung</b> Pham`
	if _, err := f.svc.UpdateAgent(context.Background(), presence.System, "a4", presence.AgentInput{Name: &evil}); err != nil {
		t.Fatal(err)
	}
	p := signIn(t, f.srv.URL, "/", "demo-sup-sales")
	p.Click(`nav button[data-view="agents"]`)
	p.Wait("the names as text", `document.querySelector('#agents tr[data-agent="a4"] .name').textContent === '<b id="bold">Dung</b> Pham' && [...document.querySelectorAll('#f-agent-call option')].some(o => o.textContent === '<img src=x onerror="window.pwned=1">Coaching')`)
	if testpeer.JS[bool](p, `!!document.querySelector("#bold") || !!document.querySelector("img") || window.pwned === 1`) {
		t.Error("user-supplied markup was rendered as HTML")
	}
	p.Wait("five sales agents", `document.querySelectorAll("#agents tbody tr").length === 5`)
	if testpeer.JS[bool](p, `!!document.querySelector('#agents tr[data-agent="a5"]')`) {
		t.Error("the sales supervisor sees a support agent")
	}
	// Every column of a1's row holds its value.
	cells := testpeer.JS[[]string](p, `[...document.querySelectorAll('#agents tr[data-agent="a1"] td')].map(td => td.querySelector("select") ? td.querySelector("select").selectedOptions[0].textContent : td.textContent.trim())`)
	want := []string{"An Nguyena1", "a1@example.com", "+84901000011", "agent", "sales", "online", "Available", "", "chat available", "free", "", "app", "", "Log out"}
	if len(cells) != len(want) {
		t.Fatalf("a1 row has %d cells: %q", len(cells), cells)
	}
	for i, w := range want {
		if w != "" && cells[i] != w {
			t.Errorf("a1 column %d = %q, want %q", i, cells[i], w)
		}
	}
	// Available: the status timer alone, no not-available total.
	if !regexp.MustCompile(`^\d\d:\d\d$`).MatchString(cells[7]) {
		t.Errorf("a1 status timer = %q", cells[7])
	}
	// a2 is on lunch: "current / not-available total", both ticking.
	p.Wait("a2's not-available total", `/^\d\d:\d\d \/ \d\d:\d\d$/.test(document.querySelector('#agents tr[data-agent="a2"] td:nth-child(8)').textContent)`)
	first := testpeer.JS[string](p, `document.querySelector('#agents tr[data-agent="a2"] td:nth-child(8)').textContent`)
	p.Wait("the timer to tick", fmt.Sprintf(`document.querySelector('#agents tr[data-agent="a2"] td:nth-child(8)').textContent !== %q`, first))
	if cls := testpeer.JS[string](p, `document.querySelector('#agents tr[data-agent="a2"] select').className`); !strings.Contains(cls, "manual-na") {
		t.Errorf("a2 on lunch is painted %q, want the not-available colour", cls)
	}

	// Filters narrow the rows; "All" brings them back.
	for _, c := range []struct{ sel, value string }{
		{"#f-agent-call", "lunch_break"}, {"#f-agent-chat", "unavailable"}, {"#f-agent-online", "true"}, {"#f-agent-group", "sales"},
	} {
		p.Choose(c.sel, c.value)
		n := p.Rows("agents")
		if c.sel == "#f-agent-group" {
			if n != 5 {
				t.Errorf("group sales: %d rows", n)
			}
		} else if n == 0 || n >= 5 {
			t.Errorf("filter %s=%s left %d rows", c.sel, c.value, n)
		}
		p.Choose(c.sel, "")
	}
	p.Choose("#f-agent-online", "true")
	if n := p.Rows("agents"); n != 1 {
		t.Errorf("online agents: %d rows, want a1 only (the console does not log its supervisor in)", n)
	}
	p.Choose("#f-agent-online", "")
	p.Run(chromedp.SendKeys(chromedp.ID("f-agent-search"), "binh"))
	p.Wait("the search to keep Binh only", `document.querySelectorAll("#agents tbody tr").length === 1 && !!document.querySelector('#agents tr[data-agent="a2"]')`)
	p.Run(chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector("#f-agent-search"); s.value = ""; s.dispatchEvent(new Event("input")); })()`))
	p.Wait("all rows back", `document.querySelectorAll("#agents tbody tr").length === 5`)

	// Sorting by name, then the other way.
	p.Click(`#agents th[data-sort="name"]`)
	order := testpeer.JS[[]string](p, `[...document.querySelectorAll("#agents tbody tr")].map(r => r.dataset.agent)`)
	if order[0] != "sup-sales" || order[1] != "a3" || order[4] != "a4" {
		t.Errorf("name descending: %v", order)
	}
	p.Click(`#agents th[data-sort="name"]`)
	if order := testpeer.JS[[]string](p, `[...document.querySelectorAll("#agents tbody tr")].map(r => r.dataset.agent)`); order[0] != "a4" || order[1] != "a1" {
		t.Errorf("name ascending: %v", order)
	}

	// At 1366×768 the agents table still fits: no column cut off.
	p.Run(chromedp.EmulateViewport(1366, 768))
	if fits := testpeer.JS[bool](p, `(() => { const s = document.querySelector("#agents").parentElement; return s.scrollWidth <= s.clientWidth; })()`); !fits {
		t.Error("the agents table overflows at 1366×768")
	}
	p.Run(chromedp.EmulateViewport(1600, 1000))

	// A change through the API (not the page) shows up live.
	f.setStatus(t, "a3", "training")
	p.Wait("a3 in training without reload", `document.querySelector('#agents tr[data-agent="a3"] select').value === "training"`)

	// The page's own status select acts, credited to the supervisor.
	p.Choose(`select[aria-label="Call status of a4"]`, "short_break")
	f.waitAgent(t, "a4", func(a presence.Agent) bool { return a.CallStatus == "short_break" })
	p.Click(`#agents tr[data-agent="a1"] button[data-action="logout"]`)
	p.Wait("a1 logged out", `document.querySelector('#agents tr[data-agent="a1"] td:nth-child(6)').textContent === "offline"`)
	if msg := testpeer.JS[string](p, `document.querySelector("#error").textContent`); msg != "" {
		t.Errorf("page shows an error: %q", msg)
	}
}

// TestConsoleCallsAndQueues: a call arrives and is answered; the calls
// view shows every field with a moving timer; the filters narrow; the
// supervisor listens, pauses, resumes and ends the monitor from the page;
// takeover is disabled with the media path's reason; transfer picks an
// available agent; hang up ends the call. Queues tick the longest wait and
// turn amber then red at the admin's thresholds.
func TestConsoleCallsAndQueues(t *testing.T) {
	f := newProductFloor(t)
	f.media.Caps = media.Capabilities{Path: media.PathAsterisk, Unsupported: map[media.Action]string{
		media.ActionTakeOver: "take over needs a bridge this test path lacks"}}
	ctx := context.Background()
	one, three := 1, 3
	if _, err := f.engine.UpdateQueue(ctx, presence.System, "sales", routing.QueueInput{WaitingAmber: &one, LongestWaitAmberSeconds: &three, WaitingRed: &three}); err != nil {
		t.Fatal(err)
	}
	p := signIn(t, f.srv.URL, "/", "demo-admin")
	p.Click(`nav button[data-view="queues"]`)
	p.Wait("both queues", `document.querySelectorAll("#queues tbody tr").length === 2`)

	// A caller waits: nobody is available.
	f.engine.Report(media.CallArrived{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-1", Caller: "+84901234567", Hotline: "+842873000001"})
	p.Wait("sales amber at one waiting", `document.querySelector('#queues tr[data-queue="sales"]').className === "lvl-amber"`)
	p.Wait("the longest wait ticking", `document.querySelector('#queues tr[data-queue="sales"] td:nth-child(3)').textContent >= "00:02"`)
	p.Wait("still amber, not red, below three", `document.querySelector('#queues tr[data-queue="sales"]').className === "lvl-amber"`)
	p.Run(chromedp.Evaluate[chromedp.Void](`void 0`))
	f.engine.Report(media.CallArrived{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-2", Caller: "+84907654321", Hotline: "+842873000001"})
	f.engine.Report(media.CallArrived{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-3", Caller: "+84900000003", Hotline: "+842873000001"})
	p.Wait("sales red at three waiting", `document.querySelector('#queues tr[data-queue="sales"]').className === "lvl-red"`)
	// Today's counters follow the chosen queue or group.
	// (Not ringing anyone, the three count as "in IVR / queue".)
	for _, c := range []struct{ scope, queued string }{{"queue:sales", "3"}, {"queue:support", "0"}, {"group:sales", "3"}, {"", "3"}} {
		p.Choose("#scope", c.scope)
		p.Wait(c.queued+" in IVR or queue for "+c.scope, fmt.Sprintf(`document.querySelector("#c-ivr").textContent === %q && document.querySelector("#c-waiting").textContent === "0"`, c.queued))
	}
	if cls := testpeer.JS[string](p, `document.querySelector('#queues tr[data-queue="support"]').className`); cls != "lvl-" {
		t.Errorf("support (no thresholds) = %q", cls)
	}
	// The admin sets support's alerts from the page.
	p.Click(`#queues tr[data-queue="support"] .thr button`)
	p.Wait("the alerts dialog", `document.querySelector("#thr-dlg").open`)
	p.Run(chromedp.Evaluate[chromedp.Void](`void (document.querySelector("#thr-wa").value = "2", document.querySelector("#thr-wr").value = "4", document.querySelector("#thr-la").value = "45", document.querySelector("#thr-lr").value = "90", document.querySelector('#thr-dlg button[value="ok"]').click())`))
	p.Wait("support's alerts shown", `document.querySelector('#queues tr[data-queue="support"] .thr').textContent.startsWith("2 / 4 · 00:45 / 01:30")`)
	if q, err := f.engine.Queue(ctx, presence.System, "support"); err != nil || q.WaitingAmber != 2 || q.WaitingRed != 4 || q.LongestWaitAmberSeconds != 45 || q.LongestWaitRedSeconds != 90 {
		t.Errorf("support after the dialog: %+v %v", q.Thresholds, err)
	}
	p.Shot("console-queues.png", 1920, 1080)

	// a1 becomes available and answers the first caller.
	f.setStatus(t, "a1", "available")
	p.Click(`nav button[data-view="calls"]`)
	p.Wait("three calls", `document.querySelectorAll("#calls tbody tr").length === 3`)
	var dial routingtest.Command
	deadline := time.Now().Add(10 * time.Second)
	for ok := false; !ok && time.Now().Before(deadline); {
		dial, ok = f.media.DialOf("a1")
		time.Sleep(50 * time.Millisecond)
	}
	f.engine.Report(media.LegAnswered{FactBase: media.FactBase{At: time.Now()}, Leg: dial.Result})
	p.Wait("the answered call", `[...document.querySelectorAll("#calls tbody tr")].some(r => r.innerText.includes("talking") && r.innerText.includes("An Nguyen"))`)
	row := `[...document.querySelectorAll("#calls tbody tr")].find(r => r.innerText.includes("An Nguyen"))`
	cells := testpeer.JS[[]string](p, row+`.querySelectorAll("td").length ? [...`+row+`.querySelectorAll("td")].map(td => td.textContent.trim()) : []`)
	if len(cells) != 13 || !strings.HasPrefix(cells[0], "c-") || cells[1] != "+84901234567" || cells[2] != "+842873000001" || cells[3] != "sales" ||
		cells[4] != "inbound" || cells[5] != "talking" || cells[7] != "An Nguyen" || cells[8] == "" || cells[9] == "" {
		t.Errorf("call row = %q", cells)
	}
	before := testpeer.JS[string](p, row+`.querySelector("td:nth-child(7)").textContent`)
	p.Wait("the call timer to move", row+fmt.Sprintf(`.querySelector("td:nth-child(7)").textContent !== %q`, before))

	// Filters.
	for _, c := range []struct {
		sel, value string
		want       int
	}{{"#f-call-state", "answered", 1}, {"#f-call-state", "calling", 2}, {"#f-call-agent", "a1", 1}, {"#f-call-direction", "outbound", 0}, {"#f-call-queue", "support", 0}, {"#f-call-queue", "sales", 3}} {
		p.Choose(c.sel, c.value)
		if n := p.Rows("calls"); n != c.want {
			t.Errorf("calls %s=%s: %d rows, want %d", c.sel, c.value, n, c.want)
		}
		p.Choose(c.sel, "")
	}

	// Takeover is disabled with the path's reason; listen works.
	takeover := testpeer.JS[[]string](p, row+`.querySelector('button[data-action="takeover"]') ? [String(`+row+`.querySelector('button[data-action="takeover"]').disabled), `+row+`.querySelector('button[data-action="takeover"]').title] : []`)
	if len(takeover) != 2 || takeover[0] != "true" || !strings.Contains(takeover[1], "needs a bridge") {
		t.Errorf("takeover button = %q", takeover)
	}
	if m := testpeer.JS[string](p, `document.querySelector("#media").textContent`); !strings.Contains(m, "Not possible on this path: Take over") {
		t.Errorf("media line = %q", m)
	}
	p.Run(chromedp.Evaluate[chromedp.Void](row + `.querySelector('button[data-action="listen"]').click()`))
	p.Wait("the monitor", row+`.innerText.includes("listening: Floor Admin")`)
	// The sales supervisor sees who monitors (by id: the admin is in none
	// of their groups), and cannot start another.
	other := signIn(t, f.srv.URL, "/", "demo-sup-sales")
	other.Click(`nav button[data-view="calls"]`)
	other.Wait("the admin's monitor, buttons disabled", row+`.textContent.includes("listening: admin") && `+row+`.querySelector('button[data-action="listen"]').disabled && `+row+`.querySelector('button[data-action="listen"]').title === "Monitored by admin"`)
	if testpeer.JS[bool](other, `!!document.querySelector('button[data-action="monitor_end"]')`) {
		t.Error("another supervisor is offered to end the admin's monitor")
	}
	p.Click(`button[data-action="monitor_pause"]`)
	p.Wait("paused", row+`.innerText.includes("paused")`)
	p.Click(`button[data-action="monitor_resume"]`)
	p.Wait("resumed", `!`+row+`.innerText.includes("paused") && !!document.querySelector('button[data-action="monitor_pause"]')`)
	p.Shot("console-monitor.png", 1920, 1080)
	p.Click(`button[data-action="monitor_end"]`)
	p.Wait("the monitor ended", `!`+row+`.innerText.includes("listening")`)

	// Hang up the two waiting callers from the page.
	for _, caller := range []string{"+84907654321", "+84900000003"} {
		p.Run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`[...document.querySelectorAll("#calls tbody tr")].find(r => r.innerText.includes(%q)).querySelector('button[data-action="hangup"]').click()`, caller)))
		p.Wait("the hung-up call gone", fmt.Sprintf(`![...document.querySelectorAll("#calls tbody tr")].some(r => r.innerText.includes(%q))`, caller))
	}
	if n := len(f.media.Ops("hangup")); n < 2 {
		t.Errorf("media hangups after two clicks: %d", n)
	}

	// Transfer: the dialog offers available agents only.
	if _, err := f.svc.Heartbeat(ctx, presence.System, "a2"); err != nil {
		t.Fatal(err)
	}
	f.setStatus(t, "a2", "available")
	p.Wait("a2 free in the page", `(() => { const r = document.querySelector('#agents tr[data-agent="a2"]'); return !!r && r.querySelector("select").value === "available" && r.innerText.includes("online"); })()`)
	p.Run(chromedp.Evaluate[chromedp.Void](row + `.querySelector('button[data-action="transfer"]').click()`))
	p.Wait("the transfer dialog", `document.querySelector("#transfer-dlg").open && [...document.querySelectorAll("#transfer-agent option")].map(o => o.value).join() === "a2"`)
	p.Click(`#transfer-ok`)
	deadline = time.Now().Add(10 * time.Second)
	for ok := false; !ok && time.Now().Before(deadline); {
		_, ok = f.media.DialOf("a2")
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := f.media.DialOf("a2"); !ok {
		t.Fatal("transfer from the page never dialled a2")
	}
	if msg := testpeer.JS[string](p, `document.querySelector("#error").textContent`); msg != "" {
		t.Errorf("page shows an error: %q", msg)
	}
}

// englishLeft lists every English label still on the page in the
// page's current language: texts, placeholders, titles and aria-labels
// (hidden ones too: dialogs, other tabs) equal to an English catalog
// entry that this language translates differently. Data marked
// translate="no" (ids such as the agent "admin") is not a label.
const englishLeft = `(async () => {
  const { catalog } = await import("/i18n.js");
  const lang = document.documentElement.lang;
  const english = new Set(Object.keys(catalog.en).filter(k => catalog[lang][k] !== catalog.en[k]).map(k => catalog.en[k]));
  const left = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n; (n = walker.nextNode());) { const s = n.textContent.trim(); if (english.has(s) && !n.parentElement.closest('[translate="no"]')) left.push(s); }
  for (const e of document.querySelectorAll("[placeholder],[title],[aria-label]")) {
    for (const a of ["placeholder", "title", "aria-label"]) { const v = e.getAttribute(a); if (v && english.has(v.trim())) left.push(a + "=" + v); }
  }
  return [lang, ...left];
})()`

// TestConsoleLanguages: the catalog has every key in vi and ru; a browser
// speaking Vietnamese gets the console in Vietnamese, the switch gives
// Russian, and neither shows an English label on any view or on the
// agent desktop. Times and numbers follow the browser's locale.
func TestConsoleLanguages(t *testing.T) {
	f := newProductFloor(t)
	f.engine.Report(media.CallArrived{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-1", Caller: "+84901234567", Hotline: "+842873000001"})
	p := testpeer.Chromium(t, "vi-VN").SignIn(f.srv.URL, "/", "demo-admin")
	missing := testpeer.JS[[]string](p, `import("/i18n.js").then(({ catalog }) => ["vi", "ru"].flatMap(l => Object.keys(catalog.en).filter(k => !(k in catalog[l])).map(k => l + ":" + k)))`)
	if len(missing) > 0 {
		t.Errorf("catalog keys without a translation: %v", missing)
	}
	// Labels a language may legitimately share with English.
	same := testpeer.JS[[]string](p, `import("/i18n.js").then(({ catalog }) => ["vi", "ru"].flatMap(l => Object.keys(catalog.en).filter(k => catalog[l][k] === catalog.en[k]).map(k => l + ":" + k)))`)
	for _, k := range same {
		switch strings.SplitN(k, ":", 2)[1] {
		case "col.email", "agent.chat", "col.chat", "media.asterisk", "media.freeswitch", "mon.by":
		default:
			t.Errorf("%s is left in English", k)
		}
	}
	p.Wait("the call in the page", `document.querySelectorAll("#calls tbody tr").length === 1`)
	for _, lang := range []string{"vi", "ru"} {
		if lang == "ru" {
			p.Choose("#lang", "ru")
		}
		p.Wait(lang+" chosen", fmt.Sprintf(`document.documentElement.lang === %q`, lang))
		for _, view := range []string{"agents", "calls", "queues", "reports"} {
			p.Click(fmt.Sprintf(`nav button[data-view=%q]`, view))
			left := testpeer.JS[[]string](p, englishLeft)
			if left[0] != lang || len(left) > 1 {
				t.Errorf("%s %s view: English left: %q", lang, view, left[1:])
			}
		}
		if lang == "vi" && !testpeer.JS[bool](p, `document.querySelector("#calls tbody td:nth-child(10)").textContent.trim() !== ""`) {
			t.Error("no start time in Vietnamese")
		}
	}
	p.Shot("console-ru.png", 1920, 1080)
	for _, lang := range []string{"ru", "vi"} {
		a := testpeer.Chromium(t, lang).SignIn(f.srv.URL, "/agent", "demo-a"+map[string]string{"ru": "1", "vi": "2"}[lang])
		if left := testpeer.JS[[]string](a, englishLeft); left[0] != lang || len(left) > 1 {
			t.Errorf("agent desktop in %s: English left: %q", lang, left[1:])
		}
	}
}

// TestWallboardLink: /#token=…&wallboard signs in by itself, wipes the
// token from the address bar (it was a fragment: never sent to the
// server), and shows the large-type wallboard; the console's link button
// builds such a link.
func TestWallboardLink(t *testing.T) {
	f := newProductFloor(t)
	p := signIn(t, f.srv.URL, "/", "demo-sup-sales")
	p.Click("#wall-link")
	link := testpeer.JS[string](p, `document.querySelector("#wall-link").dataset.href`)
	if !strings.HasSuffix(link, "/#token=demo-sup-sales&wallboard") {
		t.Fatalf("wallboard link = %q", link)
	}
	w := testpeer.Chromium(t, "en-US")
	w.Run(chromedp.Navigate(link))
	w.Wait("the wallboard signed in and live", `document.body.classList.contains("wall") && document.querySelector("#live").classList.contains("on") && document.querySelectorAll("#agents tbody tr").length === 5`)
	if h := testpeer.JS[string](w, `location.hash`); h != "#wallboard" {
		t.Errorf("address bar still holds %q", h)
	}
	if testpeer.JS[bool](w, `!!document.querySelector("#agents select")`) {
		t.Error("the wallboard offers status controls")
	}
	if size := testpeer.JS[string](w, `getComputedStyle(document.body).fontSize`); size != "22px" {
		t.Errorf("wallboard type = %s", size)
	}
	f.engine.Report(media.CallArrived{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-1", Caller: "+84901234567", Hotline: "+842873000001"})
	w.Wait("the waiting call on the wallboard", `document.querySelector('#queues tr[data-queue="sales"] td:nth-child(2)').textContent === "1"`)
}

// TestConsoleStreamResumes: after the connection drops, the page
// reconnects with Last-Event-ID and shows what changed meanwhile.
func TestConsoleStreamResumes(t *testing.T) {
	f := newProductFloor(t)
	p := signIn(t, f.srv.URL, "/", "demo-admin")
	p.Click(`nav button[data-view="agents"]`)
	f.setStatus(t, "a5", "short_break")
	p.Wait("a5 on a short break", `document.querySelector('#agents tr[data-agent="a5"] select').value === "short_break"`)
	n := len(f.streamRequests())
	f.srv.CloseClientConnections()
	f.setStatus(t, "a5", "lunch_break")
	p.Wait("a5 at lunch after the blip", `document.querySelector('#agents tr[data-agent="a5"] select').value === "lunch_break"`)
	reqs := f.streamRequests()
	if len(reqs) <= n || reqs[len(reqs)-1] == "" {
		t.Errorf("stream requests (Last-Event-ID): %q", reqs)
	}
	p.Wait("live again", `document.querySelector("#live").classList.contains("on")`)

	// A position the log no longer has (as after a restart on the
	// in-memory store): the server sends "event: reset" and the page
	// reloads everything, staying signed in.
	p.Run(chromedp.Evaluate[chromedp.Void](`void (window.beforeReset = true)`))
	f.mu.Lock()
	f.forceID = "999999999"
	f.mu.Unlock()
	f.srv.CloseClientConnections()
	p.Wait("the page reloaded, signed in and live", `window.beforeReset === undefined && document.querySelector("#live").classList.contains("on") && document.querySelectorAll("#agents tbody tr").length === 11`)
}

// timerFromClick: the status timer counts from when the page recorded
// window.clickedAt (status times are whole seconds, hence the 1 s).
const timerFromClick = `(() => { const t = document.querySelector("#my-timer"); return Date.parse(t.dataset.since) >= window.clickedAt - 1000 && /^\d\d:\d\d$/.test(t.textContent); })()`

// TestAgentDesktop signs in as a1 at /agent: status and chat dropdowns
// (custom statuses included) act; a call rings with its number, hotline,
// queue and wait; the alert flashes before the ring timeout; the call
// rings out and the RONA popover offers the way back; "Go to available"
// restarts the timer; the next call is answered (connected timer), ends
// (wrap-up countdown, "End wrap-up"), and counts in today's figures;
// click-to-call starts an outbound call.
func TestAgentDesktop(t *testing.T) {
	f := newProductFloor(t)
	ctx := context.Background()
	nine := 9
	if _, err := f.engine.UpdateQueue(ctx, presence.System, "sales", routing.QueueInput{RingTimeoutSeconds: &nine}); err != nil {
		t.Fatal(err)
	}
	p := signIn(t, f.srv.URL, "/agent", "demo-a1")
	p.Wait("the status dropdown with custom statuses", `[...document.querySelectorAll("#my-status option")].map(o => o.value).join() === "available,unavailable,lunch_break,short_break,after_call_work,training"`)
	// The status lives on the server: a reload (signed in again from the
	// session) shows the custom status chosen before it, unchanged.
	p.Choose("#my-status", "training")
	f.waitAgent(t, "a1", func(a presence.Agent) bool { return a.CallStatus == "training" })
	p.Run(chromedp.Reload())
	p.Wait("training after the reload", `document.querySelector("#live").classList.contains("on") && document.querySelector("#my-status").value === "training"`)
	p.Choose("#my-chat", "available")
	f.waitAgent(t, "a1", func(a presence.Agent) bool { return a.ChatStatus == "available" && a.Online })
	p.Choose("#my-status", "available")
	f.waitAgent(t, "a1", func(a presence.Agent) bool { return a.CallStatus == "available" })

	// The tab is in the background, notifications allowed: the page's
	// Notification calls are recorded (headless chromium shows none).
	p.Run(chromedp.Evaluate[chromedp.Void](`void (window.tabHidden = true, Object.defineProperty(document, "hidden", { get: () => window.tabHidden }),
		window.shown = [], window.Notification = class { static permission = "granted"; constructor(title, o) { shown.push(title + ": " + o.body); } })`))
	f.engine.Report(media.CallArrived{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-1", Caller: "+84901234567", Hotline: "+842873000001"})
	p.Wait("one notification for the call", `shown.length === 1 && shown[0] === "Incoming call: Incoming call from +84901234567"`)
	p.Run(chromedp.Evaluate[chromedp.Void](`void (window.tabHidden = false)`))
	p.Wait("the incoming call", `document.querySelector("#callcard").classList.contains("ringing") && document.querySelector("#call-info").textContent.includes("+84901234567") && document.querySelector("#call-info").textContent.includes("+842873000001") && document.querySelector("#call-info").textContent.includes("Sales") && !!document.querySelector("#call-wait")`)
	if testpeer.JS[bool](p, `document.querySelector("#callcard").classList.contains("flash")`) {
		t.Error("the alert flashes from the first ring")
	}
	p.Wait("the flashing alert in the last 5 s", `document.querySelector("#callcard").classList.contains("flash")`)
	p.Wait("the RONA popover", `!document.querySelector("#rona").hidden`)
	// "Go to idle": the default idle status, timer from 00:00 ("Go to
	// available" is the SIP product test's, cmd/callfloor).
	p.Run(chromedp.Evaluate[chromedp.Void](`void (window.clickedAt = Date.now())`))
	p.Click("#rona-idle")
	p.Wait("idle, the timer counting from the click", `document.querySelector("#rona").hidden && document.querySelector("#my-status").value === "unavailable" && document.querySelector("#my-system").textContent === "free" && `+timerFromClick)
	f.waitAgent(t, "a1", func(a presence.Agent) bool {
		return a.CallStatus == "unavailable" && a.SystemStatus == presence.SysAvailable
	})
	p.Choose("#my-status", "available")

	// The caller is still waiting: routing offers it to a1 again; a1 answers.
	var dial routingtest.Command
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		ds := f.media.Dials()
		if len(ds) >= 2 && ds[len(ds)-1].Dial.Target.AgentID == "a1" {
			dial = ds[len(ds)-1]
			break
		}
	}
	if dial.Result == "" {
		t.Fatalf("a1 never rung again: %+v", f.media.Dials())
	}
	f.engine.Report(media.LegAnswered{FactBase: media.FactBase{At: time.Now()}, Leg: dial.Result})
	p.Wait("connected, timer moving", `document.querySelector("#callcard").classList.contains("talking") && /^\d\d:\d\d$/.test(document.querySelector("#call-connected").textContent) && document.querySelector("#call-connected").textContent !== "00:00"`)
	p.Wait("one call answered today", `document.querySelector("#f-answered").textContent === "1"`)
	f.engine.Report(media.LegEnded{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-1", Cause: media.CauseNormal})
	p.Wait("wrap-up with its countdown", `!document.querySelector("#wrapup").hidden && /00:[0-3]\d/.test(document.querySelector("#wrapup-left").textContent)`)
	p.Click("#end-wrapup")
	f.waitAgent(t, "a1", func(a presence.Agent) bool { return a.SystemStatus == presence.SysAvailable })
	p.Wait("wrap-up over", `document.querySelector("#wrapup").hidden`)

	p.Run(chromedp.SendKeys(chromedp.ID("dial-number"), "+84909999999"), chromedp.SendKeys(chromedp.ID("dial-campaign"), "renewals"))
	p.Click(`#dial-form button[type="submit"]`)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && len(f.media.Dials()) < 3; time.Sleep(50 * time.Millisecond) {
	}
	calls, err := f.engine.Calls(ctx, presence.System, routing.CallFilter{Direction: "outbound"})
	if err != nil || len(calls) != 1 || calls[0].CustomerNumber != "+84909999999" || calls[0].Campaign == nil || *calls[0].Campaign != "renewals" {
		t.Errorf("click-to-call: %+v %v", calls, err)
	}
	if msg := testpeer.JS[string](p, `document.querySelector("#error").textContent`); msg != "" {
		t.Errorf("page shows an error: %q", msg)
	}
}

// TestConsoleRingingAgents: while a ring_all call rings, the calls view
// names every agent being rung.
func TestConsoleRingingAgents(t *testing.T) {
	f := newProductFloor(t)
	ctx := context.Background()
	ringAll := routing.RingAll
	if _, err := f.engine.UpdateQueue(ctx, presence.System, "sales", routing.QueueInput{Strategy: &ringAll}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a1", "a2"} {
		if _, err := f.svc.Heartbeat(ctx, presence.System, id); err != nil {
			t.Fatal(err)
		}
		f.setStatus(t, id, "available")
	}
	p := signIn(t, f.srv.URL, "/", "demo-sup-sales")
	p.Click(`nav button[data-view="calls"]`)
	f.engine.Report(media.CallArrived{FactBase: media.FactBase{At: time.Now()}, Leg: "cust-1", Caller: "+84901234567", Hotline: "+842873000001"})
	p.Wait("both agents being rung", `(() => { const r = document.querySelector("#calls .ringing-agents"); return !!r && r.textContent === "ringing An Nguyen, Binh Tran"; })()`)
	p.Choose("#f-call-agent", "a2")
	if n := p.Rows("calls"); n != 1 {
		t.Errorf("calls ringing a2: %d rows", n)
	}
}
