package server_test

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"onecard/billing"
	"onecard/store/storetest"
)

func form(v url.Values) string { return v.Encode() }

// TestKioskPINAndCardPayment: an enrolled kiosk; an owner enters the unit
// and PIN (a wrong one first), sees the unit's bills, pays them on the
// payment terminal (the simulator over a pty), gets the receipt, and the
// session is gone; staff browsers and a disabled kiosk are refused.
func TestKioskPINAndCardPayment(t *testing.T) {
	sim, term := startTerminal(t)
	e := billingSite(t, storetest.SQLite(t), billing.Options{Terminal: term})
	k := e.kioskClient()
	if err := e.kiosks.SetPIN(context.Background(), "1-1-101", "480213"); err != nil {
		t.Fatal(err)
	}
	res, body := k.do("GET", "/kiosk", "", "")
	if res.StatusCode != 200 || !strings.Contains(body, "pin-form") || res.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("welcome: %d %s", res.StatusCode, body)
	}
	res, body = k.do("POST", "/kiosk/pin", "application/x-www-form-urlencoded", form(url.Values{"unit": {"1-1-101"}, "pin": {"111222"}}))
	if res.StatusCode != 422 || !strings.Contains(body, "房号或密码不正确") {
		t.Fatalf("wrong PIN: %d %s", res.StatusCode, body)
	}
	res, _ = k.do("POST", "/kiosk/pin", "application/x-www-form-urlencoded", form(url.Values{"unit": {"1-1-101"}, "pin": {"480213"}}))
	if res.StatusCode != 303 || res.Header.Get("Location") != "/kiosk/bills" {
		t.Fatalf("right PIN: %d", res.StatusCode)
	}
	res, body = k.do("GET", "/kiosk/bills", "", "")
	if res.StatusCode != 200 || !strings.Contains(body, "物业服务费") || !strings.Contains(body, "240.00") {
		t.Fatalf("bills: %d %s", res.StatusCode, body)
	}
	// Staff browsers do not get kiosk pages.
	if res, _ := e.as("cashier").do("GET", "/kiosk/bills", "", ""); res.StatusCode != 303 || res.Header.Get("Location") != "/kiosk/enrol" {
		t.Fatalf("a cashier's browser: %d", res.StatusCode)
	}
	a, _ := e.bill.Account(context.Background(), "1-1-101")
	v := url.Values{"key": {"kiosk-pay-000001"}}
	for _, b := range a.Open {
		v.Add("bill", itoa(b.ID))
	}
	res, body = k.do("POST", "/kiosk/pay", "application/x-www-form-urlencoded", form(v))
	if res.StatusCode != 200 || !strings.Contains(body, "付款成功") || !strings.Contains(body, "2026-000001") || !strings.Contains(body, "贰佰肆拾元整") {
		t.Fatalf("pay: %d %s", res.StatusCode, body)
	}
	// The session ended with the payment; the same press again is the same
	// payment, not a second charge.
	if res, _ := k.do("GET", "/kiosk/bills", "", ""); res.StatusCode != 303 || res.Header.Get("Location") != "/kiosk" {
		t.Fatalf("bills after paying: %d", res.StatusCode)
	}
	if n := len(sim.Journal()); n != 1 {
		t.Fatalf("%d sales on the terminal", n)
	}
	d, _ := e.bill.Operators(context.Background(), e.bill.Today())
	if len(d) != 1 || d[0].OperatorKind != "kiosk" || d[0].Totals.Payments["card"] != 24000 {
		t.Fatalf("the kiosk's day: %+v", d)
	}
	// Disabled: refused at once.
	if err := e.kiosks.SetDisabled(context.Background(), "lobby-test", true); err != nil {
		t.Fatal(err)
	}
	if res, body := k.do("GET", "/kiosk", "", ""); res.StatusCode != 403 || !strings.Contains(body, "已停用") {
		t.Fatalf("disabled kiosk: %d %s", res.StatusCode, body)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestKioskBillsPageFollowsTheBooks: the bills page, kept rendered between
// requests, still gets a new payment key each time and the session's CSRF
// token, shows a payment taken at the desk meanwhile at once, and comes in
// the owner's language.
func TestKioskBillsPageFollowsTheBooks(t *testing.T) {
	e := billingSite(t, storetest.SQLite(t), billing.Options{})
	k := e.kioskClient()
	if err := e.kiosks.SetPIN(context.Background(), "1-1-101", "480213"); err != nil {
		t.Fatal(err)
	}
	if res, _ := k.do("POST", "/kiosk/pin", "application/x-www-form-urlencoded", form(url.Values{"unit": {"1-1-101"}, "pin": {"480213"}})); res.StatusCode != 303 {
		t.Fatalf("PIN: %d", res.StatusCode)
	}
	field := func(body, name string) string {
		t.Helper()
		_, after, ok := strings.Cut(body, `name="`+name+`" value="`)
		v, _, ok2 := strings.Cut(after, `"`)
		if !ok || !ok2 || v == "" {
			t.Fatalf("no %s in %s", name, body)
		}
		return v
	}
	_, first := k.do("GET", "/kiosk/bills", "", "")
	res, second := k.do("GET", "/kiosk/bills", "", "")
	if res.StatusCode != 200 || !strings.Contains(second, "240.00") {
		t.Fatalf("bills: %d %s", res.StatusCode, second)
	}
	if field(first, "key") == field(second, "key") {
		t.Fatal("two bills pages with the same payment key")
	}
	if field(second, "_csrf") != k.csrf {
		t.Fatalf("CSRF %q, the session's is %q", field(second, "_csrf"), k.csrf)
	}

	// The cashier takes the whole amount at the desk.
	res, body := e.as("cashier").json("POST", "/api/v1/payments", `{"idem_key":"desk-cache-1","unit":"1-1-101","amount_fen":24000,"method":"cash","tendered_fen":24000}`)
	if res.StatusCode != 201 {
		t.Fatalf("desk payment: %d %s", res.StatusCode, body)
	}
	if _, body := k.do("GET", "/kiosk/bills", "", ""); strings.Contains(body, "240.00") || !strings.Contains(body, "您目前没有待缴费用") {
		t.Fatalf("bills after the desk payment: %s", body)
	}
	if res, _ := k.do("GET", "/lang/en?next=/kiosk/bills", "", ""); res.StatusCode != 303 {
		t.Fatalf("English: %d", res.StatusCode)
	}
	if _, body := k.do("GET", "/kiosk/bills", "", ""); !strings.Contains(body, "Nothing is due now") || !strings.Contains(body, ">Unit 1-1-101<") {
		t.Fatalf("bills in English: %s", body)
	}
}
