package server_test

import (
	"bytes"
	"context"
	"image/png"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"onecard/auth"
	"onecard/devices"
	"onecard/devices/scanner"
	"onecard/estate"
	firmwaresim "onecard/firmware-sim"
	scannersim "onecard/firmware-sim/scanner"
	"onecard/mailroom"
	"onecard/store/storetest"
)

// deskScanner is the desk's barcode scanner: the simulator on a pty at
// 9600 baud, read by the real driver over a serial port, its codes
// published to feed as onecard serve does.
func deskScanner(t testing.TB, feed *scanner.Feed) *scannersim.Sim {
	t.Helper()
	link := t.TempDir() + "/scanner"
	pty, err := firmwaresim.OpenPTY(link)
	if err != nil {
		t.Fatalf("pty: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	sim := scannersim.New(scannersim.Options{Baud: 9600, Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	simDone := make(chan struct{})
	go func() { defer close(simDone); sim.Serve(ctx, pty) }()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: link, Baud: 9600, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sc := scanner.New(port, nil)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		feed.Read(ctx, sc, nil)
	}()
	t.Cleanup(func() {
		cancel()
		sc.Close()
		<-readDone
		port.Close()
		<-simDone
		pty.Close()
	})
	return sim
}

// TestMailBatchInTheBrowser: a clerk registers a courier's drop at the
// desk. The scanner's codes land in the tracking field of the row being
// filled and the focus moves to the unit; the unit is picked by typing a
// resident's name or the start of its code; a keyboard-wedge scan (typed,
// Enter) works too. The batch is registered and the items wait for their
// units. Then the resident collects a parcel at the desk and signs on the
// pad: collected, the signature kept.
func TestMailBatchInTheBrowser(t *testing.T) {
	feed := &scanner.Feed{}
	scanFeed = feed.Watch
	defer func() { scanFeed = nil }()
	sim := deskScanner(t, feed)
	e := start(t, storetest.SQLite(t))
	ctx := auth.WithActor(context.Background(), auth.Actor{Kind: "staff", ID: 1, Name: "admin", Role: auth.Admin})
	for _, u := range []string{"3-2-1801", "1-1-102"} {
		if _, err := e.es.CreateUnit(ctx, estate.UnitInput{Code: u, Area: 9000, HandoverDate: "2020-01-01"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.es.MoveIn(ctx, "3-2-1801", estate.MoveIn{Role: estate.Owner, MovedInOn: "2021-07-01",
		Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}}); err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(sel string) string { t.Helper(); return pageText(t, b, sel) }
	eval := func(js string) string { t.Helper(); return pageEval(t, b, js) }
	wait := func(what, js string) { t.Helper(); pageWait(t, b, what, js) }
	focused := `document.activeElement && document.activeElement.name || ""`
	signIn(t, b, e.url+"/mail/new", "clerk", "#mail-form")
	err := chromedp.Do(b, chromedp.SendKeys(css("#carrier"), "顺丰速运"))
	if err != nil {
		t.Fatal(err)
	}
	wait("the scanner stream", `document.getElementById("scanner-state").dataset.on === "1"`)
	if feed.Watchers() != 1 {
		t.Fatalf("%d pages watch the scanner", feed.Watchers())
	}

	// Row 1: scanned at the scanner, the unit found by a resident's name.
	sim.Scan("sf1234567890123")
	wait("the scanned code", `document.querySelector('input[name="tracking-0"]').value === "SF1234567890123"`)
	if f := eval(focused); f != "unit-0" {
		t.Fatalf("after the scan the focus is on %q", f)
	}
	err = chromedp.Do(b,
		chromedp.SendKeys(css(`input[name="unit-0"]`), "陈建"),
		chromedp.WaitVisible(css(`tr[data-index="0"] ul.suggest button[data-code="3-2-1801"]`)),
	)
	if err != nil {
		t.Fatal(err)
	}
	mailShot(t, b, "mail-1-typeahead")
	if err := chromedp.Do(b, chromedp.Click(css(`tr[data-index="0"] ul.suggest button[data-code="3-2-1801"]`))); err != nil {
		t.Fatal(err)
	}
	if v := eval(`document.querySelector('input[name="unit-0"]').value`); v != "3-2-1801" {
		t.Fatalf("unit picked: %q", v)
	}
	if f := eval(focused); f != "recipient-0" {
		t.Fatalf("after picking the unit the focus is on %q", f)
	}
	if err := chromedp.Do(b, chromedp.SendKeys(css(`input[name="recipient-0"]`), "陈建华")); err != nil {
		t.Fatal(err)
	}

	// Row 2: "next", a scan, the unit by the start of its code and Enter.
	if err := chromedp.Do(b, chromedp.Click(css("#next"))); err != nil {
		t.Fatal(err)
	}
	wait("the second row", `document.activeElement.name === "tracking-1"`)
	sim.Scan("YT9876543210")
	wait("the second scan", `document.querySelector('input[name="tracking-1"]').value === "YT9876543210"`)
	if v := eval(`document.querySelector('input[name="tracking-0"]').value`); v != "SF1234567890123" {
		t.Fatalf("the second scan changed the first row: %q", v)
	}
	err = chromedp.Do(b,
		chromedp.SetValue(css(`select[name="type-1"]`), "parcel"),
		chromedp.SendKeys(css(`input[name="unit-1"]`), "1-1-10"),
		chromedp.WaitVisible(css(`tr[data-index="1"] ul.suggest button[data-code="1-1-102"]`)),
		chromedp.SendKeys(css(`input[name="unit-1"]`), "\r"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if v := eval(`document.querySelector('input[name="unit-1"]').value`); v != "1-1-102" {
		t.Fatalf("unit picked with Enter: %q", v)
	}

	// Row 3: a keyboard-wedge scanner types the code and Enter; the unit
	// typed in full.
	err = chromedp.Do(b,
		chromedp.Click(css("#next")),
		chromedp.SendKeys(css(`input[name="tracking-2"]`), "ZT5555555555\r"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if f := eval(focused); f != "unit-2" {
		t.Fatalf("after a wedge scan the focus is on %q", f)
	}
	err = chromedp.Do(b,
		chromedp.SendKeys(css(`input[name="unit-2"]`), "3-2-1801"),
		chromedp.SetValue(css(`input[name="slot-2"]`), "B-4"),
	)
	if err != nil {
		t.Fatal(err)
	}
	mailShot(t, b, "mail-2-batch")
	// The first two rows have no shelf slot: they stay in the form with
	// the reason; the third is registered.
	if err := chromedp.Do(b, chromedp.Click(css("#register")), chromedp.WaitVisible(css(".row-msg .field-error"))); err != nil {
		t.Fatal(err)
	}
	mailShot(t, b, "mail-3-refused")
	if got := text("#registered"); !strings.Contains(got, "ZT5555555555") || strings.Contains(got, "SF1234567890123") {
		t.Fatalf("registered after the first try:\n%s", got)
	}
	if got := text("#rows"); strings.Count(got, "请填写货架位置") != 2 {
		t.Fatalf("the refused rows:\n%s", got)
	}
	for _, f := range []struct{ name, want string }{{"tracking-0", "SF1234567890123"}, {"unit-0", "3-2-1801"}, {"recipient-0", "陈建华"},
		{"tracking-1", "YT9876543210"}, {"unit-1", "1-1-102"}, {"type-1", "parcel"}} {
		if v := eval(`document.querySelector('[name="` + f.name + `"]').value`); v != f.want {
			t.Errorf("the refused form lost %s: %q", f.name, v)
		}
	}
	err = chromedp.Do(b,
		chromedp.SendKeys(css(`input[name="slot-0"]`), "A-1"),
		chromedp.SendKeys(css(`input[name="slot-1"]`), "A-2"),
		chromedp.Click(css("#register")),
	)
	if err != nil {
		t.Fatal(err)
	}
	wait("the batch registered", `location.search.indexOf("done=") >= 0 && !!document.getElementById("registered")`)
	mailShot(t, b, "mail-4-registered")
	got := text("#registered")
	for _, want := range []string{"SF1234567890123", "YT9876543210", "3-2-1801", "1-1-102", "货架 A-2"} {
		if !strings.Contains(got, want) {
			t.Errorf("registered list lacks %q:\n%s", want, got)
		}
	}
	if v := eval(`document.getElementById("carrier").value`); v != "顺丰速运" {
		t.Errorf("the carrier is not kept for the next drop: %q", v)
	}
	waiting, err := e.mail.Waiting(context.Background(), "3-2-1801")
	// Oldest first: the row registered at the first try, then the others.
	if err != nil || len(waiting) != 2 || *waiting[0].Tracking != "ZT5555555555" || waiting[0].Slot != "B-4" || waiting[0].Type != mailroom.Parcel ||
		*waiting[1].Tracking != "SF1234567890123" || waiting[1].Recipient != "陈建华" || waiting[1].Carrier != "顺丰速运" || waiting[1].Slot != "A-1" ||
		waiting[1].Type != mailroom.Express {
		t.Fatalf("3-2-1801 waiting: %+v %v", waiting, err)
	}
	if w, err := e.mail.Waiting(context.Background(), "1-1-102"); err != nil || len(w) != 1 || w[0].Type != mailroom.Parcel || *w[0].Tracking != "YT9876543210" {
		t.Fatalf("1-1-102 waiting: %+v %v", w, err)
	}

	// The resident collects the parcel at the desk and signs on the pad.
	it := waiting[1]
	err = chromedp.Do(b,
		chromedp.Navigate(e.url+"/mail/items/"+itoa(it.ID)),
		chromedp.WaitVisible(css("#collect-form")),
		chromedp.SendKeys(css("#collector_name"), "陈建华"),
		chromedp.ScrollIntoView(css("#signature-pad")),
	)
	if err != nil {
		t.Fatal(err)
	}
	eval(`(function () {
		var c = document.getElementById("signature-pad"), r = c.getBoundingClientRect();
		function at(type, x, y) {
			c.dispatchEvent(new PointerEvent(type, {bubbles: true, cancelable: true, pointerId: 7, pointerType: "pen", isPrimary: true,
				clientX: r.left + x, clientY: r.top + y, buttons: type === "pointerup" ? 0 : 1}));
		}
		at("pointerdown", 30, 90);
		for (var i = 1; i <= 40; i++) at("pointermove", 30 + i * 9, 90 - 40 * Math.sin(i / 4));
		at("pointerup", 390, 80);
		return "";
	})()`)
	if v := eval(`document.getElementById("signature").value.slice(0, 22)`); v != "data:image/png;base64," {
		t.Fatalf("the pad did not take the signature: %q", v)
	}
	mailShot(t, b, "mail-5-signed")
	if err := chromedp.Do(b, chromedp.Click(css("#collect")), chromedp.WaitVisible(css("#flash")), chromedp.WaitVisible(css("#signature-img"))); err != nil {
		t.Fatal(err)
	}
	wait("the signature image", `document.getElementById("signature-img").naturalWidth === 480`)
	mailShot(t, b, "mail-6-collected")
	if s := text("#item-state"); s != "已领取" {
		t.Fatalf("item state: %q", s)
	}
	if s := text("#collected"); !strings.Contains(s, "收件人本人 陈建华") {
		t.Fatalf("collected: %q", s)
	}
	after, err := e.mail.Item(context.Background(), it.ID)
	if err != nil || after.State != mailroom.StateCollected || after.CollectorName != "陈建华" || after.SignatureID == nil {
		t.Fatalf("after the hand-over: %+v %v", after, err)
	}
	sig, err := e.mail.Signature(context.Background(), it.ID)
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(sig))
	if err != nil || img.Bounds().Dx() != 480 || img.Bounds().Dy() != 160 {
		t.Fatalf("signature: %v %v", img.Bounds(), err)
	}
	// Something was drawn: not every pixel is white.
	ink := 0
	for y := 0; y < 160; y++ {
		for x := 0; x < 480; x++ {
			if r, _, _, _ := img.At(x, y).RGBA(); r < 0x8000 {
				ink++
			}
		}
	}
	if ink < 100 {
		t.Fatalf("the signature is blank (%d dark pixels)", ink)
	}
}

// TestLockersPageFollowsTheBank: the desk's lockers page shows a parcel
// stored, a door flagged and a command queued elsewhere without a reload,
// and leaves alone the part where the clerk is typing until they are done.
func TestLockersPageFollowsTheBank(t *testing.T) {
	e, sim, sys := lockerSite(t, nil)
	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	eval := func(js string) string { t.Helper(); return pageEval(t, b, js) }
	wait := func(what, js string) { t.Helper(); pageWait(t, b, what, js) }
	signIn(t, b, e.url+"/mail/lockers", "clerk", "#door-48")
	eval(`window.samePage = "yes"`)
	commands := `document.querySelectorAll("#commands tbody tr").length`

	it := storeLetter(t, e, sim, sys)
	wait("the letter in its door", `(document.querySelector("#door-`+itoa(int64(*it.Door))+`") || {}).textContent.indexOf("`+it.Number+`") >= 0`)
	if eval(`window.samePage || ""`) != "yes" {
		t.Fatal("the page reloaded")
	}
	before := eval(`String(` + commands + `)`)

	// The clerk starts opening door 2 with a reason; meanwhile door 7 is
	// flagged and door 9 opened from another desk.
	err := chromedp.Do(b,
		chromedp.Click(css("#door-2 summary")),
		chromedp.SendKeys(css(`#door-2 input[name="reason"]`), "检查柜内"),
	)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.mail.FlagDoor(sys, 7, "门锁松动"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.mail.OpenDoor(sys, 9, "盘点"); err != nil {
		t.Fatal(err)
	}
	wait("the new command", `String(`+commands+`) !== "`+before+`"`)
	if v := eval(`document.querySelector('#door-2 input[name="reason"]').value + "|" + document.querySelector("#door-2 details").open`); v != "检查柜内|true" {
		t.Fatalf("the clerk's reason was lost: %q", v)
	}
	if strings.Contains(eval(`document.querySelector("#door-7").textContent`), "门锁松动") {
		t.Fatal("the doors were replaced under the clerk's open form")
	}
	// Done with the form: the doors catch up.
	eval(`document.querySelector("#door-2 details").open = false; document.activeElement.blur(); ""`)
	wait("door 7 flagged", `document.querySelector("#door-7").textContent.indexOf("门锁松动") >= 0`)
	if eval(`window.samePage || ""`) != "yes" {
		t.Fatal("the page reloaded")
	}
	mailShot(t, b, "lockers-live")
}
