package billing

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// dayOpen refuses when the operator's business day today is closed.
func (s *Service) dayOpen(ctx context.Context, q store.Q, op operator) error {
	var n int
	if err := q.Get(ctx, &n, "SELECT COUNT(*) FROM day_closes WHERE site_id = ? AND business_day = ? AND operator_kind = ? AND operator_id = ?",
		s.site.ID, s.Today(), op.kind, op.id); err != nil {
		return err
	}
	if n > 0 {
		return fault.Conflict("day", "day_closed")
	}
	return nil
}

// Totals are money in and out by method.
type Totals struct {
	Payments map[string]int64 `json:"payments"` // settled that day
	Voids    map[string]int64 `json:"voids"`    // receipts voided that day (paid back)
	Refunds  map[string]int64 `json:"refunds"`
	Net      map[string]int64 `json:"net"`
	Count    int              `json:"count"`
}

// Day is an operator's business day: totals and, once closed, the close.
type Day struct {
	Day          string    `json:"day"`
	OperatorKind string    `json:"operator_kind"`
	OperatorID   int64     `json:"operator_id"`
	Operator     string    `json:"operator"`
	Totals       Totals    `json:"totals"`
	CashExpected int64     `json:"cash_expected_fen"`
	Close        *DayClose `json:"close,omitempty"`
}

// DayClose is a closed day.
type DayClose struct {
	ID         int64     `db:"id" json:"id"`
	Counted    int64     `db:"cash_counted_fen" json:"cash_counted_fen"`
	Difference int64     `db:"difference_fen" json:"difference_fen"`
	Note       string    `db:"note" json:"note"`
	ClosedBy   string    `db:"closed_by_name" json:"closed_by"`
	ClosedAt   time.Time `db:"closed_at" json:"closed_at"`
}

// Operators lists who took money on a day (cashiers and kiosks), with
// their totals.
func (s *Service) Operators(ctx context.Context, day string) ([]Day, error) {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return nil, fault.Invalid("day", "day_invalid")
	}
	var ops []struct {
		Kind string `db:"operator_kind"`
		ID   int64  `db:"operator_id"`
	}
	err := s.db.Select(ctx, &ops, `SELECT operator_kind, operator_id FROM payments WHERE site_id = ? AND business_day = ?
		UNION SELECT operator_kind, operator_id FROM refunds WHERE site_id = ? AND business_day = ?
		UNION SELECT 'staff', voided_by FROM receipts WHERE site_id = ? AND void_day = ?
		UNION SELECT operator_kind, operator_id FROM day_closes WHERE site_id = ? AND business_day = ?
		ORDER BY 1, 2`, s.site.ID, day, s.site.ID, day, s.site.ID, day, s.site.ID, day)
	if err != nil {
		return nil, err
	}
	var out []Day
	for _, o := range ops {
		d, err := s.Day(ctx, day, o.Kind, o.ID)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// Day returns an operator's totals for a business day.
func (s *Service) Day(ctx context.Context, day, kind string, id int64) (Day, error) {
	return s.day(ctx, s.db, day, kind, id)
}

func (s *Service) day(ctx context.Context, q store.Q, day, kind string, id int64) (Day, error) {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return Day{}, fault.Invalid("day", "day_invalid")
	}
	d := Day{Day: day, OperatorKind: kind, OperatorID: id, Totals: Totals{Payments: map[string]int64{}, Voids: map[string]int64{},
		Refunds: map[string]int64{}, Net: map[string]int64{}}}
	switch kind {
	case "staff":
		if err := q.Get(ctx, &d.Operator, "SELECT username FROM staff WHERE id = ?", id); err != nil && !store.IsNoRows(err) {
			return Day{}, err
		}
	case "token":
		if err := q.Get(ctx, &d.Operator, "SELECT name FROM api_tokens WHERE id = ?", id); err != nil && !store.IsNoRows(err) {
			return Day{}, err
		}
		d.Operator = "API: " + d.Operator
	default:
		d.Operator = kind + "-" + jsonString(id)
	}
	type sum struct {
		Method string `db:"method"`
		Total  int64  `db:"total"`
		N      int    `db:"n"`
	}
	var pays, voids, refunds []sum
	if err := q.Select(ctx, &pays, `SELECT method, SUM(amount_fen) AS total, COUNT(*) AS n FROM payments
		WHERE site_id = ? AND business_day = ? AND operator_kind = ? AND operator_id = ? AND state = 'settled' GROUP BY method`,
		s.site.ID, day, kind, id); err != nil {
		return Day{}, err
	}
	if kind == "staff" {
		if err := q.Select(ctx, &voids, `SELECT p.method, SUM(p.amount_fen) AS total, COUNT(*) AS n FROM receipts r JOIN payments p ON p.id = r.payment_id
			WHERE r.site_id = ? AND r.void_day = ? AND r.voided_by = ? GROUP BY p.method`, s.site.ID, day, id); err != nil {
			return Day{}, err
		}
	}
	if err := q.Select(ctx, &refunds, `SELECT method, SUM(amount_fen) AS total, COUNT(*) AS n FROM refunds
		WHERE site_id = ? AND business_day = ? AND operator_kind = ? AND operator_id = ? GROUP BY method`, s.site.ID, day, kind, id); err != nil {
		return Day{}, err
	}
	for _, p := range pays {
		d.Totals.Payments[p.Method] += p.Total
		d.Totals.Net[p.Method] += p.Total
		d.Totals.Count += p.N
	}
	for _, v := range voids {
		d.Totals.Voids[v.Method] += v.Total
		d.Totals.Net[v.Method] -= v.Total
	}
	for _, r := range refunds {
		d.Totals.Refunds[r.Method] += r.Total
		d.Totals.Net[r.Method] -= r.Total
	}
	d.CashExpected = d.Totals.Net["cash"]
	var c DayClose
	err := q.Get(ctx, &c, `SELECT d.id, d.cash_counted_fen, d.difference_fen, d.note, s.username AS closed_by_name, d.closed_at
		FROM day_closes d JOIN staff s ON s.id = d.closed_by WHERE d.site_id = ? AND d.business_day = ? AND d.operator_kind = ? AND d.operator_id = ?`,
		s.site.ID, day, kind, id)
	if err == nil {
		d.Close = &c
	} else if !store.IsNoRows(err) {
		return Day{}, err
	}
	return d, nil
}

