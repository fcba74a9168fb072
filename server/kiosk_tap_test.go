package server_test

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"onecard/billing"
	"onecard/devices/broker"
	"onecard/estate"
	firmwaresim "onecard/firmware-sim"
	printersim "onecard/firmware-sim/printer"
	"onecard/firmware-sim/reader"
	"onecard/fleet"
	"onecard/kiosk"
	"onecard/printing"
	"onecard/store/storetest"
)

// kioskFleet is the next start's reader fleet on an embedded broker, with
// one device, the kiosk's card reader lobby-1-reader in zone gate; its
// broker URL and secret are known once the site has started.
type kioskFleet struct{ url, secret string }

func startKioskFleet(t *testing.T, ctx context.Context) *kioskFleet {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	kf := &kioskFleet{}
	harnessFleet = func(es *estate.Service) *fleet.Service {
		fl, err := fleet.New(es.DB(), es.Site().ID, es.Site().Code, fleet.Options{ServerSecret: "server-secret-for-tests", Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if _, kf.secret, err = fl.AddDevice(ctx, fleet.NewDevice{Code: "lobby-1-reader", Kind: "kiosk-reader", Zones: []string{"gate"}}); err != nil {
			t.Fatal(err)
		}
		br, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Site: es.Site().Code, Auth: fl, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { br.Close() })
		kf.url = "tcp://" + br.Addr()
		bus, err := fleet.DialPaho(ctx, kf.url, "onecard.server.test", fleet.ServerUser, "server-secret-for-tests")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(bus.Close)
		go fl.Run(ctx, bus)
		return fl
	}
	t.Cleanup(func() { harnessFleet = nil })
	return kf
}

// reader starts the kiosk's reader and waits until it is online.
func (kf *kioskFleet) reader(t *testing.T, ctx context.Context, site string) *reader.Reader {
	t.Helper()
	r, err := reader.New(reader.Options{Broker: kf.url, Site: site, ID: "lobby-1-reader", Secret: kf.secret, Zone: "gate",
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	go r.Run(ctx)
	for deadline := time.Now().Add(10 * time.Second); !r.Online(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the kiosk's reader never came online")
		}
	}
	return r
}

// ownerCards moves an owner into unit and gives them cards (uid → state),
// straight into the register (issuing them is tested elsewhere).
func ownerCards(t *testing.T, e *env, unit string, cards map[string]string) {
	t.Helper()
	ctx := context.Background()
	occ, err := e.es.MoveIn(ctx, unit, estate.MoveIn{Role: estate.Owner, MovedInOn: "2020-02-01",
		Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}})
	if err != nil {
		t.Fatal(err)
	}
	var unitID int64
	if err := e.db.Get(ctx, &unitID, "SELECT id FROM units WHERE code = ?", unit); err != nil {
		t.Fatal(err)
	}
	uids := slices.Sorted(maps.Keys(cards))
	now := time.Now()
	for i, uid := range uids {
		if _, err := e.db.Exec(ctx, `INSERT INTO cards (site_id, number, uid, person_id, unit_id, type, state, valid_from, valid_until, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, 'owner', ?, '2020-01-01', '2099-12-31', ?, ?)`, e.es.Site().ID, i+1, uid, occ.PersonID, unitID, cards[uid], now, now); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKioskCardTapInTheBrowser: the owner taps the one-card on the
// kiosk's reader (a simulated MQTT reader on the embedded broker); the
// kiosk page, listening by server-sent events, opens the unit's bills; the
// owner pays on the kiosk's own terminal; the receipt is on the screen
// and comes out of the kiosk's own printer (the simulator). The desk has
// neither: a payment that went to the desk's devices would fail. A lost
// card is refused politely.
func TestKioskCardTapInTheBrowser(t *testing.T) {
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	kf := startKioskFleet(t, ctx)
	_, term := startTerminal(t)
	e := billingSite(t, storetest.SQLite(t), billing.Options{Terminals: map[string]billing.Terminal{"lobby-1-term": term}})

	// The kiosk's printer: the simulator on a pty.
	dir := t.TempDir()
	pty, err := firmwaresim.OpenPTY(dir + "/printer.pty")
	if err != nil {
		t.Fatal(err)
	}
	sim := printersim.New(printersim.Options{Baud: 115200, Log: quiet})
	simDone, printDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(simDone); sim.Serve(ctx, pty) }()
	go func() {
		defer close(printDone)
		e.bill.RunPrinterNamed(ctx, "lobby-1-printer", printing.Open(ctx, dir+"/printer.pty", 115200, quiet))
	}()
	defer func() { stop(); <-printDone; <-simDone; pty.Close() }()

	// The owner's card, active in the register (issuing it is tested
	// elsewhere), and the kiosk's reader.
	ownerCards(t, e, "1-1-101", map[string]string{"04A23B1C": "active", "04FF0012": "blocked"})
	r := kf.reader(t, ctx, e.es.Site().Code)
	_, code, err := e.kiosks.Register(context.Background(), kiosk.Kiosk{Code: "lobby-1", Name: "1号楼大堂", Reader: "lobby-1-reader",
		Printer: "lobby-1-printer", Terminal: "lobby-1-term"})
	if err != nil {
		t.Fatal(err)
	}

	t0 := time.Now()
	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	if err := chromedp.Do(b, chromedp.Navigate(e.url+"/kiosk/enrol?code="+code), chromedp.WaitVisible(css("#pin-form"))); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // the page's event stream connects
	r.Tap("04FF0012")                  // the lost one
	if err := chromedp.Do(b, chromedp.WaitVisible(css("#tap-error"))); err != nil {
		t.Fatalf("a lost card: %v", err)
	}
	if s, _ := chromedp.Run(b, chromedp.Text(css("#tap-error"))); !strings.Contains(s, "挂失") {
		t.Fatalf("a lost card: %q", s)
	}
	kioskShot(t, b, "8-lost-card")
	t.Logf("lost card refused after %v", time.Since(t0))
	r.Tap("04A23B1C")
	if err := chromedp.Do(b, chromedp.WaitVisible(css("#bills")), chromedp.Click(css("#pay-card")), chromedp.WaitVisible(css("#receipt"))); err != nil {
		t.Fatalf("tap, bills, pay: %v", err)
	}
	kioskShot(t, b, "9-tap-receipt")
	t.Logf("receipt on screen after %v", time.Since(t0))
	var printed []printersim.Receipt
	for deadline := time.Now().Add(20 * time.Second); len(printed) == 0; time.Sleep(50 * time.Millisecond) {
		if printed = sim.Receipts(); time.Now().After(deadline) {
			t.Fatal("the receipt never came out of the printer")
		}
	}
	for _, want := range []string{"No. 2026-000001", "1-1-101", "贰佰肆拾元整", "kiosk:lobby-1"} {
		if !strings.Contains(printed[0].Text, want) {
			t.Errorf("printed receipt lacks %q:\n%s", want, printed[0].Text)
		}
	}
	var devs struct {
		Terminal string `db:"terminal"`
		Printer  string `db:"printer"`
	}
	if err := e.db.Get(context.Background(), &devs, "SELECT terminal, printer FROM payments"); err != nil || devs.Terminal != "lobby-1-term" || devs.Printer != "lobby-1-printer" {
		t.Fatalf("the payment's devices: %+v %v", devs, err)
	}
}
