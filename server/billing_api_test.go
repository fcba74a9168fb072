package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/devices/payterm"
	firmwaresim "onecard/firmware-sim"
	paytermsim "onecard/firmware-sim/payterm"
	"onecard/store"
	"onecard/store/storetest"
	"onecard/terminal"
)

// billingNow is 2026-12-20 10:00 at the site: the November and December
// bills (due on the 15th) are overdue.
var billingNow = time.Date(2026, 12, 20, 2, 0, 0, 0, time.UTC)

// decode unmarshals a response body into a T, failing the test if it
// cannot.
func decode[T any](t *testing.T, body string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatalf("decode %T from %s: %v", v, body, err)
	}
	return v
}

// page is a list answer of the API.
type page[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}

// ledger is a fingerprint of the books, to prove refused requests changed
// nothing.
func ledger(t *testing.T, db *store.DB) string {
	t.Helper()
	var out []string
	for _, q := range []string{"SELECT COUNT(*) FROM payments", "SELECT COUNT(*) FROM payment_allocations", "SELECT COUNT(*) FROM receipts",
		"SELECT COUNT(*) FROM receipts WHERE state = 'voided'", "SELECT COUNT(*) FROM refunds", "SELECT COUNT(*) FROM print_jobs",
		"SELECT COUNT(*) FROM day_closes", "SELECT COALESCE(SUM(paid_fen), 0) FROM bills", "SELECT COUNT(*) FROM audit_log"} {
		var n int64
		if err := db.Get(t.Context(), &n, q); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", q[strings.LastIndex(q, "FROM ")+5:], n))
	}
	return strings.Join(out, " ")
}

// billingSite is a running onecard at billingNow with two units handed
// over (80 m² and 100 m²), a service fee of ¥1.50 per m², and the
// November and December bills generated over the API.
func billingSite(t *testing.T, db *store.DB, o billing.Options) *env {
	t.Helper()
	e := startWith(t, db, o)
	e.bill.SetClock(func() time.Time { return billingNow })
	clerk, sup := e.as(auth.Clerk), e.as(auth.Supervisor)
	for _, u := range []string{`{"code":"1-1-101","area_m2":80,"handover_date":"2020-01-01"}`, `{"code":"1-1-102","area_m2":100,"handover_date":"2020-01-01"}`} {
		if res, body := clerk.json("POST", "/api/v1/units", u); res.StatusCode != 201 {
			t.Fatalf("unit: %d %s", res.StatusCode, body)
		}
	}
	res, body := sup.json("PUT", "/api/v1/fees/service", `{"name":"物业服务费","kind":"per_area","price_fen":150}`)
	if res.StatusCode != 201 || decode[billing.FeeItem](t, body).Version != 1 {
		t.Fatalf("new fee item: %d %s", res.StatusCode, body)
	}
	// A change without "active" keeps the item active.
	res, body = sup.json("PUT", "/api/v1/fees/service", `{"name":"物业服务费","price_fen":150,"version":1}`)
	if it := decode[billing.FeeItem](t, body); res.StatusCode != 200 || it.Version != 2 || !it.Active || it.Kind != "per_area" {
		t.Fatalf("fee item change: %d %s", res.StatusCode, body)
	}
	for _, p := range []string{"2026-11", "2026-12"} {
		res, body := sup.json("POST", "/api/v1/bills/generate", `{"period":"`+p+`"}`)
		if g := decode[billing.Generated](t, body); res.StatusCode != 200 || g.Created != 2 || g.Total != 27000 {
			t.Fatalf("generate %s: %d %s", p, res.StatusCode, body)
		}
	}
	res, body = sup.json("POST", "/api/v1/bills/generate", `{"period":"2026-12"}`)
	if g := decode[billing.Generated](t, body); res.StatusCode != 200 || g.Created != 0 {
		t.Fatalf("generate again: %d %s", res.StatusCode, body)
	}
	return e
}

// tokenClient is a client authenticated by a new API token of role.
func (e *env) tokenClient(role auth.Role) *client {
	e.t.Helper()
	res, body := e.as(auth.Admin).json("POST", "/api/v1/tokens", `{"name":"billing `+string(role)+`","role":"`+string(role)+`"}`)
	v := decode[struct{ Value string }](e.t, body)
	if res.StatusCode != 201 || v.Value == "" {
		e.t.Fatalf("token for %s: %d %s", role, res.StatusCode, body)
	}
	return &client{e: e, http: e.anon().http, bearer: v.Value}
}

