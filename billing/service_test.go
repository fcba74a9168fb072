package billing_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	"onecard/fault"
	firmwaresim "onecard/firmware-sim"
	printersim "onecard/firmware-sim/printer"
	"onecard/printing"
	"onecard/store"
	"onecard/store/storetest"
)

// books is a site with three units, fee items and staff.
type books struct {
	db         *store.DB
	b          *billing.Service
	auth       *auth.Service
	cashier    context.Context // a cashier's context
	cashier2   context.Context
	supervisor auth.Actor
	clerk      auth.Actor
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newBooks(t *testing.T, db *store.DB) *books { return newBooksWith(t, db, billing.Options{}) }

func newBooksWith(t *testing.T, db *store.DB, o billing.Options) *books {
	t.Helper()
	ctx := context.Background()
	es, err := estate.Open(ctx, db, "t1", "测试小区", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range []estate.UnitInput{
		{Code: "1-1-101", Area: 8950, HandoverDate: "2020-01-01"},
		{Code: "1-1-102", Area: 12000, HandoverDate: "2020-01-01"},
		{Code: "2-1-101", Area: 10000, HandoverDate: "2030-01-01"}, // not handed over yet
	} {
		if _, err := es.CreateUnit(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	o.Log = quiet
	b, err := billing.Open(ctx, db, es.Site(), o)
	if err != nil {
		t.Fatal(err)
	}
	// 2026-12-20 10:00 at the site.
	b.SetClock(func() time.Time { return time.Date(2026, 12, 20, 2, 0, 0, 0, time.UTC) })
	as := auth.New(db, auth.DefaultPolicy)
	bk := &books{db: db, b: b, auth: as}
	actor := func(name string, role auth.Role) auth.Actor {
		st, err := as.CreateStaff(ctx, auth.NewStaff{Username: name, DisplayName: name, Role: role, Password: name + "-password-1"})
		if err != nil {
			t.Fatal(err)
		}
		return auth.Actor{Kind: "staff", ID: st.ID, Name: st.Username, Role: role}
	}
	bk.cashier = auth.WithActor(ctx, actor("cash1", auth.Cashier))
	bk.cashier2 = auth.WithActor(ctx, actor("cash2", auth.Cashier))
	bk.supervisor = actor("boss", auth.Supervisor)
	bk.clerk = actor("clerk1", auth.Clerk)
	for _, it := range []billing.FeeItem{
		{Code: "service", Name: "物业服务费", Kind: "per_area", PriceFen: 250}, // ¥2.50 per m² a month
		{Code: "parking", Name: "车位管理费", Kind: "monthly", PriceFen: 15000},
		{Code: "water", Name: "水费", Kind: "metered"},
		{Code: "card_fee", Name: "工本费", Kind: "one_off", PriceFen: 2000},
	} {
		if _, err := b.SaveFeeItem(bk.cashier, it); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Subscribe(bk.cashier, "parking", "1-1-102", "2026-01"); err != nil {
		t.Fatal(err)
	}
	return bk
}

func code(err error) string { return fault.Code(err) }

func TestGenerateIsIdempotent(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bk := newBooks(t, db)
		g, err := bk.b.Generate(bk.cashier, "2026-11")
		if err != nil {
			t.Fatal(err)
		}
		// 101: 89.50 m² × 2.50 = 223.75; 102: 120 × 2.50 = 300.00 and parking 150.00; 2-1-101 not handed over.
		if g.Created != 3 || g.Total != 22375+30000+15000 {
			t.Fatalf("generated %+v", g)
		}
		if yes, err := bk.b.Subscribed(bk.cashier, "1-1-102", "parking"); err != nil || !yes {
			t.Fatalf("1-1-102 rents a space: %v %v", yes, err)
		}
		if yes, _ := bk.b.Subscribed(bk.cashier, "1-1-101", "parking"); yes {
			t.Fatal("1-1-101 rents no space")
		}
		again, err := bk.b.Generate(bk.cashier, "2026-11")
		if err != nil || again.Created != 0 {
			t.Fatalf("second run: %+v %v", again, err)
		}
		if _, err := bk.b.Generate(bk.cashier, "2026-13"); code(err) != "period_invalid" {
			t.Fatalf("bad period: %v", err)
		}
		a, err := bk.b.Account(bk.cashier, "1-1-102")
		if err != nil {
			t.Fatal(err)
		}
		// Due on 15 November; today is 20 December: overdue by 35 days.
		if len(a.Open) != 2 || a.DueFen != 45000 || a.OverdueFen != 45000 || a.Open[0].DaysOverdue != 35 || a.Open[0].DueOn != "2026-11-15" {
			t.Fatalf("account %+v", a)
		}
	})
}

func TestCashPaymentReceiptAndBooks(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bk := newBooks(t, db)
		for _, p := range []string{"2026-10", "2026-11", "2026-12"} {
			if _, err := bk.b.Generate(bk.cashier, p); err != nil {
				t.Fatal(err)
			}
		}
		// Partial payment, oldest first: 223.75 (Oct) + 100.00 of Nov.
		p, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "k-000001", Unit: "1-1-101", AmountFen: 32375, Method: "cash", TenderedFen: 40000})
		if err != nil {
			t.Fatal(err)
		}
		if p.State != "settled" || p.ChangeFen != 7625 || p.Receipt == nil {
			t.Fatalf("payment %+v", p)
		}
		rc := p.Receipt
		if rc.Number != "2026-000001" || rc.Capital != "叁佰贰拾叁元柒角伍分" || len(rc.Lines) != 2 ||
			rc.Lines[0].Period != "2026-10" || rc.Lines[0].AmountFen != 22375 || rc.Lines[1].AmountFen != 10000 {
			t.Fatalf("receipt %+v", rc)
		}
		a, _ := bk.b.Account(bk.cashier, "1-1-101")
		if a.DueFen != 2*22375-10000 || len(a.Open) != 2 || a.Open[0].PaidFen != 10000 {
			t.Fatalf("account after: %+v", a)
		}
		// The same request again (a double click): the same payment.
		again, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "k-000001", Unit: "1-1-101", AmountFen: 32375, Method: "cash", TenderedFen: 40000})
		if err != nil || again.ID != p.ID || again.Receipt == nil || again.Receipt.Number != rc.Number {
			t.Fatalf("repeat: %+v %v", again, err)
		}
		// The key with another amount: refused.
		if _, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "k-000001", Unit: "1-1-101", AmountFen: 100, Method: "cash", TenderedFen: 100}); code(err) != "idem_key_reused" {
			t.Fatalf("reused key: %v", err)
		}
		// A transfer for the rest, next receipt number.
		p2, err := bk.b.Pay(bk.cashier2, billing.PayInput{IdemKey: "k-000002", Unit: "1-1-101", AmountFen: 2*22375 - 10000, Method: "transfer", TransferRef: "BOC-778"})
		if err != nil || p2.Receipt.Number != "2026-000002" {
			t.Fatalf("transfer: %+v %v", p2, err)
		}
		a, _ = bk.b.Account(bk.cashier, "1-1-101")
		if a.DueFen != 0 || len(a.Open) != 0 || len(a.Paid) != 3 {
			t.Fatalf("account paid up: %+v", a)
		}
		// Paying a paid bill again.
		if _, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "k-000003", Unit: "1-1-101", AmountFen: 100, Method: "cash", TenderedFen: 100}); code(err) != "nothing_due" {
			t.Fatalf("nothing due: %v", err)
		}
		var nAudit int
		db.Get(context.Background(), &nAudit, "SELECT COUNT(*) FROM audit_log WHERE action = 'payment.settle'")
		if nAudit != 2 {
			t.Fatalf("%d settle audit rows", nAudit)
		}
	})
}

