package billing

import (
	"context"
	"fmt"
	"strings"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// Bill is what a unit owes for one fee item and period.
type Bill struct {
	ID          int64  `db:"id" json:"id"`
	UnitCode    string `db:"unit_code" json:"unit"`
	ItemCode    string `db:"item_code" json:"item"`
	ItemName    string `db:"item_name" json:"item_name"`
	Period      string `db:"period" json:"period"`
	Description string `db:"description" json:"description,omitempty"`
	AmountFen   int64  `db:"amount_fen" json:"amount_fen"`
	PaidFen     int64  `db:"paid_fen" json:"paid_fen"`
	DueOn       string `db:"due_on" json:"due_on"`
	State       string `db:"state" json:"state"`
	// DaysOverdue is set for open bills past their due date.
	DaysOverdue int `db:"-" json:"days_overdue,omitempty"`
}

// Outstanding is what is left to pay.
func (b Bill) Outstanding() int64 { return b.AmountFen - b.PaidFen }

const billCols = `b.id, u.code AS unit_code, f.code AS item_code, f.name AS item_name, b.period, b.description,
	b.amount_fen, b.paid_fen, b.due_on, b.state`
const billFrom = ` FROM bills b JOIN units u ON u.id = b.unit_id JOIN fee_items f ON f.id = b.fee_item_id`

// Generated counts what Generate did.
type Generated struct {
	Period  string `json:"period"`
	Created int    `json:"created"`
	Total   int64  `json:"total_fen"`
}

// Generate makes the period's bills for every per-area and monthly item
// and every unit handed over by the end of the period. It is idempotent:
// a bill that exists is left as it is.
func (s *Service) Generate(ctx context.Context, period string) (Generated, error) {
	start, err := parsePeriod(period)
	if err != nil {
		return Generated{}, err
	}
	end := start.AddDate(0, 1, -1).Format(time.DateOnly)
	g := Generated{Period: period}
	err = s.tx(ctx, func(tx *store.Tx) error {
		st, err := s.Settings(ctx)
		if err != nil {
			return err
		}
		due := start.AddDate(0, 0, st.DueDays-1).Format(time.DateOnly)
		var items []FeeItem
		if err := tx.Select(ctx, &items, `SELECT id, code, name, kind, price_fen, active, version FROM fee_items
			WHERE site_id = ? AND active = ? AND kind IN ('per_area', 'monthly') AND price_fen > 0 ORDER BY id`, s.site.ID, true); err != nil {
			return err
		}
		var units []unitRef
		if err := tx.Select(ctx, &units, `SELECT id, code, area_centi_m2 FROM units
			WHERE site_id = ? AND handover_date IS NOT NULL AND handover_date <= ? ORDER BY id`, s.site.ID, end); err != nil {
			return err
		}
		now := s.now()
		for _, it := range items {
			var subs []int64
			if err := tx.Select(ctx, &subs, `SELECT unit_id FROM fee_subscriptions WHERE fee_item_id = ?
				AND since_period <= ? AND (until_period IS NULL OR until_period >= ?)`, it.ID, period, period); err != nil {
				return err
			}
			var any int
			if err := tx.Get(ctx, &any, "SELECT COUNT(*) FROM fee_subscriptions WHERE fee_item_id = ?", it.ID); err != nil {
				return err
			}
			only := map[int64]bool{}
			for _, id := range subs {
				only[id] = true
			}
			for _, u := range units {
				if any > 0 && !only[u.ID] {
					continue
				}
				amount := it.PriceFen
				if it.Kind == "per_area" {
					amount = (it.PriceFen*u.Area + 50) / 100 // price per m², area in 0.01 m²: rounded to the fen
				}
				if amount <= 0 {
					continue
				}
				res, err := tx.Exec(ctx, `INSERT INTO bills (site_id, unit_id, fee_item_id, period, amount_fen, due_on, created_at, updated_at)
					VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (unit_id, fee_item_id, period) DO NOTHING`,
					s.site.ID, u.ID, it.ID, period, amount, due, now, now)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 1 {
					g.Created++
					g.Total += amount
				}
			}
		}
		if g.Created == 0 {
			return nil
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "bills.generate", Entity: "site", EntityID: s.site.ID, After: g})
	})
	if err != nil {
		return Generated{}, fmt.Errorf("billing: generate %s: %w", period, err)
	}
	return g, nil
}

// BillInput is a bill entered by hand: a metered reading's amount, a card
// fee, a deposit. For one_off items Period is a reference unique per unit
// and item (the card application, say).
type BillInput struct {
	Unit        string `json:"unit"`
	Item        string `json:"item"`
	Period      string `json:"period"`
	AmountFen   int64  `json:"amount_fen"` // 0: the item's price
	Description string `json:"description"`
}

