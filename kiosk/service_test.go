package kiosk_test

import (
	"context"
	"testing"
	"time"

	"onecard/auth"
	"onecard/estate"
	"onecard/fault"
	"onecard/kiosk"
	"onecard/store"
	"onecard/store/storetest"
)

func setup(t *testing.T, db *store.DB) (*kiosk.Service, context.Context, *time.Time) {
	t.Helper()
	ctx := auth.WithActor(context.Background(), auth.Actor{Kind: "system", Name: "test", Role: auth.Admin})
	es, err := estate.Open(ctx, db, "t1", "测试", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := es.CreateUnit(ctx, estate.UnitInput{Code: "1-1-101", Area: 9000, HandoverDate: "2020-01-01"}); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC)
	k := kiosk.New(db, es, kiosk.Options{})
	k.SetClock(func() time.Time { return now })
	return k, ctx, &now
}

func TestEnrolment(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		k, ctx, _ := setup(t, db)
		if _, _, err := k.Register(ctx, kiosk.Kiosk{Code: "Lobby 1", Name: "x"}); fault.Code(err) != "kiosk_code_invalid" {
			t.Fatalf("bad code: %v", err)
		}
		kk, code, err := k.Register(ctx, kiosk.Kiosk{Code: "lobby-1", Name: "1号楼大堂", Reader: "lobby-1-reader"})
		if err != nil || len(code) != 10 || kk.EnrolledAt != nil {
			t.Fatalf("register: %+v %q %v", kk, code, err)
		}
		if _, _, err := k.Enrol(ctx, "WRONGCODE1"); fault.Code(err) != "enrol_code_invalid" {
			t.Fatalf("wrong code: %v", err)
		}
		got, cred, err := k.Enrol(ctx, code)
		if err != nil || got.Code != "lobby-1" || got.CSRF == "" {
			t.Fatalf("enrol: %+v %v", got, err)
		}
		if _, _, err := k.Enrol(ctx, code); fault.Code(err) != "enrol_code_invalid" {
			t.Fatalf("code used twice: %v", err)
		}
		if a, err := k.Authenticate(ctx, cred); err != nil || a.ID != got.ID {
			t.Fatalf("authenticate: %+v %v", a, err)
		}
		altered := cred[:len(cred)-1] + "0"
		if altered == cred { // the last digit was 0 already (1 time in 16)
			altered = cred[:len(cred)-1] + "1"
		}
		if _, err := k.Authenticate(ctx, altered); err == nil {
			t.Fatal("an altered credential authenticated")
		}
		if err := k.SetDisabled(ctx, "lobby-1", true); err != nil {
			t.Fatal(err)
		}
		if _, err := k.Authenticate(ctx, cred); fault.Code(err) != "kiosk_disabled" {
			t.Fatalf("disabled kiosk: %v", err)
		}
	})
}

func TestPINLockout(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		k, ctx, now := setup(t, db)
		kk, code, _ := k.Register(ctx, kiosk.Kiosk{Code: "lobby-1", Name: "大堂"})
		kk, _, _ = k.Enrol(ctx, code)
		for _, weak := range []string{"12345", "111111", "123456", "654321", "12345a"} {
			if err := k.SetPIN(ctx, "1-1-101", weak); fault.Code(err) != "pin_weak" {
				t.Errorf("PIN %q: %v", weak, err)
			}
		}
		if err := k.SetPIN(ctx, "1-1-101", "480213"); err != nil {
			t.Fatal(err)
		}
		if _, err := k.IdentifyByPIN(ctx, kk, "9-9-999", "480213"); fault.Code(err) != "pin_wrong" {
			t.Fatalf("unknown unit: %v", err)
		}
		for i := 0; i < 4; i++ {
			if _, err := k.IdentifyByPIN(ctx, kk, "1-1-101", "000111"); fault.Code(err) != "pin_wrong" {
				t.Fatalf("wrong PIN %d: %v", i, err)
			}
		}
		if _, err := k.IdentifyByPIN(ctx, kk, "1-1-101", "000111"); fault.Code(err) != "pin_locked" {
			t.Fatalf("fifth wrong PIN: %v", err)
		}
		if _, err := k.IdentifyByPIN(ctx, kk, "1-1-101", "480213"); fault.Code(err) != "pin_locked" {
			t.Fatalf("right PIN while locked: %v", err)
		}
		st, _ := k.PIN(ctx, "1-1-101")
		if !st.Set || st.LockedUntil == nil {
			t.Fatalf("desk view: %+v", st)
		}
		*now = now.Add(16 * time.Minute)
		se, err := k.IdentifyByPIN(ctx, kk, "1-1-101", "480213")
		if err != nil || se.Unit != "1-1-101" {
			t.Fatalf("after the lock: %+v %v", se, err)
		}
		if k.Session(kk, se.Token) == nil {
			t.Fatal("no session")
		}
		*now = now.Add(61 * time.Second)
		if k.Session(kk, se.Token) != nil {
			t.Fatal("the session outlived the idle time")
		}
	})
}