func TestBadPayments(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bk := newBooks(t, db)
		bk.b.Generate(bk.cashier, "2026-11")
		a, _ := bk.b.Account(bk.cashier, "1-1-102")
		for _, c := range []struct {
			in   billing.PayInput
			want string
		}{
			{billing.PayInput{IdemKey: "k-1", Unit: "1-1-102", AmountFen: 100, Method: "cash", TenderedFen: 100}, "idem_key_invalid"},
			{billing.PayInput{IdemKey: "k-bad-01", Unit: "1-1-102", AmountFen: 0, Method: "cash"}, "amount_invalid"},
			{billing.PayInput{IdemKey: "k-bad-02", Unit: "1-1-102", AmountFen: -500, Method: "cash"}, "amount_invalid"},
			{billing.PayInput{IdemKey: "k-bad-03", Unit: "1-1-102", AmountFen: 1 << 40, Method: "cash", TenderedFen: 1 << 40}, "amount_invalid"},
			{billing.PayInput{IdemKey: "k-bad-04", Unit: "1-1-102", AmountFen: 45001, Method: "cash", TenderedFen: 50000}, "amount_over_due"},
			{billing.PayInput{IdemKey: "k-bad-05", Unit: "1-1-102", AmountFen: 100, Method: "cash", TenderedFen: 50}, "tendered_short"},
			{billing.PayInput{IdemKey: "k-bad-06", Unit: "1-1-102", AmountFen: 100, Method: "bitcoin"}, "method_invalid"},
			{billing.PayInput{IdemKey: "k-bad-07", Unit: "1-1-102", AmountFen: 100, Method: "transfer"}, "transfer_ref_required"},
			{billing.PayInput{IdemKey: "k-bad-08", Unit: "1-1-102", AmountFen: 100, Method: "card"}, "no_terminal"},
			{billing.PayInput{IdemKey: "k-bad-09", Unit: "9-9-999", AmountFen: 100, Method: "cash", TenderedFen: 100}, "unit_not_found"},
			{billing.PayInput{IdemKey: "k-bad-10", Unit: "1-1-102", BillIDs: []int64{a.Open[0].ID, 999999}, AmountFen: 100, Method: "cash", TenderedFen: 100}, "bill_not_open"},
		} {
			if _, err := bk.b.Pay(bk.cashier, c.in); code(err) != c.want {
				t.Errorf("%+v: %v, want %s", c.in, err, c.want)
			}
		}
		if _, err := bk.b.Pay(context.Background(), billing.PayInput{IdemKey: "k-bad-11", Unit: "1-1-102", AmountFen: 100, Method: "cash", TenderedFen: 100}); code(err) != "operator_required" {
			t.Errorf("no operator: %v", err)
		}
		var n int
		db.Get(context.Background(), &n, "SELECT COUNT(*) FROM payments")
		if n != 0 {
			t.Fatalf("%d payments recorded by bad requests", n)
		}
		if a2, _ := bk.b.Account(bk.cashier, "1-1-102"); a2.DueFen != a.DueFen {
			t.Fatal("bad requests changed the account")
		}
	})
}

