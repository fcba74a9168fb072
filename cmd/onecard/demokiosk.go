package main

import (
	"context"
	"time"

	"onecard/auth"
	"onecard/cards"
	"onecard/estate"
	"onecard/kiosk"
)

// demoKioskInfo is what the demo prints for the kiosk.
type demoKioskInfo struct {
	Code, Unit, PIN string
	Card            string // a card of the unit's owner, to tap
	CardID          int64
}

// demoPIN is the demo unit's kiosk PIN (printed by the demo: never a real
// estate's).
const demoPIN = "135790"

// setUpDemoKiosk registers the demo's lobby kiosk with a fresh one-time
// enrolment code, and gives a unit in arrears (something to pay) the demo
// PIN.
func setUpDemoKiosk(ctx context.Context, ks *kiosk.Service, bk *books, reg *cards.Register, es *estate.Service, hw *demoHardware) (demoKioskInfo, error) {
	ctx = auth.WithActor(ctx, auth.System)
	k := kiosk.Kiosk{Code: "lobby-1", Name: "1号楼大堂自助机", Location: "1号楼大堂", Reader: "lobby-1-reader"}
	// Its own printer and terminal when the demo runs them (not when
	// --kiosk-printers / --kiosk-payterms name others).
	if bk.printers[demoKioskDevices] != nil {
		k.Printer = demoKioskDevices
	}
	if bk.terminals[demoKioskDevices] != nil {
		k.Terminal = demoKioskDevices
	}
	_, code, err := ks.Register(ctx, k)
	if err != nil {
		return demoKioskInfo{}, err
	}
	unit := "1-1-101"
	if ar, err := bk.Arrears(ctx, 0); err == nil && len(ar) > 0 {
		unit = ar[len(ar)-1].Unit // the most recent debt: a few months to pay
	}
	if err := ks.SetPIN(ctx, unit, demoPIN); err != nil {
		return demoKioskInfo{}, err
	}
	info := demoKioskInfo{Code: code, Unit: unit, PIN: demoPIN}
	info.Card, info.CardID = demoCard(ctx, reg, es, hw, unit)
	return info, nil
}

// demoCard makes sure the unit's owner holds a card to tap at the kiosk:
// issued once, on the demo encoder's blank card, through the register
// like a clerk's; a new blank card is then put on the encoder. It gives up
// quietly (the PIN still works) if the encoder is not there.
func demoCard(ctx context.Context, reg *cards.Register, es *estate.Service, hw *demoHardware, unit string) (string, int64) {
	list, err := reg.UnitCards(ctx, unit)
	if err != nil {
		return "", 0
	}
	for _, c := range list {
		if c.State == "active" && c.UID != nil {
			return *c.UID, c.ID
		}
	}
	if hw.sim == nil {
		return "", 0
	}
	u, err := es.Unit(ctx, unit)
	if err != nil {
		return "", 0
	}
	var owner int64
	for _, o := range u.Occupancies {
		if o.Current() && o.Role == estate.Owner {
			owner = o.PersonID
			break
		}
	}
	if owner == 0 {
		return "", 0
	}
	c, err := reg.Apply(ctx, cards.ApplyInput{Unit: unit, PersonID: owner, Note: "演示卡"})
	if err != nil {
		return "", 0
	}
	if _, err := hw.Place(""); err != nil {
		return "", 0
	}
	for try := 0; try < 50; try++ { // the encoder's port opens in a moment
		if c2, err := reg.Issue(ctx, c.ID); err == nil {
			hw.Place("")
			return *c2.UID, c2.ID
		}
		time.Sleep(100 * time.Millisecond)
	}
	return "", 0
}
