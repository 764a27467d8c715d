package statuspage

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/canarybot/canarybot/pkg/canary"
	"github.com/canarybot/canarybot/pkg/gates"
)

// screenshotPath is the README's screenshot, rewritten when
// CANARYBOT_UPDATE_SCREENSHOT=1.
const screenshotPath = "../../docs/status-page.png"

// findBrowser returns Debian's chromium (or another Chrome) on PATH. Without
// one the test skips, unless CANARYBOT_REQUIRE_BROWSER is set (CI sets it,
// so the browser test never silently goes missing there).
func findBrowser(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CANARYBOT_REQUIRE_BROWSER") != "" {
		t.Fatal("CANARYBOT_REQUIRE_BROWSER is set but no chromium is on PATH: apt-get install chromium")
	}
	t.Skip("no chromium on PATH: the status page's browser test needs Debian's chromium (apt-get install chromium); " +
		"set CANARYBOT_REQUIRE_BROWSER=1 to make its absence an error")
	return ""
}

// consoleErrors collects what the page reports as wrong: console errors
// and assertions, uncaught exceptions, and browser log errors (a failed
// resource load, a Content-Security-Policy violation).
type consoleErrors struct {
	mu   sync.Mutex
	errs []string
}

func (c *consoleErrors) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError || ev.Type == runtime.ConsoleAPICalledTypeAssert {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(args, " "))
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, d.Text)
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
	case *log.EventEntryAdded:
		if ev.Entry.Level == log.EntryLevelError {
			msg = fmt.Sprintf("browser log (%s) %s: %s", ev.Entry.Source, ev.Entry.URL, ev.Entry.Text)
		}
	}
	if msg != "" {
		c.mu.Lock()
		c.errs = append(c.errs, msg)
		c.mu.Unlock()
	}
}

func (c *consoleErrors) list() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.errs...)
}

// The status page in a real headless chromium: the fleet view lists the
// promoted, reverted and progressing rollouts and the invalid plan; the
// reverted rollout's page shows its reason and the judge's numbers as
// visible text and draws the chart; a phone-sized viewport needs no
// sideways scrolling; and nothing goes to the console.
func TestStatusPageInBrowser(t *testing.T) {
	browser := findBrowser(t)
	started := time.Now()
	w := newWorld(t)
	srv := httptest.NewServer(newTestPage(t, w).Handler())
	t.Cleanup(srv.Close)
	reverted := w.stateOf(t, planReverted)
	ests := gates.ParseJudgeEstimates(reverted.Status.Gates[0].Reason)
	if len(ests) != 1 || !ests[0].Worse {
		t.Fatalf("the reverted rollout's judge recorded %+v", ests)
	}
	t.Logf("world built in %s", time.Since(started).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	var chromeOut strings.Builder
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(&chromeOut))
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	var console consoleErrors
	tab, cancelTab := chromedp.NewContext(allocCtx, chromedp.WithListener(console.listen))
	defer cancelTab()

	if err := chromedp.Do(tab, chromedp.Navigate(srv.URL+"/")); err != nil {
		t.Fatalf("load the fleet view: %v\nchromium: %s", err, chromeOut.String())
	}
	fleet, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS("main")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{planPromoted, planReverted, planProgressing, canary.PhasePromoted, canary.PhaseReverted,
		canary.PhaseProgressing, ".canarybot/plans/broken.yaml", "setWeight: must be between 0 and 100", "sha256:222222222222"} {
		if !strings.Contains(fleet, want) {
			t.Errorf("the fleet view does not show %q:\n%s", want, fleet)
		}
	}

	// Follow the link, as a reader would.
	if err := chromedp.Do(tab, chromedp.Click(chromedp.CSS(`a[href="/rollouts/`+planReverted+`"]`)),
		chromedp.WaitVisible(chromedp.ID("reason"))); err != nil {
		t.Fatalf("open the reverted rollout: %v", err)
	}
	checkRevertedPage(t, tab, reverted, ests[0])
	png := checkChartAndPhone(t, tab)
	path := filepath.Join(t.TempDir(), "status-page.png")
	if os.Getenv("CANARYBOT_UPDATE_SCREENSHOT") == "1" {
		path = screenshotPath
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes); browser part took %s", path, len(png), time.Since(started).Round(time.Millisecond))
	if errs := console.list(); len(errs) > 0 {
		t.Errorf("the page reported errors:\n%s", strings.Join(errs, "\n"))
	}
}

// checkRevertedPage checks the visible text of the reverted rollout's
// page: its reason, and its gate's verdict and numbers.
func checkRevertedPage(t *testing.T, tab context.Context, st *canary.RolloutState, e gates.JudgeEstimate) {
	t.Helper()
	reason, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("reason")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(reason, st.Status.Reason) || !strings.Contains(reason, "revert") {
		t.Errorf("reason reads %q, want the state's %q", reason, st.Status.Reason)
	}
	table, err := chromedp.Run(tab, chromedp.Text(chromedp.ID("gate-table")))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"judge", "✗ Failed", fmt.Sprintf("errors %.2f× [%.2f, %.2f]", e.Estimate, e.Low, e.High),
		fmt.Sprintf("over %.0f canary requests", e.CanaryRequests), "below the margin (errors 2×)", st.Status.Gates[0].Window} {
		if !strings.Contains(table, want) {
			t.Errorf("the gate table does not show %q:\n%s", want, table)
		}
	}
	timeline, err := chromedp.Run(tab, chromedp.Text(chromedp.CSS(`section[aria-labelledby="timeline"]`)))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(timeline, "start") || !strings.Contains(timeline, "revert") {
		t.Errorf("the timeline lacks the start or the revert:\n%s", timeline)
	}
}

// checkChartAndPhone checks that the judge's SVG chart is drawn with its
// point, that a phone-sized viewport scrolls only down, and returns a
// screenshot of the whole page at desktop width.
func checkChartAndPhone(t *testing.T, tab context.Context) []byte {
	t.Helper()
	size, err := chromedp.Run(tab, chromedp.Evaluate[[]float64](`(() => {
		const r = document.querySelector("svg.judge-chart").getBoundingClientRect();
		return [r.width, r.height, document.querySelectorAll("svg.judge-chart g.point").length];
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if len(size) != 3 || size[0] <= 0 || size[1] <= 0 || size[2] < 1 {
		t.Errorf("judge chart [width, height, points] = %v, want a drawn chart with a point", size)
	}
	png, err := chromedp.Run(tab, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(tab, chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile)); err != nil {
		t.Fatal(err)
	}
	overflow, err := chromedp.Run(tab, chromedp.Evaluate[float64](`document.documentElement.scrollWidth - window.innerWidth`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow > 0 {
		t.Errorf("on a 390px-wide phone the page is %.0fpx wider than the screen", overflow)
	}
	return png
}