// TestReceiptNumbersHaveNoGaps pays from several goroutines at once, some
// payments failing (a bill paid meanwhile), and checks the numbers run
// 1…n without a gap or a repeat.
func TestReceiptNumbersHaveNoGaps(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bk := newBooks(t, db)
		for m := 1; m <= 12; m++ {
			bk.b.Generate(bk.cashier, fmt.Sprintf("2026-%02d", m))
		}
		a, _ := bk.b.Account(bk.cashier, "1-1-102")
		var wg sync.WaitGroup
		errs := make(chan error, 40)
		for i := 0; i < 40; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				bill := a.Open[i%len(a.Open)] // two goroutines per bill: one wins
				ctx := bk.cashier
				if i%2 == 1 {
					ctx = bk.cashier2
				}
				_, err := bk.b.Pay(ctx, billing.PayInput{IdemKey: fmt.Sprintf("gap-%04d", i), Unit: "1-1-102", BillIDs: []int64{bill.ID},
					AmountFen: bill.AmountFen, Method: "cash", TenderedFen: bill.AmountFen})
				errs <- err
			}(i)
		}
		wg.Wait()
		close(errs)
		ok := 0
		for err := range errs {
			switch {
			case err == nil:
				ok++
			case code(err) == "bill_not_open" || code(err) == "bill_paid_meanwhile":
			default:
				t.Errorf("payment: %v", err)
			}
		}
		if ok != len(a.Open) {
			t.Fatalf("%d payments settled for %d bills", ok, len(a.Open))
		}
		var nums []int64
		db.Select(context.Background(), &nums, "SELECT number FROM receipts ORDER BY number")
		for i, n := range nums {
			if n != int64(i+1) {
				t.Fatalf("receipt numbers %v", nums)
			}
		}
		if len(nums) != ok {
			t.Fatalf("%d receipts for %d payments", len(nums), ok)
		}
	})
}

