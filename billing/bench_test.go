package billing_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	"onecard/store"
	"onecard/store/storetest"
)

// EnvBenchPayments sets how many payments one run of BenchmarkSettle
// settles (default benchPayments).
const EnvBenchPayments = "ONECARD_BENCH_PAYMENTS"

const benchPayments = 300

// The benchmark's fixed clock: 2026-12-20 10:00 at the site.
var (
	benchNow  = time.Date(2026, 12, 20, 2, 0, 0, 0, time.UTC)
	benchDay  = "2026-12-20"
	benchYear = 2026
)

// BenchmarkSettle measures settled cash payments per second through
// billing.Service.Pay (each paying one open bill of its own, with its
// receipt, print job and audit rows), sequential from one goroutine, and,
// in the same run on a fresh database of the same dialect (taking turns
// with onecard, benchChunk payments at a time), the floor: one durable
// transaction per payment writing the same rows with plain SQL. It reports
// payments/s, floor-payments/s and their ratio (the target is ≥ 0.5).
//
//	ONECARD_BENCH_PAYMENTS=3000 go test ./billing -run '^$' -bench Settle -benchtime 1x -count 3
//
// PostgreSQL runs when ONECARD_TEST_POSTGRES is set (and must, under CI).
func BenchmarkSettle(b *testing.B) {
	n := benchPayments
	if v := os.Getenv(EnvBenchPayments); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1 || n > 100_000 {
			b.Fatalf("%s=%q: want a count from 1 to 100000", EnvBenchPayments, v)
		}
	}
	b.Run("sqlite", func(b *testing.B) {
		benchSettle(b, n, func() *store.DB { return storetest.SQLite(b) })
	})
	b.Run("postgres", func(b *testing.B) {
		storetest.PostgresURL(b) // skips without PostgreSQL (fails under CI)
		benchSettle(b, n, func() *store.DB { return storetest.Postgres(b) })
	})
}

// benchChunk is how many payments onecard and the floor take in turn: the
// two are interleaved so that both see the same machine (other processes,
// the database's checkpoints), and the ratio stays meaningful on a busy box.
const benchChunk = 50

func benchSettle(b *testing.B, n int, open func() *store.DB) {
	var took, floorTook time.Duration
	var sizes, floorSizes rowSizes
	b.StopTimer()
	for range b.N {
		app := newBenchSite(b, open(), n)
		floor := newBenchSite(b, open(), n)
		for lo, turn := 0, 0; lo < n; lo, turn = lo+benchChunk, turn+1 {
			hi := min(lo+benchChunk, n)
			// Alternate which goes first, so neither always follows the other.
			for k := range 2 {
				if (k+turn)%2 == 0 {
					b.StartTimer()
					took += payRange(b, app, lo, hi)
					b.StopTimer()
				} else {
					floorTook += floorRange(b, floor, lo, hi)
				}
			}
		}
		sizes = sizes.add(checkSettled(b, app, "onecard"))
		floorSizes = floorSizes.add(checkSettled(b, floor, "floor"))
	}
	// The floor must write rows of the size onecard writes, or it is no floor.
	if !sizes.near(floorSizes) {
		b.Fatalf("row sizes differ: onecard %+v, floor %+v", sizes, floorSizes)
	}
	total := float64(n * b.N)
	rate, floorRate := total/took.Seconds(), total/floorTook.Seconds()
	b.ReportMetric(rate, "payments/s")
	b.ReportMetric(floorRate, "floor-payments/s")
	b.ReportMetric(rate/floorRate, "ratio")
	b.Logf("%d payments ×%d: onecard %v (%.0f/s), floor %v (%.0f/s), ratio %.2f; bytes per payment: onecard %s, floor %s",
		n, b.N, took, rate, floorTook, floorRate, rate/floorRate, sizes.per(total), floorSizes.per(total))
}

