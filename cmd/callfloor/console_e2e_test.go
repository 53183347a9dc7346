package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/callfloor/callfloor/internal/testpeer"
)

// TestConsoleOverSIP is issue 13's acceptance over the whole product on
// the built-in SIP path, with sipp phones and trunk and headless chromium:
// the sales supervisor sees only sales; a status change made through the
// API moves the row and the Today counters without reload; an admin sees
// a real call appear with a moving timer, every supervisor action enabled
// (the SIP path anchors media), and hangs the call up from the page (both
// sipp ends get their BYE); the wallboard link opens signed in; an agent
// ends wrap-up from the desktop, lets the next call ring out, gets the
// RONA popover, and "Go to available" restarts the timer at 00:00.
// With CALLFLOOR_SCREENSHOTS set it saves the README's screenshots.
func TestConsoleOverSIP(t *testing.T) {
	testpeer.Require(t, "sipp", "sip-tester")
	sipAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreeDualPort(t))
	// The sipp phones send no RTP; the anchored call must outlive the
	// ghost-call timeout while the pages are looked at.
	p := start(t, map[string]string{"CALLFLOOR_SIP_ADDR": sipAddr, "CALLFLOOR_SIP_RTP_TIMEOUT_SECONDS": "600"})
	defer p.stop()

	sup := testpeer.Chromium(t, "en-US").SignIn(p.base, "/", "demo-sup-sales")
	sup.Click(`nav button[data-view="agents"]`)
	sup.Wait("the five sales agents only", `document.querySelectorAll("#agents tbody tr").length === 5 && !document.querySelector('#agents tr[data-agent="a5"]')`)
	sup.Wait("the sales counters", `document.querySelector("#scope").value === "group:sales" && document.querySelector("#e-free").textContent === "0"`)

	// a1's phone registers; a1 logs in and becomes available through the API.
	phone := testpeer.FreeUDPPort(t)
	runSipp(t, "register a1", sipAddr, phone, "-sf", scenarioPath("register.xml"), "-m", "1",
		"-au", "a1", "-ap", "sip-a1", "-key", "user", "a1", "-key", "expires", "3600").wait(t, 20*time.Second)
	if code := p.call("POST", "/v1/agents/a1/heartbeat", "demo-a1", "", nil); code != 200 {
		t.Fatalf("a1 heartbeat: %d", code)
	}
	for _, s := range []struct{ status, free string }{{"available", "1"}, {"lunch_break", "0"}, {"available", "1"}} {
		if code := p.call("PUT", "/v1/agents/a1/status", "demo-admin", `{"call_status":"`+s.status+`"}`, nil); code != 200 {
			t.Fatalf("a1 %s: %d", s.status, code)
		}
		sup.Wait("a1 "+s.status+" in the row and the free counter at "+s.free, fmt.Sprintf(
			`document.querySelector('#agents tr[data-agent="a1"] select').value === %q && document.querySelector("#e-free").textContent === %q`, s.status, s.free))
	}

	// A trunk call to the sales hotline; a1's phone answers.
	adm := testpeer.Chromium(t, "en-US").SignIn(p.base, "/", "demo-admin")
	adm.Click(`nav button[data-view="calls"]`)
	agent := runSipp(t, "a1 answers", "", phone, "-sf", scenarioPath("agent_answer_anchored.xml"), "-m", "1", "-key", "agent", "a1")
	caller := runSipp(t, "trunk caller", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_until_bye_anchored.xml"),
		"-m", "1", "-s", "+842873000001")
	row := `[...document.querySelectorAll("#calls tbody tr")].find(r => r.textContent.includes("+4930123456"))`
	adm.Wait("the answered call", `(() => { const r = `+row+`; return !!r && r.textContent.includes("talking") && r.textContent.includes("An Nguyen") && r.textContent.includes("+842873000001") && r.textContent.includes("sales"); })()`)
	cells := testpeer.JS[[]string](adm, `[...`+row+`.querySelectorAll("td")].map(td => td.textContent.trim())`)
	if len(cells) != 13 || !strings.HasPrefix(cells[0], "c-") || cells[4] != "inbound" || cells[8] == "" || cells[9] == "" {
		t.Errorf("call row = %q", cells)
	}
	before := testpeer.JS[string](adm, row+`.querySelector("td:nth-child(7)").textContent`)
	adm.Wait("the call timer to move", row+fmt.Sprintf(`.querySelector("td:nth-child(7)").textContent !== %q`, before))
	adm.Wait("the floor's talking counter", `document.querySelector("#c-talking").textContent === "1" && document.querySelector("#e-talking").textContent === "1"`)
	for _, a := range []string{"listen", "whisper", "barge", "takeover"} {
		why := testpeer.JS[string](adm, row+fmt.Sprintf(`.querySelector('button[data-action=%q]').disabled ? %s.querySelector('button[data-action=%q]').title : "enabled"`, a, row, a))
		if why != "enabled" {
			t.Errorf("%s on the anchored SIP path: %q, want enabled", a, why)
		}
	}
	adm.Shot("console-calls.png", 1920, 1080)
	adm.Run(chromedp.EmulateViewport(1366, 768))
	if fits := testpeer.JS[bool](adm, `(() => { const s = document.querySelector("#calls").parentElement; return s.scrollWidth <= s.clientWidth; })()`); !fits {
		t.Error("the calls table overflows at 1366×768")
	}
	adm.Shot("console-1366.png", 1366, 768)
	adm.Click(`nav button[data-view="agents"]`)
	adm.Wait("a1 talking in the agents view", `document.querySelector('#agents tr[data-agent="a1"] .sys-talking') !== null`)
	adm.Shot("console.png", 1920, 1080)
	// Logging out an agent on a call: the API's 409, shown plainly.
	adm.Click(`#agents tr[data-agent="a1"] button[data-action="logout"]`)
	adm.Wait("the refusal", `document.querySelector("#error").textContent.startsWith("Refused: ") && document.querySelector("#error").textContent.includes("call in progress")`)

	// The wallboard link, opened in another browser, is signed in.
	adm.Click("#wall-link")
	link := testpeer.JS[string](adm, `document.querySelector("#wall-link").dataset.href`)
	wall := testpeer.Chromium(t, "en-US")
	wall.Run(chromedp.Navigate(link))
	wall.Wait("the wallboard, signed in", `document.body.classList.contains("wall") && document.querySelector("#live").classList.contains("on") && location.hash === "#wallboard" && document.querySelector("#c-talking").textContent === "1"`)
	wall.Shot("wallboard.png", 1920, 1080)

	// Hang up from the page: both sipp ends get their BYE.
	adm.Click(`nav button[data-view="calls"]`)
	adm.Run(chromedp.Evaluate[chromedp.Void](row + `.querySelector('button[data-action="hangup"]').click()`))
	caller.wait(t, 15*time.Second)
	agent.wait(t, 15*time.Second)
	adm.Wait("the call gone", `!`+row)

	// Reports: the call in the calls report (once the projection has it),
	// filters narrow, the queue report counts it, CSV downloads.
	adm.Click(`nav button[data-view="reports"]`)
	adm.Wait("the call in the calls report", `(document.querySelector("#report-run").click(), [...document.querySelectorAll("#report tbody tr")].some(r => r.textContent.includes("+4930123456") && r.textContent.includes("answered") && r.textContent.includes("An Nguyen")))`)
	adm.Choose("#rep-outcome", "abandoned")
	adm.Wait("no abandoned call", `(document.querySelector("#report-run").click(), document.querySelectorAll("#report tbody tr").length === 0 && !document.querySelector("#report-empty").hidden)`)
	adm.Choose("#rep-outcome", "")
	adm.Choose("#rep-kind", "queues")
	adm.Wait("sales answered 1 in the queue report", `(document.querySelector("#report-run").click(), [...document.querySelectorAll("#report tbody tr")].some(r => r.cells[0].textContent === "Sales" && r.cells[2].textContent === "1" && r.cells[3].textContent === "1"))`)
	adm.Shot("console-reports.png", 1920, 1080)
	adm.Choose("#rep-kind", "calls")
	downloads := t.TempDir()
	adm.Run(chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads})
		return err
	}))
	adm.Click("#report-csv")
	var csv []byte
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline) && csv == nil; time.Sleep(100 * time.Millisecond) {
		files, _ := filepath.Glob(filepath.Join(downloads, "callfloor-calls-*.csv"))
		if len(files) == 1 {
			csv, _ = os.ReadFile(files[0])
		}
	}
	if !bytes.HasPrefix(csv, []byte("id,")) || !bytes.Contains(csv, []byte("+4930123456")) {
		t.Errorf("downloaded CSV:\n%s", csv)
	}

	// The agent desktop: end the wrap-up, then let a call ring out.
	if code := p.call("PATCH", "/v1/queues/sales", "demo-admin", `{"ring_timeout_seconds":9}`, nil); code != 200 {
		t.Fatalf("ring timeout: %d", code)
	}
	ag := testpeer.Chromium(t, "en-US").SignIn(p.base, "/agent", "demo-a1")
	ag.Wait("the wrap-up countdown", `!document.querySelector("#wrapup").hidden && /\d\d:\d\d/.test(document.querySelector("#wrapup-left").textContent)`)
	ag.Click("#end-wrapup")
	ag.Wait("free again", `document.querySelector("#wrapup").hidden && document.querySelector("#my-system").textContent === "free"`)
	noanswer := runSipp(t, "a1 never answers", "", phone, "-sf", scenarioPath("agent_noanswer.xml"), "-m", "1")
	// The caller gives up 12 s in, after the 9 s ring-out.
	caller = runSipp(t, "trunk caller gives up", sipAddr, testpeer.FreeUDPPort(t), "-sf", scenarioPath("caller_anchored.xml"),
		"-m", "1", "-s", "+842873000001", "-d", "12000")
	ag.Wait("the incoming call", `document.querySelector("#callcard").classList.contains("ringing") && document.querySelector("#call-info").textContent.includes("+4930123456") && document.querySelector("#call-info").textContent.includes("Sales")`)
	ag.Shot("agent.png", 1366, 768)
	ag.Wait("the alert flashing before the ring-out", `document.querySelector("#callcard").classList.contains("flash")`)
	ag.Wait("the RONA popover", `!document.querySelector("#rona").hidden`)
	ag.Shot("agent-rona.png", 1366, 768)
	noanswer.wait(t, 15*time.Second)
	caller.wait(t, 20*time.Second)
	// "Go to available" restarts the status timer: it counts from the click
	// (status times are whole seconds, hence the 1 s).
	ag.Run(chromedp.Evaluate[chromedp.Void](`void (window.clickedAt = Date.now())`))
	ag.Click("#rona-available")
	ag.Wait("available with the timer from 00:00", `document.querySelector("#rona").hidden && document.querySelector("#my-status").value === "available" && (() => { const t = document.querySelector("#my-timer"); return Date.parse(t.dataset.since) >= window.clickedAt - 1000 && /^\d\d:\d\d$/.test(t.textContent); })()`)
	for _, pg := range []*testpeer.Page{sup, adm, ag} {
		if msg := testpeer.JS[string](pg, `document.querySelector("#error").textContent`); msg != "" {
			t.Errorf("page shows an error: %q", msg)
		}
	}
}