func TestVoidRefundAndDailyClose(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bk := newBooks(t, db)
		bk.b.Generate(bk.cashier, "2026-11")
		feeBill, err := bk.b.AddBill(bk.cashier, billing.BillInput{Unit: "1-1-101", Item: "card_fee", Period: "card-0001"})
		if err != nil {
			t.Fatal(err)
		}
		if rc, err := bk.b.BillReceipt(bk.cashier, feeBill.ID); err != nil || rc != 0 {
			t.Fatalf("receipt of an unpaid bill: %d %v", rc, err)
		}
		if _, err := bk.b.AddBill(bk.cashier, billing.BillInput{Unit: "1-1-101", Item: "card_fee", Period: "card-0001"}); code(err) != "bill_exists" {
			t.Fatalf("bill twice: %v", err)
		}
		p1, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "v-000001", Unit: "1-1-101", AmountFen: 22375 + 2000, Method: "cash", TenderedFen: 30000})
		if err != nil {
			t.Fatal(err)
		}
		if rc, err := bk.b.BillReceipt(bk.cashier, feeBill.ID); err != nil || rc != p1.Receipt.ID {
			t.Fatalf("receipt of the card fee: %d %v, want %d", rc, err, p1.Receipt.ID)
		}
		p2, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "v-000002", Unit: "1-1-102", AmountFen: 45000, Method: "transfer", TransferRef: "T1"})
		if err != nil {
			t.Fatal(err)
		}
		// A void needs a supervisor.
		if _, err := bk.b.Void(bk.cashier, p2.Receipt.ID, "wrong unit", bk.clerk); code(err) != "approver_role" {
			t.Fatalf("void approved by a clerk: %v", err)
		}
		if _, err := bk.b.Void(bk.cashier, p2.Receipt.ID, " ", bk.supervisor); code(err) != "reason_required" {
			t.Fatalf("void without reason: %v", err)
		}
		rc, err := bk.b.Void(bk.cashier, p2.Receipt.ID, "wrong unit", bk.supervisor)
		if err != nil || rc.State != "voided" || rc.Number != "2026-000002" {
			t.Fatalf("void: %+v %v", rc, err)
		}
		if _, err := bk.b.Void(bk.cashier, p2.Receipt.ID, "again", bk.supervisor); code(err) != "receipt_voided" {
			t.Fatalf("void twice: %v", err)
		}
		if a, _ := bk.b.Account(bk.cashier, "1-1-102"); a.DueFen != 45000 {
			t.Fatalf("bills after void: %+v", a)
		}
		// A refund of the card fee; never more than the receipt.
		if _, err := bk.b.Refund(bk.cashier, billing.RefundInput{ReceiptID: p1.Receipt.ID, AmountFen: 30000, Method: "cash", Reason: "x"}, bk.supervisor); code(err) != "refund_over_receipt" {
			t.Fatalf("refund over: %v", err)
		}
		if _, err := bk.b.Refund(bk.cashier, billing.RefundInput{ReceiptID: p1.Receipt.ID, AmountFen: 2000, Method: "cash", Reason: "card returned"}, bk.clerk); code(err) != "approver_role" {
			t.Fatalf("refund by a clerk: %v", err)
		}
		if _, err := bk.b.Refund(bk.cashier, billing.RefundInput{ReceiptID: p1.Receipt.ID, AmountFen: 2000, Method: "cash", Reason: "card returned"}, bk.supervisor); err != nil {
			t.Fatal(err)
		}
		if _, err := bk.b.Void(bk.cashier, p1.Receipt.ID, "x", bk.supervisor); code(err) != "receipt_refunded" {
			t.Fatalf("void of a refunded receipt: %v", err)
		}
		// The day: cash 243.75 in, 20.00 refunded; transfer 450 in and 450 voided.
		d, err := bk.b.Day(bk.cashier, "2026-12-20", "staff", auth.ActorFrom(bk.cashier).ID)
		if err != nil {
			t.Fatal(err)
		}
		if d.CashExpected != 22375 || d.Totals.Net["transfer"] != 0 || d.Totals.Payments["transfer"] != 45000 || d.Totals.Count != 2 {
			t.Fatalf("day %+v", d)
		}
		if _, err := bk.b.CloseDay(bk.cashier, billing.CloseInput{CountedFen: 22000}); code(err) != "difference_needs_note" {
			t.Fatalf("difference without note: %v", err)
		}
		if _, err := bk.b.CloseDay(bk.cashier2, billing.CloseInput{OperatorID: d.OperatorID, CountedFen: 22375}); code(err) != "close_others_day" {
			t.Fatalf("closing another cashier's day: %v", err)
		}
		closed, err := bk.b.CloseDay(bk.cashier, billing.CloseInput{CountedFen: 22000, Note: "short 3.75, counted twice"})
		if err != nil || closed.Close == nil || closed.Close.Difference != -375 {
			t.Fatalf("close: %+v %v", closed, err)
		}
		// Locked: no more payments, voids or refunds by this cashier today.
		if _, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "v-000003", Unit: "1-1-102", AmountFen: 100, Method: "cash", TenderedFen: 100}); code(err) != "day_closed" {
			t.Fatalf("pay after close: %v", err)
		}
		if _, err := bk.b.Refund(bk.cashier, billing.RefundInput{ReceiptID: p1.Receipt.ID, AmountFen: 100, Method: "cash", Reason: "x"}, bk.supervisor); code(err) != "day_closed" {
			t.Fatalf("refund after close: %v", err)
		}
		if _, err := bk.b.CloseDay(bk.cashier, billing.CloseInput{CountedFen: 22000, Note: "again"}); code(err) != "day_closed" {
			t.Fatalf("close twice: %v", err)
		}
		// Another cashier's day is open.
		if _, err := bk.b.Pay(bk.cashier2, billing.PayInput{IdemKey: "v-000004", Unit: "1-1-102", AmountFen: 100, Method: "cash", TenderedFen: 100}); err != nil {
			t.Fatal(err)
		}
		ops, err := bk.b.Operators(bk.cashier, "2026-12-20")
		if err != nil || len(ops) != 2 {
			t.Fatalf("operators %+v %v", ops, err)
		}
	})
}