// payRange pays bills lo..hi-1 of s as the cashier would, one after
// another, and returns the time it took.
func payRange(tb testing.TB, s *benchSite, lo, hi int) time.Duration {
	tb.Helper()
	start := time.Now()
	for i := lo; i < hi; i++ {
		bl := s.bills[i]
		p, err := s.b.Pay(s.cashier, billing.PayInput{IdemKey: fmt.Sprintf("bench-%08d", i), Unit: bl.Unit,
			BillIDs: []int64{bl.ID}, AmountFen: bl.Amount, Method: "cash", TenderedFen: (bl.Amount + 9999) / 10000 * 10000})
		if err != nil {
			tb.Fatalf("payment %d: %v", i, err)
		}
		if p.State != "settled" || p.Receipt == nil || p.Receipt.Number != billing.ReceiptNumber(benchYear, int64(i+1)) {
			tb.Fatalf("payment %d: %+v", i, p)
		}
	}
	return time.Since(start)
}

// benchSite is a site with n units handed over, one open service bill
// each, and a cashier.
type benchSite struct {
	db      *store.DB
	b       *billing.Service
	site    estate.Site
	cashier context.Context
	op      auth.Actor
	bills   []benchBill
}

type benchBill struct {
	ID     int64  `db:"id"`
	UnitID int64  `db:"unit_id"`
	Unit   string `db:"code"`
	Period string `db:"period"`
	Amount int64  `db:"amount_fen"`
}