func TestBillingAPICashReceiptVoidClose(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := billingSite(t, db, billing.Options{})
		cashier, sup := e.as(auth.Cashier), e.as(auth.Supervisor)

		res, body := cashier.do("GET", "/api/v1/units/1-1-101/account", "", "")
		if acc := decode[billing.Account](t, body); res.StatusCode != 200 || acc.DueFen != 24000 || len(acc.Open) != 2 || acc.OverdueFen != 24000 {
			t.Fatalf("account: %d %s", res.StatusCode, body)
		}

		// Cash for November: a receipt with its number and the amount in capitals.
		payNov := `{"idem_key":"desk-1-0001","unit":"1-1-101","amount_fen":12000,"method":"cash","tendered_fen":20000}`
		res, body = cashier.json("POST", "/api/v1/payments", payNov)
		p := decode[billing.Payment](t, body)
		if res.StatusCode != 201 || p.State != "settled" || p.ChangeFen != 8000 || p.Receipt == nil {
			t.Fatalf("pay: %d %s", res.StatusCode, body)
		}
		rc := *p.Receipt
		if rc.Number != "2026-000001" || rc.Capital != "壹佰贰拾元整" || rc.AmountFen != 12000 || rc.State != "issued" ||
			len(rc.Lines) != 1 || rc.Lines[0].Period != "2026-11" || rc.Operator != "cashier" {
			t.Fatalf("receipt: %+v", rc)
		}
		// The same attempt again (a double click): the same payment, no second receipt.
		res, body = cashier.json("POST", "/api/v1/payments", payNov)
		if again := decode[billing.Payment](t, body); res.StatusCode != 201 || again.ID != p.ID || again.Receipt == nil || again.Receipt.Number != rc.Number {
			t.Fatalf("pay again: %d %s", res.StatusCode, body)
		}
		var receipts int
		if err := db.Get(t.Context(), &receipts, "SELECT COUNT(*) FROM receipts"); err != nil || receipts != 1 {
			t.Fatalf("receipts after a repeated request: %d %v", receipts, err)
		}

		// Refused requests change nothing and say why, in words.
		before := ledger(t, db)
		voidURL := fmt.Sprintf("/api/v1/receipts/%d/void", rc.ID)
		cases := []struct {
			name, path, body string
			status           int
			code             string
		}{
			{"negative amount", "/api/v1/payments", `{"idem_key":"desk-1-0002","unit":"1-1-101","amount_fen":-100,"method":"cash","tendered_fen":0}`, 422, "amount_invalid"},
			{"unknown field", "/api/v1/payments", `{"idem_key":"desk-1-0002","unit":"1-1-101","amount_fen":100,"method":"cash","tendered_fen":100,"discount":5}`, 422, "unknown_field"},
			{"more than due", "/api/v1/payments", `{"idem_key":"desk-1-0002","unit":"1-1-101","amount_fen":12001,"method":"cash","tendered_fen":20000}`, 422, "amount_over_due"},
			{"key reused for another amount", "/api/v1/payments", `{"idem_key":"desk-1-0001","unit":"1-1-101","amount_fen":500,"method":"cash","tendered_fen":500}`, 409, "idem_key_reused"},
			{"no such unit", "/api/v1/payments", `{"idem_key":"desk-1-0002","unit":"9-9-909","amount_fen":100,"method":"cash","tendered_fen":100}`, 404, "unit_not_found"},
			{"void without approver", voidURL, `{"reason":"金额录错"}`, 422, "approval_required"},
			{"void with a wrong password", voidURL, `{"reason":"金额录错","approver":{"username":"supervisor","password":"guess"}}`, 422, "approval_failed"},
			{"void approved by a cashier", voidURL, `{"reason":"金额录错","approver":{"username":"cashier","password":"password-cashier"}}`, 422, "approver_role"},
			{"void without reason", voidURL, `{"reason":" ","approver":{"username":"supervisor","password":"password-supervisor"}}`, 422, "reason_required"},
			{"void of no receipt", "/api/v1/receipts/999999/void", `{"reason":"x","approver":{"username":"supervisor","password":"password-supervisor"}}`, 404, "receipt_not_found"},
		}
		for _, tc := range cases {
			res, body := cashier.json("POST", tc.path, tc.body)
			if res.StatusCode != tc.status || errCode(body) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.StatusCode, body, tc.status, tc.code)
			}
			var eb struct {
				Error struct{ Message string } `json:"error"`
			}
			json.Unmarshal([]byte(body), &eb)
			if eb.Error.Message == "" || strings.HasPrefix(eb.Error.Message, "err.") {
				t.Errorf("%s: no translated message in %s", tc.name, body)
			}
		}
		if after := ledger(t, db); after != before {
			t.Errorf("refused requests changed the books:\nbefore %s\nafter  %s", before, after)
		}
		res, body = cashier.do("GET", fmt.Sprintf("/api/v1/receipts/%d", rc.ID), "", "")
		if got := decode[billing.Receipt](t, body); res.StatusCode != 200 || got.State != "issued" {
			t.Fatalf("receipt after refused voids: %d %s", res.StatusCode, body)
		}

		// With the supervisor: voided, number kept, the bill open again.
		res, body = cashier.json("POST", voidURL, `{"reason":"金额录错","approver":{"username":"supervisor","password":"password-supervisor"}}`)
		if got := decode[billing.Receipt](t, body); res.StatusCode != 200 || got.State != "voided" || got.Number != rc.Number || got.VoidReason != "金额录错" {
			t.Fatalf("void: %d %s", res.StatusCode, body)
		}
		if res, body := cashier.json("POST", voidURL, `{"reason":"again","approver":{"username":"supervisor","password":"password-supervisor"}}`); res.StatusCode != 409 || errCode(body) != "receipt_voided" {
			t.Fatalf("void twice: %d %s", res.StatusCode, body)
		}
		res, body = cashier.do("GET", "/api/v1/units/1-1-101/account", "", "")
		if acc := decode[billing.Account](t, body); acc.DueFen != 24000 || len(acc.Receipts) != 1 || acc.Receipts[0].State != "voided" {
			t.Fatalf("account after the void: %s", body)
		}

		// Both months, then part of it back: the next number, no gap.
		res, body = cashier.json("POST", "/api/v1/payments", `{"idem_key":"desk-1-0003","unit":"1-1-101","amount_fen":24000,"method":"cash","tendered_fen":24000}`)
		p2 := decode[billing.Payment](t, body)
		if res.StatusCode != 201 || p2.Receipt == nil || p2.Receipt.Number != "2026-000002" || p2.Receipt.Capital != "贰佰肆拾元整" {
			t.Fatalf("second payment: %d %s", res.StatusCode, body)
		}
		res, body = cashier.do("GET", fmt.Sprintf("/api/v1/payments/%d", p2.ID), "", "")
		if got := decode[billing.Payment](t, body); res.StatusCode != 200 || got.Receipt == nil || got.Receipt.ID != p2.Receipt.ID {
			t.Fatalf("get payment: %d %s", res.StatusCode, body)
		}
		res, body = cashier.json("POST", "/api/v1/refunds", fmt.Sprintf(`{"receipt_id":%d,"amount_fen":5000,"method":"cash","reason":"多收退还",
			"approver":{"username":"supervisor","password":"password-supervisor"}}`, p2.Receipt.ID))
		refund := decode[struct {
			ID      int64           `json:"id"`
			Receipt billing.Receipt `json:"receipt"`
		}](t, body)
		if res.StatusCode != 201 || refund.ID == 0 || refund.Receipt.RefundedFen != 5000 {
			t.Fatalf("refund: %d %s", res.StatusCode, body)
		}
		if res, body := cashier.json("POST", fmt.Sprintf("/api/v1/receipts/%d/reprint", p2.Receipt.ID), ""); res.StatusCode != 202 || decode[billing.Receipt](t, body).Prints != 1 {
			t.Fatalf("reprint: %d %s", res.StatusCode, body)
		}
		res, body = cashier.do("GET", "/api/v1/print-jobs", "", "")
		jobs := decode[page[billing.PrintJob]](t, body)
		var kinds []string
		for _, j := range jobs.Items {
			kinds = append(kinds, j.Kind+":"+j.State)
		}
		if res.StatusCode != 200 || strings.Join(kinds, " ") != "receipt:queued receipt:queued refund:queued receipt_copy:queued" {
			t.Fatalf("print jobs: %d %v", res.StatusCode, kinds)
		}
		if res, body := cashier.json("POST", fmt.Sprintf("/api/v1/print-jobs/%d/retry", jobs.Items[0].ID), ""); res.StatusCode != 409 || errCode(body) != "print_job_not_failed" {
			t.Fatalf("retry a queued job: %d %s", res.StatusCode, body)
		}

		// The cashier's day: 120 + 240 in, 120 voided, 50 refunded.
		res, body = cashier.do("GET", "/api/v1/days/today", "", "")
		day := decode[billing.Day](t, body)
		if res.StatusCode != 200 || day.Day != "2026-12-20" || day.Operator != "cashier" || day.Totals.Payments["cash"] != 36000 ||
			day.Totals.Voids["cash"] != 12000 || day.Totals.Refunds["cash"] != 5000 || day.CashExpected != 19000 || day.Close != nil {
			t.Fatalf("day: %d %s", res.StatusCode, body)
		}
		if res, body := cashier.do("GET", "/api/v1/days/today?operator_kind=kiosk&operator_id=1", "", ""); res.StatusCode != 403 {
			t.Fatalf("a cashier reading a kiosk's day: %d %s", res.StatusCode, body)
		}
		res, body = sup.do("GET", fmt.Sprintf("/api/v1/days/2026-12-20?operator_id=%d", day.OperatorID), "", "")
		if got := decode[billing.Day](t, body); res.StatusCode != 200 || got.Operator != "cashier" || got.CashExpected != 19000 {
			t.Fatalf("supervisor reads the cashier's day: %d %s", res.StatusCode, body)
		}
		res, body = sup.do("GET", "/api/v1/days/2026-12-20/operators", "", "")
		if ops := decode[page[billing.Day]](t, body); res.StatusCode != 200 || ops.Total != 1 || ops.Items[0].Operator != "cashier" {
			t.Fatalf("operators: %d %s", res.StatusCode, body)
		}
		res, body = cashier.do("GET", "/api/v1/arrears?building=1", "", "")
		if ar := decode[page[billing.Arrear]](t, body); res.StatusCode != 200 || ar.Total != 1 || ar.Items[0].Unit != "1-1-102" ||
			ar.Items[0].OverdueFen != 30000 || ar.Items[0].Stage != "second_reminder" {
			t.Fatalf("arrears: %d %s", res.StatusCode, body)
		}

		// Close the day; then the books are locked for this cashier.
		res, body = cashier.json("POST", "/api/v1/days/close", `{"cash_counted_fen":19000}`)
		if got := decode[billing.Day](t, body); res.StatusCode != 200 || got.Close == nil || got.Close.Difference != 0 {
			t.Fatalf("close: %d %s", res.StatusCode, body)
		}
		before = ledger(t, db)
		res, body = cashier.json("POST", "/api/v1/payments", `{"idem_key":"desk-1-0004","unit":"1-1-102","amount_fen":15000,"method":"cash","tendered_fen":15000}`)
		if res.StatusCode != 409 || errCode(body) != "day_closed" {
			t.Fatalf("payment after the close: %d %s", res.StatusCode, body)
		}
		if res, body := cashier.json("POST", "/api/v1/days/close", `{"cash_counted_fen":19000}`); res.StatusCode != 409 || errCode(body) != "day_closed" {
			t.Fatalf("close twice: %d %s", res.StatusCode, body)
		}
		if after := ledger(t, db); after != before {
			t.Errorf("a closed day took money:\nbefore %s\nafter  %s", before, after)
		}

		// Guards and clerks take no money (by API token here; the route walk
		// covers every role by session and by token).
		tokens := []*client{e.tokenClient(auth.Guard), e.tokenClient(auth.Clerk)}
		before = ledger(t, db)
		for i, role := range []auth.Role{auth.Guard, auth.Clerk} {
			res, body := tokens[i].json("POST", "/api/v1/payments", `{"idem_key":"desk-1-0005","unit":"1-1-102","amount_fen":15000,"method":"cash","tendered_fen":15000}`)
			if res.StatusCode != 403 || errCode(body) != "role_forbidden" {
				t.Errorf("%s token pays: %d %s", role, res.StatusCode, body)
			}
		}
		if after := ledger(t, db); after != before {
			t.Errorf("refused roles changed the books:\nbefore %s\nafter  %s", before, after)
		}
	})
}

