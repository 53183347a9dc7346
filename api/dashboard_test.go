package api_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/callfloor/callfloor/internal/testpeer"
	"github.com/callfloor/callfloor/presence"
)

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
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(func() { cancelTimeout(); cancelCtx(); cancelAlloc() })
	return ctx
}

// TestDashboardInChromium logs in as a supervisor in a real browser,
// sees their floor, and changes an agent's status through the page; the
// change must reach the store.
func TestDashboardInChromium(t *testing.T) {
	d := newDemo(t)
	ctx := browser(t)
	q := func(sel string) chromedp.CSS { return chromedp.CSS(sel) }
	err := chromedp.Do(ctx,
		chromedp.Navigate(d.srv.URL+"/"),
		chromedp.WaitVisible(q("#token")),
		chromedp.SendKeys(q("#token"), "demo-sup-sales"),
		chromedp.Click(q("#login button")),
		chromedp.WaitVisible(q(`#agents tr[data-agent="a1"]`)),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	rows, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#agents tbody tr").length`))
	if err != nil {
		t.Fatal(err)
	}
	who, err := chromedp.Run(ctx, chromedp.Text(q("#who")))
	if err != nil {
		t.Fatal(err)
	}
	err = chromedp.Do(ctx,
		chromedp.SetValue(q(`select[aria-label="call status of a1"]`), "available"),
		chromedp.Evaluate[chromedp.Void](`void document.querySelector('select[aria-label="call status of a1"]').dispatchEvent(new Event("change"))`),
		chromedp.WaitVisible(q(`#agents tr[data-agent="a1"] select`)),
	)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	// The page re-renders from the server's answer; wait for it.
	var a1Status string
	for range 50 {
		a1Status, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#agents tr[data-agent="a1"] select').value`))
		if err == nil && a1Status == "available" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if rows != 5 {
		t.Errorf("sales supervisor sees %d agent rows, want 5", rows)
	}
	if !strings.Contains(who, "supervisor") {
		t.Errorf("who = %q", who)
	}
	a, err := d.svc.Agent(context.Background(), "a1")
	if err != nil || a.CallStatus != presence.StatusAvailable || a1Status != "available" {
		t.Fatalf("a1 after the page changed it: %s (page %s) %v", a.CallStatus, a1Status, err)
	}
	rowsHist, _ := d.svc.History(context.Background(), presence.System, "a1", time.Time{}, time.Time{})
	if len(rowsHist) == 0 || rowsHist[len(rowsHist)-1].By != "sup-sales" {
		t.Errorf("history does not credit sup-sales: %+v", rowsHist)
	}
	if dir := os.Getenv("CALLFLOOR_SCREENSHOTS"); dir != "" {
		if png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "dashboard.png"), png, 0o644)
		}
	}
}
