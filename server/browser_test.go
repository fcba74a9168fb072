package server_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"onecard/estate"
	"onecard/store/storetest"
)

// chromium returns the browser to drive: ONECARD_TEST_CHROMIUM, else
// Debian's. Without one the test skips, or fails under CI.
func chromium(t *testing.T) string {
	t.Helper()
	p := os.Getenv("ONECARD_TEST_CHROMIUM")
	if p == "" {
		if found, err := exec.LookPath("chromium"); err == nil {
			p = found
		}
	}
	if p == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("no Chromium: set ONECARD_TEST_CHROMIUM (under CI the browser tests must run)")
		}
		t.Skip("no Chromium found; set ONECARD_TEST_CHROMIUM to run the browser tests")
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("Chromium at %s: %v", p, err)
	}
	return p
}

func browser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancel)
	ctx, cancel2 := chromedp.NewContext(actx)
	t.Cleanup(cancel2)
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancel3)
	return ctx
}

// screenshot saves what is on b's screen as a test artefact, NAME.png in
// ONECARD_SCREENSHOT_DIR (nothing without it): the whole page, or the
// viewport only where a full-page capture would move the page's scroll
// under the next click (the desk's forms).
func screenshot(t *testing.T, b context.Context, name string, fullPage bool) {
	t.Helper()
	dir := os.Getenv("ONECARD_SCREENSHOT_DIR")
	if dir == "" {
		return
	}
	capture := chromedp.CaptureScreenshot()
	if fullPage {
		capture = chromedp.FullScreenshot(100)
	}
	png, err := chromedp.Run(b, capture)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// kioskShot saves the kiosk's screen, whole.
func kioskShot(t *testing.T, b context.Context, name string) {
	t.Helper()
	screenshot(t, b, "kiosk-"+name, true)
}

// mailShot saves the desk's viewport.
func mailShot(t *testing.T, b context.Context, name string) {
	t.Helper()
	screenshot(t, b, "desk-"+name, false)
}

// signIn opens url, where the desk first asks who is there, signs in as
// user (the test sites' password is "password-" + user) and waits until
// the page it was going to shows landing.
func signIn(t *testing.T, b context.Context, url, user, landing string) {
	t.Helper()
	err := chromedp.Do(b,
		chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS("#username")),
		chromedp.SendKeys(chromedp.CSS("#username"), user),
		chromedp.SendKeys(chromedp.CSS("#password"), "password-"+user),
		chromedp.Click(chromedp.CSS("#login")),
		chromedp.WaitVisible(chromedp.CSS(landing)),
	)
	if err != nil {
		t.Fatalf("signing in as %s at %s: %v", user, url, err)
	}
}

// pageText is the text of the element sel on b's page; a missing one
// fails the test.
func pageText(t *testing.T, b context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(b, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("%s: %v", sel, err)
	}
	return s
}

// pageEval evaluates js, which yields a string, on b's page.
func pageEval(t *testing.T, b context.Context, js string) string {
	t.Helper()
	s, err := chromedp.Run(b, chromedp.Evaluate[string](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return s
}

// pageWait polls js on b's page, across navigations, until it is true,
// failing the test after 20 s.
func pageWait(t *testing.T, b context.Context, what, js string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		ok, err := chromedp.Run(b, chromedp.Evaluate[bool](js))
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s (%s): %v", what, js, err)
		}
	}
}

// TestClerkFindsAUnitInTheBrowser: a clerk logs in on the desk, searches
// for a unit and sees who lives there.
func TestClerkFindsAUnitInTheBrowser(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	ctx := context.Background()
	if _, err := e.es.CreateUnit(ctx, estate.UnitInput{Code: "3-2-1801", Area: 12650, HandoverDate: "2021-06-30"}); err != nil {
		t.Fatal(err)
	}
	owner, err := e.es.MoveIn(ctx, "3-2-1801", estate.MoveIn{Role: estate.Owner, MovedInOn: "2021-07-01",
		Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.es.MoveIn(ctx, "3-2-1801", estate.MoveIn{Role: estate.Family, ConfirmedBy: owner.PersonID,
		Person: &estate.PersonInput{Name: "陈一诺", Phone: "13900139000", IDType: "resident_id", IDLast4: "0021"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.es.MoveIn(ctx, "3-2-1801", estate.MoveIn{Role: estate.Tenant, MovedInOn: "2026-01-01", LeaseStart: "2026-01-01",
		LeaseEnd: "2027-12-31", ConsentMethod: "written", Person: &estate.PersonInput{Name: "刘洋", Phone: "13700137000", IDType: "passport", IDLast4: "9876"}}); err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// Not logged in: the desk sends the clerk to the login page, then
	// back where the clerk was going, with the search done.
	signIn(t, b, e.url+"/units?q=3-2-1801", "clerk", "#results")
	results, err := chromedp.Run(b, chromedp.Text(css("#results")))
	if err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, chromedp.Click(css("#results a")), chromedp.WaitVisible(css("#residents"))); err != nil {
		t.Fatal(err)
	}
	heading, err := chromedp.Run(b, chromedp.Text(css("h1")))
	if err != nil {
		t.Fatal(err)
	}
	residents, err := chromedp.Run(b, chromedp.Text(css("#residents")))
	if err != nil {
		t.Fatal(err)
	}
	shot, err := chromedp.Run(b, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	// The language switch turns the same page into English.
	if err := chromedp.Do(b, chromedp.Click(css(`a[href^="/lang/en"]`)), chromedp.WaitVisible(css("#residents"))); err != nil {
		t.Fatal(err)
	}
	english, err := chromedp.Run(b, chromedp.Text(css("#residents")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(english, "Owner") || !strings.Contains(english, "Family member") {
		t.Errorf("after switching to English the residents table reads:\n%s", english)
	}
	if !strings.Contains(results, "3-2-1801") || !strings.Contains(results, "陈建华") {
		t.Fatalf("search results do not show the unit and its owner:\n%s", results)
	}
	if !strings.Contains(heading, "3-2-1801") {
		t.Fatalf("unit page heading %q", heading)
	}
	for _, want := range []string{"陈建华", "业主", "陈一诺", "家庭成员", "****123X", "刘洋", "租户", "书面同意"} {
		if !strings.Contains(residents, want) {
			t.Errorf("residents table lacks %q:\n%s", want, residents)
		}
	}
	if dir := os.Getenv("ONECARD_SCREENSHOT_DIR"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, "desk-unit.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
