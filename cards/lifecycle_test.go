package cards_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/cards"
	"onecard/devices/broker"
	"onecard/estate"
	"onecard/fault"
	pn532sim "onecard/firmware-sim/pn532"
	"onecard/firmware-sim/reader"
	"onecard/fleet"
	"onecard/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const serverSecret = "server-secret-for-tests"

// TestCardLifecycleAtTheReaders is the one-card end to end, on the
// embedded broker and on Mosquitto: an owner applies, the clerk issues the
// card on the simulated encoder, the card opens the gate and the building
// door; it is reported lost (one door reader is offline meanwhile) and is
// denied everywhere, the offline reader included as soon as it is back;
// a replacement is issued (fee charged) and opens the doors while the old
// card stays blocked; the replacement is returned, wiped, and opens
// nothing.
func TestCardLifecycleAtTheReaders(t *testing.T) {
	for _, embedded := range []bool{true, false} {
		name := map[bool]string{true: "embedded", false: "mosquitto"}[embedded]
		t.Run(name, func(t *testing.T) {
			url := os.Getenv("ONECARD_TEST_MQTT")
			if !embedded && url == "" {
				if os.Getenv("CI") == "true" {
					t.Fatal("ONECARD_TEST_MQTT is not set: under CI the Mosquitto tests must run")
				}
				t.Skip("ONECARD_TEST_MQTT is not set; skipping the Mosquitto run")
			}
			lifecycle(t, embedded, url)
		})
	}
}

