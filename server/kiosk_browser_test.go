package server_test

import (
	"context"
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"onecard/billing"
	gatewaysim "onecard/firmware-sim/gateway"
	"onecard/gateway"
	"onecard/kiosk"
	"onecard/store/storetest"
)

// TestKioskInTheBrowser: a browser enrolled with the one-time link; the
// owner switches to English, enters the unit and PINs on the on-screen
// keypad — wrong five times and locked, then (after the desk resets the
// PIN) right — sees the bills, pays on the card terminal (simulator over a
// pty) and sees the receipt; another owner leaves the bills page alone and
// the idle timer clears the screen back to the start, in Chinese again.
func TestKioskInTheBrowser(t *testing.T) {
	kioskOptions = kiosk.Options{Idle: 4 * time.Second}
	defer func() { kioskOptions = kiosk.Options{} }()
	_, term := startTerminal(t)
	e := billingSite(t, storetest.SQLite(t), billing.Options{Terminal: term})
	ctx := context.Background()
	_, code, err := e.kiosks.Register(ctx, kiosk.Kiosk{Code: "lobby-1", Name: "1号楼大堂"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.kiosks.SetPIN(ctx, "1-1-101", "480213"); err != nil {
		t.Fatal(err)
	}
	if err := e.kiosks.SetPIN(ctx, "1-1-102", "592046"); err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(sel string) string { t.Helper(); return pageText(t, b, sel) }
	keys := func(field, digits string) {
		t.Helper()
		if err := chromedp.Do(b, chromedp.Click(css("#"+field))); err != nil {
			t.Fatal(err)
		}
		for _, d := range digits {
			if err := chromedp.Do(b, chromedp.Click(css(`#keypad button[data-k="`+string(d)+`"]`))); err != nil {
				t.Fatal(err)
			}
		}
	}
	clear := func(field string) {
		if _, err := chromedp.Run(b, chromedp.Evaluate[string](`document.getElementById("`+field+`").value = ""`)); err != nil {
			t.Fatal(err)
		}
	}
	submit := func(button, wait string) {
		t.Helper()
		if _, err := chromedp.Run(b, chromedp.Evaluate[string](`document.body.dataset.old = "1"`)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(b, chromedp.Click(css(button)), chromedp.WaitNotPresent(css("body[data-old]")), chromedp.WaitVisible(css(wait))); err != nil {
			t.Fatalf("%s: %v", button, err)
		}
	}
	// Enrol: the one-time link makes this browser the kiosk.
	if err := chromedp.Do(b, chromedp.Navigate(e.url+"/kiosk/enrol?code="+code), chromedp.WaitVisible(css("#pin-form"))); err != nil {
		t.Fatal(err)
	}
	kioskShot(t, b, "1-welcome")
	if !strings.Contains(text("h1"), "您好") {
		t.Fatalf("not Chinese first: %q", text("h1"))
	}
	submit("#lang", "#pin-form")
	if !strings.Contains(text("h1"), "Hello") {
		t.Fatalf("English switch: %q", text("h1"))
	}
	// Five wrong PINs lock the unit's PIN.
	for i := 0; i < 5; i++ {
		clear("unit")
		clear("pin")
		keys("unit", "1-1-101")
		keys("pin", "111222")
		submit("#pin-submit", "#error")
	}
	if s := text("#error"); !strings.Contains(s, "locked") {
		t.Fatalf("after five wrong PINs: %q", s)
	}
	kioskShot(t, b, "2-locked")
	if st, _ := e.kiosks.PIN(ctx, "1-1-101"); st.LockedUntil == nil {
		t.Fatal("the desk does not see the lock")
	}
	// The desk resets the PIN with the owner; the right one now works.
	if err := e.kiosks.SetPIN(ctx, "1-1-101", "480213"); err != nil {
		t.Fatal(err)
	}
	clear("unit")
	clear("pin")
	keys("unit", "1-1-101")
	keys("pin", "480213")
	submit("#pin-submit", "#bills")
	if s := text("#bills"); !strings.Contains(s, "2026-11") || !strings.Contains(s, "2026-12") {
		t.Fatalf("bills: %q", s)
	}
	kioskShot(t, b, "3-bills")
	submit("#pay-card", "#receipt")
	if s := text("#receipt"); !strings.Contains(s, "2026-000001") || !strings.Contains(s, "贰佰肆拾元整") {
		t.Fatalf("receipt: %q", s)
	}
	kioskShot(t, b, "4-receipt")
	// The session ended with the payment: back to the start, in Chinese.
	submit("#done", "#pin-form")
	if !strings.Contains(text("h1"), "您好") {
		t.Fatalf("after the receipt, not Chinese again: %q", text("h1"))
	}
	if a, _ := e.bill.Account(ctx, "1-1-101"); a.DueFen != 0 {
		t.Fatalf("the unit still owes %d", a.DueFen)
	}
	// Another owner walks away from the bills page: the idle timer ends it.
	keys("unit", "1-1-102")
	keys("pin", "592046")
	submit("#pin-submit", "#bills")
	if err := chromedp.Do(b, chromedp.WaitVisible(css("#pin-form"))); err != nil {
		t.Fatalf("the idle timer did not clear the screen: %v", err)
	}
	if strings.Contains(text("main"), "1-1-102") {
		t.Fatal("the last owner's unit is still on the screen")
	}
	kioskShot(t, b, "5-idle")
}

// TestKioskQRPaymentInTheBrowser: unit and PIN, then 扫码支付: the kiosk
// shows the QR code; the owner's "phone" (another tab on the simulated
// gateway's page) pays; the gateway's signed notification settles the
// payment and the kiosk shows the receipt by itself.
func TestKioskQRPaymentInTheBrowser(t *testing.T) {
	merchant := gateway.GenerateKey()
	sim, err := gatewaysim.Start(gatewaysim.Options{Merchants: map[string]ed25519.PublicKey{"m1": merchant.Public().(ed25519.PublicKey)}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Stop()
	gw, err := gateway.NewClient(gateway.Config{URL: sim.URL(), Merchant: "m1", Key: merchant, GatewayKeys: []ed25519.PublicKey{sim.PublicKey()}})
	if err != nil {
		t.Fatal(err)
	}
	e := billingSite(t, storetest.SQLite(t), billing.Options{Gateway: gw})
	ctx := context.Background()
	_, code, err := e.kiosks.Register(ctx, kiosk.Kiosk{Code: "lobby-1", Name: "1号楼大堂"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.kiosks.SetPIN(ctx, "1-1-102", "592046"); err != nil {
		t.Fatal(err)
	}
	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	err = chromedp.Do(b, chromedp.Navigate(e.url+"/kiosk/enrol?code="+code), chromedp.WaitVisible(css("#pin-form")),
		chromedp.SendKeys(css("#unit"), "1-1-102"), chromedp.SendKeys(css("#pin"), "592046"), chromedp.Click(css("#pin-submit")),
		chromedp.WaitVisible(css("#pay-qr")), chromedp.Click(css("#pay-qr")), chromedp.WaitVisible(css("#qr img")))
	if err != nil {
		t.Fatal(err)
	}
	kioskShot(t, b, "6-qr")
	link, err := chromedp.Run(b, chromedp.AttributeValue(css("#qr-link"), "href"))
	if err != nil || !strings.HasPrefix(link.Value, sim.URL()+"/pay/") {
		t.Fatalf("QR link %q %v", link.Value, err)
	}
	phone, cancel := chromedp.NewContext(b)
	defer cancel()
	if err := chromedp.Do(phone, chromedp.Navigate(link.Value), chromedp.WaitVisible(css("button.pay")), chromedp.Click(css("button.pay"))); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, chromedp.WaitVisible(css("#receipt"))); err != nil {
		t.Fatalf("no receipt on the kiosk: %v", err)
	}
	receipt, _ := chromedp.Run(b, chromedp.Text(css("#receipt")))
	if !strings.Contains(receipt, "2026-000001") || !strings.Contains(receipt, "叁佰元整") {
		t.Fatalf("receipt %q", receipt)
	}
	kioskShot(t, b, "7-qr-receipt")
	if a, _ := e.bill.Account(ctx, "1-1-102"); a.DueFen != 0 {
		t.Fatalf("still due %d", a.DueFen)
	}
}