// startTerminal runs the payment terminal simulator on a pty and the
// terminal over it, with short timeouts: a sale the customer does not
// finish is unknown after a second.
func startTerminal(t *testing.T) (*paytermsim.Sim, *terminal.Terminal) {
	t.Helper()
	dir := t.TempDir()
	pty, err := firmwaresim.OpenPTY(dir + "/payterm.pty")
	if err != nil {
		t.Fatal(err)
	}
	sim, err := paytermsim.New(paytermsim.Options{Baud: 115200, Delay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); sim.Serve(ctx, pty) }()
	term := terminal.Open(ctx, dir+"/payterm.pty", &payterm.Opts{Baud: 115200, SaleTimeout: time.Second, QueryTries: 1, QueryInterval: 100 * time.Millisecond},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	t.Cleanup(func() { cancel(); <-done; pty.Close() })
	for deadline := time.Now().Add(10 * time.Second); !term.Ready(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the terminal never connected")
		}
	}
	return sim, term
}

func TestBillingAPICardOutcomeUnknown(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		sim, term := startTerminal(t)
		e := billingSite(t, db, billing.Options{Terminal: term})
		cashier := e.as(auth.Cashier)

		// The customer never taps: the terminal's answer is not known in
		// time: 202, the payment on the books, pending.
		sim.Timeout()
		pay := `{"idem_key":"card-0001","unit":"1-1-102","amount_fen":30000,"method":"card"}`
		res, body := cashier.json("POST", "/api/v1/payments", pay)
		pending := decode[struct {
			Payment billing.Payment `json:"payment"`
			Pending bool            `json:"pending"`
			Code    string          `json:"code"`
		}](t, body)
		if res.StatusCode != 202 || !pending.Pending || pending.Code != "outcome_unknown" || pending.Payment.State != "unknown" ||
			pending.Payment.ID == 0 || pending.Payment.Receipt != nil {
			t.Fatalf("card, no answer: %d %s", res.StatusCode, body)
		}
		id := pending.Payment.ID
		// Asked again with the same key: the same payment, still pending.
		if res, body := cashier.json("POST", "/api/v1/payments", pay); res.StatusCode != 202 || !strings.Contains(body, fmt.Sprintf(`"id":%d,`, id)) {
			t.Fatalf("card again: %d %s", res.StatusCode, body)
		}
		res, body = cashier.do("GET", "/api/v1/units/1-1-102/account", "", "")
		if acc := decode[billing.Account](t, body); !acc.PendingCard || acc.DueFen != 30000 {
			t.Fatalf("account with a pending card payment: %s", body)
		}
		if res, body := cashier.json("POST", "/api/v1/days/close", `{"cash_counted_fen":0}`); res.StatusCode != 409 || errCode(body) != "payments_waiting" {
			t.Fatalf("close with a payment waiting: %d %s", res.StatusCode, body)
		}
		check := fmt.Sprintf("/api/v1/payments/%d/check", id)
		if res, body := cashier.json("POST", check, ""); res.StatusCode != 200 || decode[billing.Payment](t, body).State != "unknown" {
			t.Fatalf("check while in progress: %d %s", res.StatusCode, body)
		}

		// The customer taps after all: the terminal's journal says approved,
		// and checking settles the payment, with its receipt.
		sim.Approve()
		var p billing.Payment
		for deadline := time.Now().Add(10 * time.Second); p.State != "settled" && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			res, body = cashier.json("POST", check, "")
			p = decode[billing.Payment](t, body)
		}
		if res.StatusCode != 200 || p.State != "settled" || p.Receipt == nil || p.Receipt.Number != "2026-000001" || p.Receipt.CardLast4 == "" {
			t.Fatalf("check after approval: %d %s", res.StatusCode, body)
		}
		if res, body := cashier.json("POST", "/api/v1/payments", pay); res.StatusCode != 201 || decode[billing.Payment](t, body).Receipt.Number != "2026-000001" {
			t.Fatalf("the same key once settled: %d %s", res.StatusCode, body)
		}

		// A decline takes nothing, and says so again for the same key.
		if err := sim.Decline("51", "insufficient funds"); err != nil {
			t.Fatal(err)
		}
		decl := `{"idem_key":"card-0002","unit":"1-1-101","amount_fen":24000,"method":"card"}`
		for i := 0; i < 2; i++ {
			if res, body := cashier.json("POST", "/api/v1/payments", decl); res.StatusCode != 422 || errCode(body) != "card_declined" || !strings.Contains(body, "insufficient funds") {
				t.Fatalf("declined card (%d): %d %s", i, res.StatusCode, body)
			}
		}
		if res, body := cashier.do("GET", "/api/v1/units/1-1-101/account", "", ""); decode[billing.Account](t, body).DueFen != 24000 {
			t.Fatalf("account after a decline: %d %s", res.StatusCode, body)
		}
	})
}
