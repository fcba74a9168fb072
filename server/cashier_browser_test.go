package server_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	firmwaresim "onecard/firmware-sim"
	printersim "onecard/firmware-sim/printer"
	"onecard/printing"
	"onecard/store/storetest"
)

// TestCashierTakesAPaymentInTheBrowser: a cashier finds a unit, takes a
// cash payment for its open bills, sees the receipt, and the receipt comes
// out of the printer (the simulator on a pty, through the ESC/POS driver).
func TestCashierTakesAPaymentInTheBrowser(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	ctx := context.Background()
	if _, err := e.es.CreateUnit(ctx, estate.UnitInput{Code: "3-2-1801", Area: 12650, HandoverDate: "2021-06-30"}); err != nil {
		t.Fatal(err)
	}
	// A fixed clock: receipts are numbered per year.
	e.bill.SetClock(func() time.Time { return time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC) })
	admin := auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: 1, Name: "admin", Role: auth.Admin})
	if _, err := e.bill.SaveFeeItem(admin, billing.FeeItem{Code: "service", Name: "物业服务费", Kind: "per_area", PriceFen: 250}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"2026-09", "2026-10"} {
		if _, err := e.bill.Generate(admin, p); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	pty, err := firmwaresim.OpenPTY(dir + "/printer.pty")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	sim := printersim.New(printersim.Options{Baud: 115200, Log: quiet})
	pctx, cancel := context.WithCancel(ctx)
	simDone, printDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(simDone); sim.Serve(pctx, pty) }()
	go func() {
		defer close(printDone)
		e.bill.RunPrinter(pctx, printing.Open(pctx, dir+"/printer.pty", 115200, quiet))
	}()
	t.Cleanup(func() { cancel(); <-printDone; <-simDone; pty.Close() })

	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// One unit found: straight to its account, every open bill ticked.
	signIn(t, b, e.url+"/cashier?q=3-2-1801", "cashier", "#bills")
	amount, err := chromedp.Run(b, chromedp.Value(css("#amount")))
	if err != nil {
		t.Fatal(err)
	}
	// 126.50 m² × ¥2.50 = ¥316.25 a month, two months.
	if amount != "632.50" {
		t.Fatalf("amount prefilled %q", amount)
	}
	err = chromedp.Do(b,
		chromedp.SendKeys(css("#tendered"), "700"),
		chromedp.Click(css("#pay-button")),
		chromedp.WaitVisible(css("#receipt")),
	)
	if err != nil {
		t.Fatal(err)
	}
	heading, err := chromedp.Run(b, chromedp.Text(css("h1")))
	if err != nil {
		t.Fatal(err)
	}
	receipt, err := chromedp.Run(b, chromedp.Text(css("#receipt")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(heading, "2026-000001") {
		t.Fatalf("receipt page heading %q", heading)
	}
	for _, want := range []string{"陆佰叁拾贰元伍角整", "¥67.50", "2026-09", "2026-10"} {
		if !strings.Contains(receipt, want) {
			t.Errorf("receipt on screen lacks %q:\n%s", want, receipt)
		}
	}
	var printed []printersim.Receipt
	for deadline := time.Now().Add(20 * time.Second); len(printed) == 0; time.Sleep(50 * time.Millisecond) {
		if printed = sim.Receipts(); time.Now().After(deadline) {
			t.Fatal("the receipt never came out of the printer")
		}
	}
	for _, want := range []string{"No. 2026-000001", "3-2-1801", "陆佰叁拾贰元伍角整", "找零: ¥67.50"} {
		if !strings.Contains(printed[0].Text, want) {
			t.Errorf("printed receipt lacks %q:\n%s", want, printed[0].Text)
		}
	}
}