// AddBill records a bill for a metered or one-off item (or a monthly one
// missed by Generate).
func (s *Service) AddBill(ctx context.Context, in BillInput) (Bill, error) {
	var b Bill
	err := s.tx(ctx, func(tx *store.Tx) error {
		var err error
		b, err = s.AddBillTx(ctx, tx, in)
		return err
	})
	return b, err
}

// AddBillTx is AddBill inside the caller's transaction (a card application
// charging its fee with the card's record).
func (s *Service) AddBillTx(ctx context.Context, tx *store.Tx, in BillInput) (Bill, error) {
	tx.AfterCommit(s.changed)
	in.Description = strings.TrimSpace(in.Description)
	if len([]rune(in.Description)) > 100 {
		return Bill{}, fault.Invalid("description", "description_too_long")
	}
	it, err := s.feeItem(ctx, tx, in.Item)
	if err != nil {
		return Bill{}, err
	}
	if !it.Active {
		return Bill{}, fault.Invalid("item", "fee_item_inactive")
	}
	if in.AmountFen == 0 {
		in.AmountFen = it.PriceFen
	}
	if in.AmountFen <= 0 || in.AmountFen > MaxAmount {
		return Bill{}, fault.Invalid("amount", "amount_invalid")
	}
	due := s.Today()
	if it.Kind == "one_off" {
		if in.Period == "" || len(in.Period) > 40 {
			return Bill{}, fault.Invalid("period", "reference_invalid")
		}
	} else {
		start, err := parsePeriod(in.Period)
		if err != nil {
			return Bill{}, err
		}
		st, err := s.Settings(ctx)
		if err != nil {
			return Bill{}, err
		}
		due = start.AddDate(0, 0, st.DueDays-1).Format(time.DateOnly)
	}
	u, err := s.unit(ctx, tx, in.Unit)
	if err != nil {
		return Bill{}, err
	}
	now := s.now()
	id, err := tx.Insert(ctx, `INSERT INTO bills (site_id, unit_id, fee_item_id, period, description, amount_fen, due_on, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, s.site.ID, u.ID, it.ID, in.Period, in.Description, in.AmountFen, due, now, now)
	if store.IsUnique(err) {
		return Bill{}, fault.Conflict("period", "bill_exists")
	}
	if err != nil {
		return Bill{}, err
	}
	b, err := s.bill(ctx, tx, id)
	if err != nil {
		return Bill{}, err
	}
	return b, auth.Record(ctx, tx, auth.Entry{Action: "bill.create", Entity: "bill", EntityID: id, After: b})
}

func (s *Service) bill(ctx context.Context, q store.Q, id int64) (Bill, error) {
	var b Bill
	err := q.Get(ctx, &b, "SELECT "+billCols+billFrom+" WHERE b.id = ? AND b.site_id = ?", id, s.site.ID)
	if store.IsNoRows(err) {
		return b, fault.NotFound("bill_not_found")
	}
	return b, err
}

// Account is a unit's standing: open bills oldest first, recent paid
// ones, and the totals.
type Account struct {
	Unit        string  `json:"unit"`
	Open        []Bill  `json:"open"`
	Paid        []Bill  `json:"paid"`
	DueFen      int64   `json:"due_fen"`
	OverdueFen  int64   `json:"overdue_fen"`
	LateFen     int64   `json:"late_fen"` // contractual late charge, if the site has one
	CreditFen   int64   `json:"credit_fen"`
	Receipts    []Issue `json:"receipts"`
	PendingCard bool    `json:"pending_card"` // a card payment's outcome is not known yet
}

// Issue is a receipt in a list.
type Issue struct {
	ID        int64     `db:"id" json:"id"`
	Number    string    `db:"-" json:"number"`
	Year      int       `db:"year" json:"-"`
	No        int64     `db:"number" json:"-"`
	State     string    `db:"state" json:"state"`
	AmountFen int64     `db:"amount_fen" json:"amount_fen"`
	Method    string    `db:"method" json:"method"`
	IssuedAt  time.Time `db:"issued_at" json:"issued_at"`
}

// ReceiptNumber formats a receipt's number: year and sequence.
func ReceiptNumber(year int, no int64) string { return fmt.Sprintf("%d-%06d", year, no) }

// Account returns a unit's account.
func (s *Service) Account(ctx context.Context, unitCode string) (Account, error) {
	u, err := s.unit(ctx, s.db, unitCode)
	if err != nil {
		return Account{}, err
	}
	a := Account{Unit: u.Code, Open: []Bill{}, Paid: []Bill{}, Receipts: []Issue{}}
	if err := s.db.Select(ctx, &a.Open, "SELECT "+billCols+billFrom+" WHERE b.unit_id = ? AND b.state = 'open' ORDER BY b.due_on, b.period, b.id", u.ID); err != nil {
		return a, err
	}
	if err := s.db.Select(ctx, &a.Paid, "SELECT "+billCols+billFrom+" WHERE b.unit_id = ? AND b.state = 'paid' ORDER BY b.due_on DESC, b.id DESC LIMIT 24", u.ID); err != nil {
		return a, err
	}
	st, err := s.Settings(ctx)
	if err != nil {
		return a, err
	}
	today := s.Today()
	for i := range a.Open {
		b := &a.Open[i]
		a.DueFen += b.Outstanding()
		if b.DueOn < today {
			b.DaysOverdue = daysBetween(b.DueOn, today)
			a.OverdueFen += b.Outstanding()
			a.LateFen += lateCharge(b.Outstanding(), b.DaysOverdue, st.LateRatePerDayE5)
		}
	}
	// Credit: what settled payments brought beyond the bills they paid
	// (a card payment approved for a bill someone paid meanwhile).
	if err := s.db.Get(ctx, &a.CreditFen, `SELECT COALESCE(SUM(p.amount_fen - COALESCE((SELECT SUM(pa.amount_fen)
		FROM payment_allocations pa WHERE pa.payment_id = p.id), 0)), 0)
		FROM payments p JOIN receipts r ON r.payment_id = p.id WHERE p.unit_id = ? AND p.state = 'settled' AND r.state = 'issued'`, u.ID); err != nil {
		return a, err
	}
	a.CreditFen = max(a.CreditFen, 0)
	if err := s.db.Select(ctx, &a.Receipts, `SELECT r.id, r.year, r.number, r.state, p.amount_fen, p.method, r.issued_at
		FROM receipts r JOIN payments p ON p.id = r.payment_id WHERE p.unit_id = ? ORDER BY r.id DESC LIMIT 20`, u.ID); err != nil {
		return a, err
	}
	for i := range a.Receipts {
		a.Receipts[i].Number = ReceiptNumber(a.Receipts[i].Year, a.Receipts[i].No)
	}
	var pending int
	if err := s.db.Get(ctx, &pending, "SELECT COUNT(*) FROM payments WHERE unit_id = ? AND state IN ('created', 'sent', 'unknown', 'approved')", u.ID); err != nil {
		return a, err
	}
	a.PendingCard = pending > 0
	return a, nil
}

// accountTTL bounds how stale a cached account may be: the books written
// by this process are seen at once (every write forgets the cache), those
// written elsewhere (onecard billing generate, another replica) within
// accountTTL.
const accountTTL = 2 * time.Second

type cachedAccount struct {
	gen, stamp uint64
	at         time.Time
	day        string
	a          Account
}

// CachedAccount is Account for screens read far more often than the books
// change (the kiosk's bills page): the unit's account as it was at most
// accountTTL ago, and never older than this process's last write to the
// books. The result is shared: do not modify it. Its stamp is the same
// while the same reading is returned, and new with each reading, so a
// screen may keep what it made of it. Payments never rely on it (Pay reads
// the bills afresh in its transaction).
func (s *Service) CachedAccount(ctx context.Context, unitCode string) (Account, uint64, error) {
	gen, now, day := s.gen.Load(), s.now(), s.Today()
	s.mu.Lock()
	c, ok := s.accounts[unitCode]
	s.mu.Unlock()
	if ok && c.gen == gen && c.day == day && now.Sub(c.at) < accountTTL {
		return c.a, c.stamp, nil
	}
	a, err := s.Account(ctx, unitCode)
	if err != nil {
		return a, 0, err
	}
	c = cachedAccount{gen: gen, stamp: s.readings.Add(1), at: now, day: day, a: a}
	s.mu.Lock()
	if len(s.accounts) >= maxCachedAccounts {
		clear(s.accounts)
	}
	s.accounts[unitCode] = c
	s.mu.Unlock()
	return a, c.stamp, nil
}

// maxCachedAccounts bounds the cache (an estate's kiosks serve a few units
// at a time; a sweep of every unit's account starts it over).
const maxCachedAccounts = 4096

// changed forgets every cached account: the books were written.
func (s *Service) changed() { s.gen.Add(1) }

func daysBetween(from, to string) int {
	a, err1 := time.Parse(time.DateOnly, from)
	b, err2 := time.Parse(time.DateOnly, to)
	if err1 != nil || err2 != nil {
		return 0
	}
	return int(b.Sub(a).Hours() / 24)
}

// lateCharge is the contractual late charge on amount overdue for days,
// at rate hundred-thousandths a day, rounded down to the fen.
func lateCharge(amount int64, days, rate int) int64 {
	if rate <= 0 || days <= 0 {
		return 0
	}
	return amount * int64(days) * int64(rate) / 100_000
}