func lifecycle(t *testing.T, embedded bool, url string) {
	ctx := context.Background()
	db := storetest.SQLite(t)
	b := make([]byte, 4)
	rand.Read(b)
	site := "t" + hex.EncodeToString(b) // a site of its own on a shared Mosquitto
	es, err := estate.Open(ctx, db, site, "测试", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	as := auth.New(db, auth.DefaultPolicy)
	clerkRow, err := as.CreateStaff(ctx, auth.NewStaff{Username: "clerk1", Role: auth.Clerk, Password: "clerk1-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	clerk := auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: clerkRow.ID, Name: "clerk1", Role: auth.Clerk})
	if _, err := es.CreateUnit(clerk, estate.UnitInput{Code: "1-1-101", Area: 9000, HandoverDate: "2020-01-01"}); err != nil {
		t.Fatal(err)
	}
	owner, err := es.MoveIn(clerk, "1-1-101", estate.MoveIn{Role: estate.Owner, MovedInOn: "2020-02-01",
		Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}})
	if err != nil {
		t.Fatal(err)
	}
	bk, err := billing.Open(ctx, db, es.Site(), billing.Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bk.SaveFeeItem(clerk, billing.FeeItem{Code: "card_fee", Name: "门禁卡工本费", Kind: "one_off", PriceFen: 2000}); err != nil {
		t.Fatal(err)
	}

	fl, err := fleet.New(db, es.Site().ID, site, fleet.Options{ServerSecret: serverSecret, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	secrets := map[string]string{}
	for _, d := range []fleet.NewDevice{
		{Code: "gate-1", Kind: "turnstile", Zones: []string{"gate"}},
		{Code: "b1-door", Kind: "reader", Zones: []string{"b1"}},
		{Code: "b1-back", Kind: "reader", Zones: []string{"b1"}},
	} {
		_, secret, err := fl.AddDevice(ctx, d)
		if err != nil {
			t.Fatal(err)
		}
		secrets[d.Code] = secret
	}
	if embedded {
		br, err := broker.New(broker.Options{Addr: "127.0.0.1:0", Site: site, Auth: fl, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if err := br.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { br.Close() })
		fl.OnDisable(br.Disconnect)
		url = "tcp://" + br.Addr()
	}
	sctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	bus, err := fleet.DialPaho(sctx, url, "onecard.server."+site, fleet.ServerUser, serverSecret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bus.Close)
	go fl.Run(sctx, bus)
	readers := map[string]*reader.Reader{}
	for _, d := range []struct{ id, zone string }{{"gate-1", "gate"}, {"b1-door", "b1"}, {"b1-back", "b1"}} {
		r, err := reader.New(reader.Options{Broker: url, Site: site, ID: d.id, Secret: secrets[d.id], Zone: d.zone, Log: quiet})
		if err != nil {
			t.Fatal(err)
		}
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); r.Run(rctx) }()
		t.Cleanup(func() { cancel(); <-done })
		readers[d.id] = r
	}

	// The desk encoder: the simulated PN532 with a blank card on it.
	rig := newRig(t, 0, 0)
	station := cards.NewStation("sim")
	station.Attach(rig.enc, "PN532 v1.6")
	reg, err := cards.OpenRegister(ctx, cards.RegisterDeps{DB: db, Estate: es, Billing: bk, Fleet: fl, Station: station, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.SavePolicy(clerk, cards.Policy{FreePerHousehold: 1, MaxPerHousehold: 4, FeeFen: 2000, OwnerMonths: 24}); err != nil {
		t.Fatal(err)
	}

	// Apply and issue: the first card of the household is free.
	c, err := reg.Apply(clerk, cards.ApplyInput{Unit: "1-1-101", PersonID: owner.PersonID})
	if err != nil {
		t.Fatal(err)
	}
	if c.State != "applied" || c.Type != "owner" || c.FeeBillID != nil || len(c.Rights) != 3 {
		t.Fatalf("applied %+v", c)
	}
	if c, err = reg.Issue(clerk, c.ID); err != nil {
		t.Fatal(err)
	}
	if c.State != "active" || c.UID == nil || *c.UID != "04A23B1C" {
		t.Fatalf("issued %+v", c)
	}
	uid := *c.UID
	tap := func(id, card string) reader.Decision { return readers[id].Tap(card) }
	waitFor(t, "the card opening the gate and both doors", func() bool {
		return tap("gate-1", uid).Granted && tap("b1-door", uid).Granted && tap("b1-back", uid).Granted
	})

	// Lost, with one door reader offline.
	back := readers["b1-back"]
	back.Offline(true)
	for back.Online() {
		time.Sleep(10 * time.Millisecond)
	}
	if c, err = reg.ReportLost(clerk, c.ID, "丢失于小区外"); err != nil || c.State != "blocked" {
		t.Fatalf("lost: %+v %v", c, err)
	}
	waitFor(t, "the lost card denied at the gate and the online door", func() bool {
		return tap("gate-1", uid).Reason == "blocked" && tap("b1-door", uid).Reason == "blocked"
	})
	back.Offline(false)
	waitFor(t, "the lost card denied at the door that was offline", func() bool { return tap("b1-back", uid).Reason == "blocked" })

	// Replaced: a new blank card on the encoder; the fee is charged.
	nc, err := reg.Replace(clerk, c.ID, false, true, "补卡")
	if err != nil {
		t.Fatal(err)
	}
	if nc.State != "applied" || nc.FeeBillID == nil || nc.Replaces == nil || *nc.Replaces != c.ID {
		t.Fatalf("replacement %+v", nc)
	}
	second := pn532sim.NewCard([]byte{0x04, 0x11, 0x22, 0x33})
	rig.sim.Remove()
	rig.sim.Place(second)
	if nc, err = reg.Issue(clerk, nc.ID); err != nil {
		t.Fatal(err)
	}
	nuid := *nc.UID
	waitFor(t, "the new card in, the old one still out", func() bool {
		return tap("gate-1", nuid).Granted && tap("b1-back", nuid).Granted && tap("gate-1", uid).Reason == "blocked"
	})
	if old, _ := reg.Card(ctx, c.ID); old.State != "replaced" {
		t.Fatalf("old card %+v", old)
	}
	a, err := bk.Account(ctx, "1-1-101")
	if err != nil || a.DueFen != 2000 {
		t.Fatalf("replacement fee: %+v %v", a, err)
	}

	// Returned: the card on the encoder must be this one; it is wiped.
	rig.sim.Remove()
	rig.sim.Place(pn532sim.NewCard([]byte{0x04, 0x99, 0x99, 0x99}))
	if _, err := reg.Return(clerk, nc.ID, ""); fault.Code(err) != "wrong_card_on_encoder" {
		t.Fatalf("return with another card on the encoder: %v", err)
	}
	rig.sim.Remove()
	rig.sim.Place(second)
	if nc, err = reg.Return(clerk, nc.ID, "搬离"); err != nil || nc.State != "returned" {
		t.Fatalf("return: %+v %v", nc, err)
	}
	waitFor(t, "the returned card opening nothing", func() bool {
		return tap("gate-1", nuid).Reason == "unknown" && tap("b1-door", nuid).Reason == "unknown"
	})
	ev, err := reg.Events(ctx, c.ID)
	if err != nil || len(ev) != 4 || ev[0].Action != "apply" || ev[2].Action != "lost" || ev[3].Action != "replace" {
		t.Fatalf("register of the first card: %+v %v", ev, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}
