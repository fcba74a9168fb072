package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"onecard/kiosk"
	"onecard/mailroom"
)

// TestKioskMailPickupInTheBrowser: the owner taps the one-card at the
// kiosk's reader (a simulated MQTT reader); the kiosk opens on the unit's
// mail: a letter in a locker door, and a registered letter to be signed
// for at the desk. The owner touches 开柜取件: the door opens in the locker
// simulator (RS-485 frames on a pty, through the real driver), the page
// says to take the letter and close the door; the door closes in the
// simulator and the page says collected. The registered letter still
// waits for the desk.
func TestKioskMailPickupInTheBrowser(t *testing.T) {
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	kf := startKioskFleet(t, ctx)
	e, sim, sys := lockerSite(t, nil)
	ownerCards(t, e, "1-1-101", map[string]string{"04A23B1C": "active"})
	r := kf.reader(t, ctx, e.es.Site().Code)
	_, code, err := e.kiosks.Register(ctx, kiosk.Kiosk{Code: "lobby-1", Name: "1号楼大堂", Reader: "lobby-1-reader"})
	if err != nil {
		t.Fatal(err)
	}
	inLocker := storeLetter(t, e, sim, sys)
	atDesk, err := e.mail.Register(sys, mailroom.RegisterInput{Type: mailroom.Registered, Carrier: "中国邮政", Tracking: "XA123456789CN",
		Unit: "1-1-101", Condition: mailroom.ConditionOK, Storage: mailroom.StorageShelf, Slot: "A3"})
	if err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(sel string) string { t.Helper(); return pageText(t, b, sel) }
	if err := chromedp.Do(b, chromedp.Navigate(e.url+"/kiosk/enrol?code="+code), chromedp.WaitVisible(css("#pin-form"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the page's event stream connects
	r.Tap("04A23B1C")
	if err := chromedp.Do(b, chromedp.WaitVisible(css("#mail"))); err != nil {
		t.Fatalf("the tap did not open the unit's mail: %v", err)
	}
	list := text("#mail")
	door := itoa(int64(*inLocker.Door))
	if !strings.Contains(list, "柜门 "+door) || !strings.Contains(list, "XA123456789CN") || !strings.Contains(list, "请到前台领取") {
		t.Fatalf("the mail list: %q", list)
	}
	kioskShot(t, b, "10-mail")
	if err := chromedp.Do(b, chromedp.Click(css(".open-door")), chromedp.WaitVisible(css("#door-open"))); err != nil {
		t.Fatalf("opening the door: %v", err)
	}
	if !sim.State().Doors[*inLocker.Door-1].Open {
		t.Fatalf("door %s is not open in the simulator", door)
	}
	kioskShot(t, b, "11-door-open")
	if it, _ := e.mail.Item(ctx, inLocker.ID); it.State != mailroom.StateWaiting {
		t.Fatalf("collected before the door closed: %+v", it)
	}
	if err := sim.Close(*inLocker.Door); err != nil {
		t.Fatal(err)
	}
	if err := chromedp.Do(b, chromedp.WaitVisible(css("#door-done"))); err != nil {
		t.Fatalf("the page never said collected: %v", err)
	}
	kioskShot(t, b, "12-collected")
	if it, _ := e.mail.Item(ctx, inLocker.ID); it.State != "collected" {
		t.Fatalf("after the door closed: %+v", it)
	}
	if it, _ := e.mail.Item(ctx, atDesk.ID); it.State != mailroom.StateWaiting {
		t.Fatalf("the registered letter: %+v", it)
	}
	// Back to the list: only the registered letter, for the desk.
	if err := chromedp.Do(b, chromedp.Click(css("#more")), chromedp.WaitVisible(css("#mail"))); err != nil {
		t.Fatal(err)
	}
	if list := text("#mail"); strings.Contains(list, "柜门") || !strings.Contains(list, "XA123456789CN") {
		t.Fatalf("the mail list after pickup: %q", list)
	}
}
