package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"onecard/billing"
	"onecard/cards"
	"onecard/devices"
	"onecard/devices/pn532"
	"onecard/estate"
	firmwaresim "onecard/firmware-sim"
	pn532sim "onecard/firmware-sim/pn532"
	"onecard/store/storetest"
)

// TestClerkRunsTheCardFlowsInTheBrowser: on the desk console only, with a
// blank card on the (simulated) encoder, a clerk applies for an owner's
// card, issues it, reports it lost, and issues its replacement on another
// blank card; the readers' whitelists say blocked for the old card and
// active for the new.
func TestClerkRunsTheCardFlowsInTheBrowser(t *testing.T) {
	dir := t.TempDir()
	pty, err := firmwaresim.OpenPTY(dir + "/encoder")
	if err != nil {
		t.Fatal(err)
	}
	sim := pn532sim.New(pn532sim.Options{})
	sctx, cancel := context.WithCancel(context.Background())
	simDone := make(chan struct{})
	go func() { defer close(simDone); sim.Serve(sctx, pty) }()
	port, err := devices.OpenSerial(devices.SerialConfig{Path: dir + "/encoder", Baud: 115200, ReadTimeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	dev := pn532.New(port, &pn532.Opts{Baud: 115200, AckTimeout: 250 * time.Millisecond})
	t.Cleanup(func() { dev.Close(); port.Close(); cancel(); <-simDone; pty.Close() })
	if err := dev.Init(sctx); err != nil {
		t.Fatal(err)
	}
	keys := cards.Keys{Master: []byte("site master key site master key!"), MAC: []byte("site mac key site mac key site m")}
	enc, err := cards.NewEncoder(dev, keys, cards.DefaultSector)
	if err != nil {
		t.Fatal(err)
	}
	station := cards.NewStation("sim")
	station.Attach(enc, "PN532 v1.6")
	sim.Place(pn532sim.NewCard([]byte{0x04, 0xA2, 0x3B, 0x1C}))

	e := startFull(t, storetest.SQLite(t), billing.Options{}, station)
	ctx := context.Background()
	if _, err := e.es.CreateUnit(ctx, estate.UnitInput{Code: "3-2-1801", Area: 12650, HandoverDate: "2021-06-30"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.es.MoveIn(ctx, "3-2-1801", estate.MoveIn{Role: estate.Owner, MovedInOn: "2021-07-01",
		Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.bill.SaveFeeItem(ctx, billing.FeeItem{Code: "card_fee", Name: "门禁卡工本费", Kind: "one_off", PriceFen: 2000}); err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(sel string) string { t.Helper(); return pageText(t, b, sel) }
	// submit clicks a button and waits for the page the form leads to.
	submit := func(button, wait string) {
		t.Helper()
		if _, err := chromedp.Run(b, chromedp.Evaluate[string](`document.body.dataset.old = "1"`)); err != nil {
			t.Fatal(err)
		}
		if err := chromedp.Do(b, chromedp.Click(css(button)), chromedp.WaitNotPresent(css("body[data-old]")), chromedp.WaitVisible(css(wait))); err != nil {
			t.Fatalf("%s: %v", button, err)
		}
	}
	signIn(t, b, e.url+"/units/3-2-1801", "clerk", "#apply")
	submit("#apply button", "#card")
	if s := text("#card"); !strings.Contains(s, "待发卡") || !strings.Contains(s, "陈建华") {
		t.Fatalf("after applying:\n%s", s)
	}
	submit("#issue", "#events")
	if s := text("#card"); !strings.Contains(s, "04A23B1C") || !strings.Contains(s, "正常") {
		t.Fatalf("after issuing:\n%s", s)
	}
	submit("#lost", "#events")
	if s := text("#card"); !strings.Contains(s, "已挂失") {
		t.Fatalf("after reporting lost:\n%s", s)
	}
	submit("#replace", "#events")
	if s := text("#card"); !strings.Contains(s, "待发卡") || !strings.Contains(s, "补发自") {
		t.Fatalf("the replacement:\n%s", s)
	}
	// The old card is still on the encoder: refused, with the reason.
	submit("#issue", "#events")
	if s := text(".flash.error"); !strings.Contains(s, "已写有另一张门禁卡的数据") {
		t.Fatalf("issuing onto the old card: %q", s)
	}
	sim.Remove()
	sim.Place(pn532sim.NewCard([]byte{0x04, 0x11, 0x22, 0x33}))
	submit("#issue", "#events")
	if s := text("#card"); !strings.Contains(s, "04112233") || !strings.Contains(s, "正常") {
		t.Fatalf("after issuing the replacement:\n%s", s)
	}
	// The old card's register tells its story.
	submit(`#card a[href^="/cards/"]`, "#events")
	register := text("#events")
	for _, want := range []string{"申请", "发卡", "挂失", "补卡", "04A23B1C"} {
		if !strings.Contains(register, want) {
			t.Errorf("the old card's register lacks %q:\n%s", want, register)
		}
	}
	var entries []string
	if err := e.db.Select(ctx, &entries, "SELECT entry FROM wl_entries e JOIN zones z ON z.id = e.zone_id WHERE z.code = 'gate' ORDER BY card"); err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 || !strings.HasPrefix(entries[0], "04112233,") || !strings.HasSuffix(entries[0], ",0") ||
		!strings.HasPrefix(entries[1], "04A23B1C,") || !strings.HasSuffix(entries[1], ",1") {
		t.Fatalf("gate whitelist %v", entries)
	}
}