func newBenchSite(tb testing.TB, db *store.DB, n int) *benchSite {
	tb.Helper()
	ctx := context.Background()
	es, err := estate.Open(ctx, db, "t1", "测试小区", "Asia/Shanghai")
	if err != nil {
		tb.Fatal(err)
	}
	// n units: 4 a floor, 30 floors a building, areas 60.00–149.99 m².
	rows := make([]estate.RollRow, n)
	for i := range rows {
		floor := 1 + i/4%30
		rows[i] = estate.RollRow{Line: i + 2, Unit: fmt.Sprintf("%d-1-%d%02d", 1+i/120, floor, 1+i%4),
			Area: fmt.Sprintf("%d.%02d", 60+i%90, i*37%100), HandoverDate: "2020-01-01"}
	}
	if res, err := es.ImportRoll(ctx, rows); err != nil || res.UnitsCreated != n {
		tb.Fatalf("units: %+v %v", res, err)
	}
	bs, err := billing.Open(ctx, db, es.Site(), billing.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	bs.SetClock(func() time.Time { return benchNow })
	as := auth.New(db, auth.DefaultPolicy)
	st, err := as.CreateStaff(ctx, auth.NewStaff{Username: "cash1", DisplayName: "收银员一", Role: auth.Cashier, Password: "cash1-password-1"})
	if err != nil {
		tb.Fatal(err)
	}
	op := auth.Actor{Kind: "staff", ID: st.ID, Name: st.Username, Role: auth.Cashier}
	s := &benchSite{db: db, b: bs, site: es.Site(), cashier: auth.WithActor(ctx, op), op: op}
	if _, err := bs.SaveFeeItem(s.cashier, billing.FeeItem{Code: "service", Name: "物业服务费", Kind: "per_area", PriceFen: 250}); err != nil {
		tb.Fatal(err)
	}
	if g, err := bs.Generate(s.cashier, "2026-12"); err != nil || g.Created != n {
		tb.Fatalf("bills: %+v %v", g, err)
	}
	if err := db.Select(ctx, &s.bills, `SELECT b.id, b.unit_id, u.code, b.period, b.amount_fen FROM bills b JOIN units u ON u.id = b.unit_id
		WHERE b.site_id = ? AND b.state = 'open' ORDER BY b.id`, s.site.ID); err != nil || len(s.bills) != n {
		tb.Fatalf("bills: %d %v", len(s.bills), err)
	}
	return s
}

// floorRange settles bills lo..hi-1 of s with plain SQL and returns the
// time it took: per payment one
// transaction writing what Pay leaves behind (the payment, its allocation,
// the bill, the receipt counter and receipt, the print job and the two
// audit rows), with the same JSON documents, and nothing else.
func floorRange(tb testing.TB, s *benchSite, lo, hi int) time.Duration {
	tb.Helper()
	start := time.Now()
	ctx := context.Background()
	db := s.db
	var (
		insPayment = db.Rebind(`INSERT INTO payments (site_id, unit_id, idem_key, ref, method, amount_fen, tendered_fen, change_fen, bill_ids,
			state, transfer_ref, operator_kind, operator_id, operator_name, business_day, created_at, updated_at)
			VALUES (?, ?, ?, ?, 'cash', ?, ?, ?, ?, 'settled', '', 'staff', ?, ?, ?, ?, ?) RETURNING id`)
		insAlloc = db.Rebind(`INSERT INTO payment_allocations (payment_id, bill_id, amount_fen) VALUES (?, ?, ?)`)
		updBill  = db.Rebind(`UPDATE bills SET paid_fen = paid_fen + ?, state = CASE WHEN paid_fen + ? = amount_fen THEN 'paid' ELSE 'open' END,
			updated_at = ? WHERE id = ? AND state = 'open' AND amount_fen - paid_fen >= ?`)
		takeNo = db.Rebind(`INSERT INTO receipt_counters (site_id, year, last_no) VALUES (?, ?, 1)
			ON CONFLICT (site_id, year) DO UPDATE SET last_no = receipt_counters.last_no + 1 RETURNING last_no`)
		insReceipt = db.Rebind(`INSERT INTO receipts (site_id, year, number, payment_id, state, issued_at) VALUES (?, ?, ?, ?, 'issued', ?) RETURNING id`)
		insJob     = db.Rebind(`INSERT INTO print_jobs (site_id, printer, kind, receipt_id, payload, state, created_at, updated_at)
			VALUES (?, 'desk', 'receipt', ?, ?, 'queued', ?, ?)`)
		insAudit = db.Rebind(`INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, action, entity, entity_id, before_json, after_json, request_id)
			VALUES (?, 'staff', ?, ?, ?, 'payment', ?, ?, ?, '')`)
	)
	for i := lo; i < hi; i++ {
		bl := s.bills[i]
		tendered := (bl.Amount + 9999) / 10000 * 10000
		p := billing.Payment{Ref: fmt.Sprintf("P261220%010X", i), UnitCode: bl.Unit, Method: "cash", AmountFen: bl.Amount,
			TenderedFen: tendered, ChangeFen: tendered - bl.Amount, State: "created", BillIDs: strconv.FormatInt(bl.ID, 10),
			IdemKey: fmt.Sprintf("bench-%08d", i), OpKind: "staff", OpID: s.op.ID, OpName: s.op.Name, CreatedAt: benchNow}
		err := func() error {
			tx, err := db.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback()
			if err := tx.QueryRowContext(ctx, insPayment, s.site.ID, bl.UnitID, p.IdemKey, p.Ref, p.AmountFen, p.TenderedFen, p.ChangeFen,
				p.BillIDs, p.OpID, p.OpName, benchDay, benchNow, benchNow).Scan(&p.ID); err != nil {
				return err
			}
			created := jsonText(p)
			if _, err := tx.ExecContext(ctx, insAlloc, p.ID, bl.ID, bl.Amount); err != nil {
				return err
			}
			if err := execOne(ctx, tx, updBill, bl.Amount, bl.Amount, benchNow, bl.ID, bl.Amount); err != nil {
				return err
			}
			var no int64
			if err := tx.QueryRowContext(ctx, takeNo, s.site.ID, benchYear).Scan(&no); err != nil {
				return err
			}
			var rid int64
			if err := tx.QueryRowContext(ctx, insReceipt, s.site.ID, benchYear, no, p.ID, benchNow).Scan(&rid); err != nil {
				return err
			}
			rc := billing.Receipt{ID: rid, Number: billing.ReceiptNumber(benchYear, no), State: "issued", Site: s.site.Name, Unit: bl.Unit,
				Lines: []billing.ReceiptLine{{Item: "物业服务费", Period: bl.Period, AmountFen: bl.Amount}}, AmountFen: p.AmountFen,
				Capital: billing.Capital(p.AmountFen), Method: "cash", TenderedFen: p.TenderedFen, ChangeFen: p.ChangeFen, Operator: p.OpName,
				IssuedAt: benchNow, Local: benchNow.In(benchLoc).Format("2006-01-02 15:04"), PaymentID: p.ID}
			if _, err := tx.ExecContext(ctx, insJob, s.site.ID, rid, jsonText(floorDoc(rc)), benchNow, benchNow); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, insAudit, time.Now().UTC(), s.op.ID, s.op.Name, "payment.create", strconv.FormatInt(p.ID, 10),
				nil, created); err != nil {
				return err
			}
			before := jsonText(p)
			day := benchDay
			p.State, p.BusinessDay, p.Receipt = "settled", &day, &rc
			after := jsonText(map[string]any{"payment": p, "receipt": rc.Number, "unallocated_fen": 0})
			if _, err := tx.ExecContext(ctx, insAudit, time.Now().UTC(), s.op.ID, s.op.Name, "payment.settle", strconv.FormatInt(p.ID, 10),
				before, after); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			tb.Fatalf("floor payment %d: %v", i, err)
		}
	}
	return time.Since(start)
}