func TestArrears(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bk := newBooks(t, db)
		for _, p := range []string{"2026-05", "2026-11", "2026-12"} {
			bk.b.Generate(bk.cashier, p)
		}
		if err := bk.b.SaveSettings(bk.cashier, billing.Settings{LateRatePerDayE5: 50, DueDays: 15}); err != nil {
			t.Fatal(err)
		}
		ar, err := bk.b.Arrears(bk.cashier, 0)
		if err != nil || len(ar) != 2 {
			t.Fatalf("arrears %+v %v", ar, err)
		}
		// 2026-05-15 to 2026-12-20: 219 days; each bill's late charge from
		// its own due date (219, 35 and 5 days).
		if ar[0].Unit != "1-1-101" || ar[0].Days != 219 || ar[0].Stage != "legal" || ar[0].Bills != 3 || ar[0].OverdueFen != 3*22375 {
			t.Fatalf("oldest %+v", ar[0])
		}
		if want := int64(22375*219*50/100000 + 22375*35*50/100000 + 22375*5*50/100000); ar[0].LateFen != want {
			t.Fatalf("late %d want %d", ar[0].LateFen, want)
		}
		if err := bk.b.SaveSettings(bk.cashier, billing.Settings{LateRatePerDayE5: -1, DueDays: 15}); code(err) != "late_rate_invalid" {
			t.Fatalf("bad rate: %v", err)
		}
		owing, err := bk.b.Owing(bk.cashier, "1-1-101")
		if err != nil || owing != 3*22375 {
			t.Fatalf("owing %d %v", owing, err)
		}
	})
}