// CloseInput closes an operator's day.
type CloseInput struct {
	Day          string `json:"day"`
	OperatorKind string `json:"operator_kind"` // "staff" (default) or "kiosk"
	OperatorID   int64  `json:"operator_id"`   // 0: the caller
	CountedFen   int64  `json:"cash_counted_fen"`
	Note         string `json:"note"`
}

// CloseDay closes an operator's business day (日结): the totals as the
// books have them, the cash counted, the difference recorded (a difference
// needs a note). The day is then locked for that operator. A cashier
// closes their own day; a supervisor any.
func (s *Service) CloseDay(ctx context.Context, in CloseInput) (Day, error) {
	if _, err := person(ctx); err != nil {
		return Day{}, err
	}
	a := auth.ActorFrom(ctx)
	if in.OperatorKind == "" {
		in.OperatorKind = "staff"
	}
	if in.OperatorID == 0 && in.OperatorKind == "staff" {
		in.OperatorID = a.ID
	}
	if in.OperatorKind == "staff" && in.OperatorID != a.ID && a.Role != auth.Supervisor && a.Role != auth.Admin {
		return Day{}, fault.Forbidden("close_others_day")
	}
	if in.OperatorKind != "staff" && a.Role != auth.Supervisor && a.Role != auth.Admin {
		return Day{}, fault.Forbidden("close_others_day")
	}
	in.Note = strings.TrimSpace(in.Note)
	if in.Day == "" {
		in.Day = s.Today()
	}
	if _, err := time.Parse(time.DateOnly, in.Day); err != nil || in.Day > s.Today() {
		return Day{}, fault.Invalid("day", "day_invalid")
	}
	if in.CountedFen < 0 || in.CountedFen > MaxAmount {
		return Day{}, fault.Invalid("cash_counted", "amount_invalid")
	}
	if len([]rune(in.Note)) > 500 {
		return Day{}, fault.Invalid("note", "note_too_long", "max", 500)
	}
	var d Day
	err := s.tx(ctx, func(tx *store.Tx) error {
		var err error
		if d, err = s.day(ctx, tx, in.Day, in.OperatorKind, in.OperatorID); err != nil {
			return err
		}
		if d.Close != nil {
			return fault.Conflict("day", "day_closed")
		}
		var waiting int
		if err := tx.Get(ctx, &waiting, `SELECT COUNT(*) FROM payments WHERE site_id = ? AND operator_kind = ? AND operator_id = ?
			AND state IN ('created', 'sent', 'unknown', 'approved')`, s.site.ID, in.OperatorKind, in.OperatorID); err != nil {
			return err
		}
		if waiting > 0 {
			return fault.Conflict("day", "payments_waiting", "count", waiting)
		}
		diff := in.CountedFen - d.CashExpected
		if diff != 0 && in.Note == "" {
			return fault.Invalid("note", "difference_needs_note", "difference", diff)
		}
		totals, _ := json.Marshal(d.Totals)
		now := s.now()
		id, err := tx.Insert(ctx, `INSERT INTO day_closes (site_id, business_day, operator_kind, operator_id, operator_name, totals,
			cash_expected_fen, cash_counted_fen, difference_fen, note, closed_by, closed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			s.site.ID, in.Day, in.OperatorKind, in.OperatorID, d.Operator, string(totals), d.CashExpected, in.CountedFen, diff, in.Note, a.ID, now)
		if store.IsUnique(err) {
			return fault.Conflict("day", "day_closed")
		}
		if err != nil {
			return err
		}
		d.Close = &DayClose{ID: id, Counted: in.CountedFen, Difference: diff, Note: in.Note, ClosedBy: a.Name, ClosedAt: now}
		return auth.Record(ctx, tx, auth.Entry{Action: "day.close", Entity: "day_close", EntityID: id, After: d})
	})
	return d, err
}

// Arrear is a unit with overdue bills.
type Arrear struct {
	Unit       string `json:"unit"`
	Building   int    `json:"building"`
	Bills      int    `json:"bills"`
	OverdueFen int64  `json:"overdue_fen"`
	OldestDue  string `json:"oldest_due"`
	Days       int    `json:"days"`
	LateFen    int64  `json:"late_fen"`
	// Stage is the SOP's escalation by age: reminder, second reminder
	// (after 30 days), registered letter (3 months), legal (6 months).
	Stage string `db:"-" json:"stage"`
}

// Arrears lists units with overdue bills, oldest debt first; building 0
// for all. The late charge, where the site has one, is counted per bill
// from its own due date. Owing is never a reason to block a card or refuse
// a pass.
func (s *Service) Arrears(ctx context.Context, building int) ([]Arrear, error) {
	today := s.Today()
	q := `SELECT u.code AS unit, bd.number AS building, b.amount_fen - b.paid_fen AS owed, b.due_on
		FROM bills b JOIN units u ON u.id = b.unit_id JOIN entrances e ON e.id = u.entrance_id JOIN buildings bd ON bd.id = e.building_id
		WHERE b.site_id = ? AND b.state = 'open' AND b.due_on < ?`
	args := []any{s.site.ID, today}
	if building > 0 {
		q += " AND bd.number = ?"
		args = append(args, building)
	}
	var rows []struct {
		Unit     string `db:"unit"`
		Building int    `db:"building"`
		Owed     int64  `db:"owed"`
		DueOn    string `db:"due_on"`
	}
	if err := s.db.Select(ctx, &rows, q+" ORDER BY u.code, b.due_on", args...); err != nil {
		return nil, err
	}
	st, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	var out []Arrear
	for _, r := range rows {
		if len(out) == 0 || out[len(out)-1].Unit != r.Unit {
			out = append(out, Arrear{Unit: r.Unit, Building: r.Building, OldestDue: r.DueOn})
		}
		a := &out[len(out)-1]
		a.Bills++
		a.OverdueFen += r.Owed
		a.LateFen += lateCharge(r.Owed, daysBetween(r.DueOn, today), st.LateRatePerDayE5)
	}
	for i := range out {
		a := &out[i]
		a.Days = daysBetween(a.OldestDue, today)
		switch {
		case a.Days >= 180:
			a.Stage = "legal"
		case a.Days >= 90:
			a.Stage = "registered_letter"
		case a.Days >= 30:
			a.Stage = "second_reminder"
		default:
			a.Stage = "reminder"
		}
	}
	slices.SortStableFunc(out, func(x, y Arrear) int { return strings.Compare(x.OldestDue, y.OldestDue) })
	return out, nil
}

// Owing returns what a unit owes overdue (for the gate pass check, which
// warns but never refuses on it alone).
func (s *Service) Owing(ctx context.Context, unitCode string) (int64, error) {
	u, err := s.unit(ctx, s.db, unitCode)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.db.Get(ctx, &n, "SELECT COALESCE(SUM(amount_fen - paid_fen), 0) FROM bills WHERE unit_id = ? AND state = 'open' AND due_on < ?", u.ID, s.Today())
	return n, err
}