var benchLoc = func() *time.Location {
	loc, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		panic(err)
	}
	return loc
}()

func execOne(ctx context.Context, tx *sql.Tx, query string, args ...any) error {
	res, err := tx.ExecContext(ctx, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("%d rows changed, want 1 (%v)", n, err)
	}
	return nil
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// floorDoc is a cash receipt as billing lays it out (print.go).
func floorDoc(rc billing.Receipt) []billing.Line {
	doc := []billing.Line{
		{Text: rc.Site, Align: "center", Bold: true},
		{Text: "收款收据", Align: "center", Big: true},
		{Text: "No. " + rc.Number, Align: "center"},
		{Rule: true}, {Text: "房号: " + rc.Unit}, {Text: "时间: " + rc.Local}, {Rule: true},
	}
	for _, l := range rc.Lines {
		doc = append(doc, billing.Line{Text: fmt.Sprintf("%s %s  ¥%s", l.Item, l.Period, billing.Yuan(l.AmountFen))})
	}
	return append(doc, billing.Line{Rule: true},
		billing.Line{Text: "合计: ¥" + billing.Yuan(rc.AmountFen), Bold: true},
		billing.Line{Text: "大写: " + rc.Capital, Bold: true},
		billing.Line{Text: "方式: " + billing.MethodName(rc.Method)},
		billing.Line{Text: fmt.Sprintf("实收: ¥%s  找零: ¥%s", billing.Yuan(rc.TenderedFen), billing.Yuan(rc.ChangeFen))},
		billing.Line{Text: "收款人: " + rc.Operator},
		billing.Line{QR: "onecard:receipt:" + rc.Number, Align: "center"},
		billing.Line{Text: "请妥善保管本收据，谢谢！", Align: "center"},
		billing.Line{Cut: true})
}

// rowSizes are the characters written in the two big text columns.
type rowSizes struct {
	Payload, Audit int64
}

func (r rowSizes) add(o rowSizes) rowSizes { return rowSizes{r.Payload + o.Payload, r.Audit + o.Audit} }

func (r rowSizes) near(o rowSizes) bool {
	within := func(a, b int64) bool { return a*100 >= b*95 && b*100 >= a*95 }
	return within(r.Payload, o.Payload) && within(r.Audit, o.Audit)
}

func (r rowSizes) per(n float64) string {
	return fmt.Sprintf("payload %.0f + audit %.0f", float64(r.Payload)/n, float64(r.Audit)/n)
}

// checkSettled fails unless every bill of s is paid by one settled cash
// payment with its allocation, receipt, queued print job and two audit
// rows, and the receipts are numbered 1..n without gaps. It returns the
// sizes of the print payloads and audit documents.
func checkSettled(tb testing.TB, s *benchSite, who string) rowSizes {
	tb.Helper()
	ctx := context.Background()
	n := int64(len(s.bills))
	var sum int64
	for _, bl := range s.bills {
		sum += bl.Amount
	}
	var numbers []int64
	if err := s.db.Select(ctx, &numbers, "SELECT number FROM receipts WHERE site_id = ? AND year = ? AND state = 'issued' ORDER BY number",
		s.site.ID, benchYear); err != nil {
		tb.Fatal(err)
	}
	if int64(len(numbers)) != n {
		tb.Fatalf("%s: %d receipts, want %d", who, len(numbers), n)
	}
	for i, no := range numbers {
		if no != int64(i+1) {
			tb.Fatalf("%s: receipt %d has number %d: numbers are not 1..%d without gaps", who, i+1, no, n)
		}
	}
	for _, c := range []struct {
		what  string
		query string
		want  int64
	}{
		{"settled payments", "SELECT COUNT(*) FROM payments WHERE site_id = ? AND state = 'settled' AND method = 'cash' AND business_day = '" + benchDay + "'", n},
		{"payments", "SELECT COUNT(*) FROM payments WHERE site_id = ?", n},
		{"allocations", "SELECT COUNT(*) FROM payment_allocations a JOIN payments p ON p.id = a.payment_id WHERE p.site_id = ?", n},
		{"allocated fen", "SELECT COALESCE(SUM(a.amount_fen), 0) FROM payment_allocations a JOIN payments p ON p.id = a.payment_id WHERE p.site_id = ?", sum},
		{"paid bills", "SELECT COUNT(*) FROM bills WHERE site_id = ? AND state = 'paid' AND paid_fen = amount_fen", n},
		{"receipts of settled payments", "SELECT COUNT(*) FROM receipts r JOIN payments p ON p.id = r.payment_id WHERE r.site_id = ? AND p.state = 'settled'", n},
		{"queued receipt print jobs", "SELECT COUNT(DISTINCT receipt_id) FROM print_jobs WHERE site_id = ? AND kind = 'receipt' AND state = 'queued'", n},
		{"print jobs", "SELECT COUNT(*) FROM print_jobs WHERE site_id = ?", n},
		{"last receipt number", "SELECT last_no FROM receipt_counters WHERE site_id = ? AND year = " + strconv.Itoa(benchYear), n},
		{"payment.create audit rows", "SELECT COUNT(*) FROM audit_log WHERE action = 'payment.create' AND actor_id = ?", n},
		{"payment.settle audit rows", "SELECT COUNT(*) FROM audit_log WHERE action = 'payment.settle' AND actor_id = ?", n},
	} {
		arg := s.site.ID
		if c.what == "payment.create audit rows" || c.what == "payment.settle audit rows" {
			arg = s.op.ID
		}
		var got int64
		if err := s.db.Get(ctx, &got, c.query, arg); err != nil {
			tb.Fatalf("%s: %s: %v", who, c.what, err)
		}
		if got != c.want {
			tb.Fatalf("%s: %d %s, want %d", who, got, c.what, c.want)
		}
	}
	var sz rowSizes
	if err := s.db.Get(ctx, &sz.Payload, "SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM print_jobs WHERE site_id = ?", s.site.ID); err != nil {
		tb.Fatal(err)
	}
	if err := s.db.Get(ctx, &sz.Audit, `SELECT COALESCE(SUM(LENGTH(COALESCE(before_json, '')) + LENGTH(COALESCE(after_json, ''))), 0)
		FROM audit_log WHERE action LIKE 'payment.%'`); err != nil {
		tb.Fatal(err)
	}
	return sz
}
