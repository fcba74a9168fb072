package main

import (
	"context"

	"onecard/auth"
	"onecard/billing"
	"onecard/kiosk"
)

// demoKioskInfo is what the demo prints for the kiosk.
type demoKioskInfo struct {
	Code, Unit, PIN string
}

// demoPIN is the demo unit's kiosk PIN (printed by the demo: never a real
// estate's).
const demoPIN = "135790"

// setUpDemoKiosk registers the demo's lobby kiosk with a fresh one-time
// enrolment code, and gives a unit in arrears (something to pay) the demo
// PIN.
func setUpDemoKiosk(ctx context.Context, ks *kiosk.Service, bk *billing.Service, as *auth.Service) (demoKioskInfo, error) {
	ctx = auth.WithActor(ctx, auth.System)
	_, code, err := ks.Register(ctx, kiosk.Kiosk{Code: "lobby-1", Name: "1号楼大堂自助机", Location: "1号楼大堂", Reader: "lobby-1-reader"})
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
	return demoKioskInfo{Code: code, Unit: unit, PIN: demoPIN}, nil
}
