package testpeer

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Chromium starts headless Debian chromium speaking lang (its
// navigator.language, e.g. "vi-VN") for one test, with the flags that
// keep it off the network, and returns a tab.
func Chromium(t *testing.T, lang string) *Page {
	t.Helper()
	exe := Require(t, "chromium", "chromium")
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true), chromedp.Flag("disable-quic", true),
		chromedp.Flag("lang", lang), chromedp.Flag("accept-lang", lang), chromedp.WindowSize(1600, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 150*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return &Page{t: t, ctx: ctx}
}

// Page drives one chromium tab; every method fails the test on error.
type Page struct {
	t   *testing.T
	ctx context.Context
}

// Run runs chromedp actions in order.
func (p *Page) Run(actions ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	if err := chromedp.Do(p.ctx, actions...); err != nil {
		p.t.Fatalf("browser: %v", err)
	}
}

// JS evaluates expr in the page (awaiting a promise) as a T.
func JS[T any](p *Page, expr string) T {
	p.t.Helper()
	v, err := chromedp.Run(p.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// Wait polls a JavaScript predicate until it is true (20 s at most).
func (p *Page) Wait(what, expr string) {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		ok, err := chromedp.Run(p.ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	body, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.innerText`))
	p.t.Fatalf("page never showed %s (%s)\n%s", what, expr, body)
}

// Click clicks the first element matching a CSS selector once it exists
// and is enabled.
func (p *Page) Click(sel string) {
	p.t.Helper()
	p.Wait("clickable "+sel, fmt.Sprintf(`(() => { const b = document.querySelector(%q); return !!b && !b.disabled; })()`, sel))
	p.Run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`void document.querySelector(%q).click()`, sel)))
}

// Choose sets a <select> and fires change, as a user picking does.
func (p *Page) Choose(sel, value string) {
	p.t.Helper()
	p.Run(chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`(() => { const s = document.querySelector(%q); s.value = %q; s.dispatchEvent(new Event("change")); })()`, sel, value)))
}

// Rows counts the rows of a table body (by table id).
func (p *Page) Rows(table string) int {
	p.t.Helper()
	return JS[int](p, fmt.Sprintf(`document.querySelectorAll("#%s tbody tr").length`, table))
}

// Shot saves a w×h screenshot as $CALLFLOOR_SCREENSHOTS/name (nothing
// when unset; README.md shows the command that refreshes docs/screenshots).
func (p *Page) Shot(name string, w, h int64) {
	p.t.Helper()
	dir := os.Getenv("CALLFLOOR_SCREENSHOTS")
	if dir == "" {
		return
	}
	p.Run(chromedp.EmulateViewport(w, h), chromedp.Sleep(300*time.Millisecond))
	png, err := chromedp.Run(p.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// SignIn opens base+path and signs in with token through the page's
// sign-in form, then waits for the live event stream.
func (p *Page) SignIn(base, path, token string) *Page {
	p.t.Helper()
	p.Run(chromedp.Navigate(base+path), chromedp.WaitVisible(chromedp.ID("token")))
	p.Run(chromedp.SendKeys(chromedp.ID("token"), token))
	p.Click(`#login-form button[type="submit"]`)
	p.Wait("the live stream", `document.querySelector("#live").classList.contains("on")`)
	return p
}