// TestPrintJobsPrintOnceAndRetry runs the print worker against the
// printer simulator over a pty (devices/escpos through printing): a job
// the printer refuses (out of paper) fails and prints nothing, the desk's
// retry prints it once, a reprint says it is a copy.
func TestPrintJobsPrintOnceAndRetry(t *testing.T) {
	bk := newBooks(t, storetest.SQLite(t))
	bk.b.Generate(bk.cashier, "2026-11")
	dir := t.TempDir()
	pty, err := firmwaresim.OpenPTY(dir + "/printer.pty")
	if err != nil {
		t.Fatal(err)
	}
	sim := printersim.New(printersim.Options{Baud: 115200, Log: quiet})
	sim.SetPaper(printersim.PaperOut)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	simDone := make(chan struct{})
	go func() { defer close(simDone); sim.Serve(ctx, pty) }()
	defer func() { cancel(); <-simDone; pty.Close() }()
	pr := printing.Open(ctx, dir+"/printer.pty", 115200, quiet)
	waitFor(t, "the printer to connect", func() bool { _, err := pr.Status(ctx); return err == nil })
	done := make(chan struct{})
	go func() { defer close(done); bk.b.RunPrinter(ctx, pr) }()
	p, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "pr-00001", Unit: "1-1-101", AmountFen: 22375, Method: "cash", TenderedFen: 22375})
	if err != nil {
		t.Fatal(err)
	}
	var jobs []billing.PrintJob
	waitFor(t, "the job to fail", func() bool {
		jobs, _ = bk.b.PrintJobs(ctx)
		return len(jobs) == 1 && jobs[0].State == "failed"
	})
	if len(sim.Receipts()) != 0 {
		t.Fatal("printed without paper")
	}
	sim.SetPaper(printersim.PaperOK)
	if err := bk.b.RetryPrint(bk.cashier, jobs[0].ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the receipt printed", func() bool { return len(sim.Receipts()) == 1 })
	if err := bk.b.RetryPrint(bk.cashier, jobs[0].ID); code(err) != "print_job_not_failed" {
		t.Fatalf("retry of a printed job: %v", err)
	}
	if err := bk.b.Reprint(bk.cashier, p.Receipt.ID); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the copy printed", func() bool { return len(sim.Receipts()) == 2 })
	first, copy := sim.Receipts()[0].Text, sim.Receipts()[1].Text
	for _, want := range []string{"收款收据", "No. 2026-000001", "1-1-101", "贰佰贰拾叁元柒角伍分", "物业服务费 2026-11"} {
		if !strings.Contains(first, want) {
			t.Errorf("receipt lacks %q:\n%s", want, first)
		}
	}
	if strings.Contains(first, "重印") || !strings.Contains(copy, "收款收据（重印副本）") {
		t.Fatalf("copy marking wrong:\n%s\n---\n%s", first, copy)
	}
	cancel()
	<-done
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func TestDayReport(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		bk := newBooks(t, db)
		bk.b.Generate(bk.cashier, "2026-11")
		p, err := bk.b.Pay(bk.cashier, billing.PayInput{IdemKey: "rep-00001", Unit: "1-1-101", AmountFen: 22375, Method: "cash", TenderedFen: 22375})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bk.b.Pay(bk.cashier2, billing.PayInput{IdemKey: "rep-00002", Unit: "1-1-102", AmountFen: 45000, Method: "transfer", TransferRef: "T9"}); err != nil {
			t.Fatal(err)
		}
		if _, err := bk.b.Void(bk.cashier, p.Receipt.ID, "wrong amount", bk.supervisor); err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		if err := bk.b.DayReport(bk.cashier, "2026-12-20", &buf); err != nil {
			t.Fatal(err)
		}
		f, err := excelize.OpenReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		receipts, _ := f.GetRows("收据")
		totals, _ := f.GetRows("日结")
		if len(receipts) != 3 || receipts[1][0] != "2026-000001" || receipts[1][1] != "voided" || receipts[2][4] != "450" {
			t.Fatalf("receipts sheet %v", receipts)
		}
		if len(totals) != 3 {
			t.Fatalf("totals sheet %v", totals)
		}
		if err := bk.b.DayReport(bk.cashier, "20-12-2026", &buf); code(err) != "day_invalid" {
			t.Fatalf("bad day: %v", err)
		}
	})
}
