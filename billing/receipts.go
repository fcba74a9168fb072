package billing

import (
	"context"
	"strings"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// Receipt is a receipt as printed and shown (SOP §4).
type Receipt struct {
	ID          int64         `json:"id"`
	Number      string        `json:"number"`
	State       string        `json:"state"`
	Site        string        `json:"site"`
	Unit        string        `json:"unit"`
	Lines       []ReceiptLine `json:"lines"`
	AmountFen   int64         `json:"amount_fen"`
	Capital     string        `json:"amount_capital"`
	Method      string        `json:"method"`
	CardLast4   string        `json:"card_last4,omitempty"`
	TransferRef string        `json:"transfer_ref,omitempty"`
	TenderedFen int64         `json:"tendered_fen,omitempty"`
	ChangeFen   int64         `json:"change_fen,omitempty"`
	Operator    string        `json:"operator"`
	IssuedAt    time.Time     `json:"issued_at"`
	Local       string        `json:"issued_local"` // the site's local time, as printed
	Prints      int           `json:"prints"`
	VoidReason  string        `json:"void_reason,omitempty"`
	RefundedFen int64         `json:"refunded_fen"`
	PaymentID   int64         `json:"payment_id"`
}

// ReceiptLine is one fee item and period paid.
type ReceiptLine struct {
	Item      string `db:"item" json:"item"`
	Period    string `db:"period" json:"period"`
	AmountFen int64  `db:"amount_fen" json:"amount_fen"`
}

// issueReceipt takes the next number of the site and year and records the
// receipt of p, paying lines, with its print job, in tx.
func (s *Service) issueReceipt(ctx context.Context, tx *store.Tx, p *Payment, lines []ReceiptLine) (Receipt, error) {
	now := s.now()
	year := now.In(s.loc).Year()
	var no int64
	// The counter row is locked by this UPDATE until tx ends: two receipts
	// never take one number, and a rolled-back settlement gives it back.
	if err := tx.Get(ctx, &no, `INSERT INTO receipt_counters (site_id, year, last_no) VALUES (?, ?, 1)
		ON CONFLICT (site_id, year) DO UPDATE SET last_no = receipt_counters.last_no + 1 RETURNING last_no`, s.site.ID, year); err != nil {
		return Receipt{}, err
	}
	id, err := tx.Insert(ctx, `INSERT INTO receipts (site_id, year, number, payment_id, state, issued_at) VALUES (?, ?, ?, ?, 'issued', ?) RETURNING id`,
		s.site.ID, year, no, p.ID, now)
	if err != nil {
		return Receipt{}, err
	}
	rc := Receipt{ID: id, Number: ReceiptNumber(year, no), State: "issued", Site: s.site.Name, Unit: p.UnitCode,
		Lines: withCredit(lines, p.AmountFen), AmountFen: p.AmountFen, Capital: Capital(p.AmountFen), Method: p.Method,
		CardLast4: p.CardLast4, TransferRef: p.TransferRef, TenderedFen: p.TenderedFen, ChangeFen: p.ChangeFen, Operator: p.OpName,
		IssuedAt: now, Local: now.In(s.loc).Format("2006-01-02 15:04"), PaymentID: p.ID}
	return rc, s.queuePrint(ctx, tx, p.Printer, "receipt", &rc.ID, receiptDoc(rc, false))
}

// withCredit adds, to the lines a payment paid, what it brought beyond
// them (credit).
func withCredit(lines []ReceiptLine, amount int64) []ReceiptLine {
	var allocated int64
	for _, l := range lines {
		allocated += l.AmountFen
	}
	if allocated < amount {
		lines = append(lines, ReceiptLine{Item: "预存", AmountFen: amount - allocated})
	}
	return lines
}

// Receipt returns a receipt.
func (s *Service) Receipt(ctx context.Context, id int64) (Receipt, error) {
	return s.receipt(ctx, s.db, id)
}

func (s *Service) receipt(ctx context.Context, q store.Q, id int64) (Receipt, error) {
	var row struct {
		ID          int64     `db:"id"`
		Year        int       `db:"year"`
		No          int64     `db:"number"`
		State       string    `db:"state"`
		Prints      int       `db:"prints"`
		VoidReason  string    `db:"void_reason"`
		IssuedAt    time.Time `db:"issued_at"`
		PaymentID   int64     `db:"payment_id"`
		Unit        string    `db:"unit"`
		AmountFen   int64     `db:"amount_fen"`
		Method      string    `db:"method"`
		CardLast4   string    `db:"card_last4"`
		TransferRef string    `db:"transfer_ref"`
		TenderedFen int64     `db:"tendered_fen"`
		ChangeFen   int64     `db:"change_fen"`
		Operator    string    `db:"operator_name"`
	}
	err := q.Get(ctx, &row, `SELECT r.id, r.year, r.number, r.state, r.prints, r.void_reason, r.issued_at, r.payment_id, u.code AS unit,
		p.amount_fen, p.method, p.card_last4, p.transfer_ref, p.tendered_fen, p.change_fen, p.operator_name
		FROM receipts r JOIN payments p ON p.id = r.payment_id JOIN units u ON u.id = p.unit_id WHERE r.id = ? AND r.site_id = ?`, id, s.site.ID)
	if store.IsNoRows(err) {
		return Receipt{}, fault.NotFound("receipt_not_found")
	}
	if err != nil {
		return Receipt{}, err
	}
	rc := Receipt{ID: row.ID, Number: ReceiptNumber(row.Year, row.No), State: row.State, Site: s.site.Name, Unit: row.Unit,
		AmountFen: row.AmountFen, Capital: Capital(row.AmountFen), Method: row.Method, CardLast4: row.CardLast4,
		TransferRef: row.TransferRef, TenderedFen: row.TenderedFen, ChangeFen: row.ChangeFen, Operator: row.Operator,
		IssuedAt: row.IssuedAt, Local: row.IssuedAt.In(s.loc).Format("2006-01-02 15:04"), Prints: row.Prints,
		VoidReason: row.VoidReason, PaymentID: row.PaymentID}
	if err := q.Select(ctx, &rc.Lines, `SELECT f.name AS item, b.period, a.amount_fen FROM payment_allocations a
		JOIN bills b ON b.id = a.bill_id JOIN fee_items f ON f.id = b.fee_item_id WHERE a.payment_id = ? ORDER BY b.due_on, b.period, b.id`, row.PaymentID); err != nil {
		return Receipt{}, err
	}
	rc.Lines = withCredit(rc.Lines, rc.AmountFen)
	if err := q.Get(ctx, &rc.RefundedFen, "SELECT COALESCE(SUM(amount_fen), 0) FROM refunds WHERE receipt_id = ?", id); err != nil {
		return Receipt{}, err
	}
	return rc, nil
}

// Receipts lists receipts, newest first: of a business day, or all.
func (s *Service) Receipts(ctx context.Context, day string, limit int) ([]Issue, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	q := `SELECT r.id, r.year, r.number, r.state, p.amount_fen, p.method, r.issued_at FROM receipts r JOIN payments p ON p.id = r.payment_id
		WHERE r.site_id = ?`
	args := []any{s.site.ID}
	if day != "" {
		q += " AND p.business_day = ?"
		args = append(args, day)
	}
	var out []Issue
	if err := s.db.Select(ctx, &out, q+" ORDER BY r.id DESC LIMIT ?", append(args, limit)...); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Number = ReceiptNumber(out[i].Year, out[i].No)
	}
	return out, nil
}

// Reprint queues a copy of a receipt, marked as a copy.
func (s *Service) Reprint(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *store.Tx) error {
		rc, err := s.receipt(ctx, tx, id)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE receipts SET prints = prints + 1 WHERE id = ?", id); err != nil {
			return err
		}
		if err := s.queuePrint(ctx, tx, "", "receipt_copy", &rc.ID, receiptDoc(rc, true)); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "receipt.reprint", Entity: "receipt", EntityID: id, After: map[string]any{"number": rc.Number}})
	})
}

// approverRoles may approve voids and refunds.
var approverRoles = []auth.Role{auth.Supervisor, auth.Admin}

func checkApprover(a auth.Actor) error {
	if a.Kind != "staff" {
		return fault.Invalid("approver", "approval_required")
	}
	for _, r := range approverRoles {
		if a.Role == r {
			return nil
		}
	}
	return fault.Invalid("approver", "approver_role")
}

// Void voids a receipt: it keeps its number and shows as voided, its bills
// are open again, and the money goes back on the voiding operator's day.
// It needs a supervisor's approval (approver, checked by the caller with
// auth.Approve) and a reason.
func (s *Service) Void(ctx context.Context, id int64, reason string, approver auth.Actor) (Receipt, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || len([]rune(reason)) > 200 {
		return Receipt{}, fault.Invalid("reason", "reason_required")
	}
	if err := checkApprover(approver); err != nil {
		return Receipt{}, err
	}
	op, err := person(ctx)
	if err != nil {
		return Receipt{}, err
	}
	var rc Receipt
	err = s.tx(ctx, func(tx *store.Tx) error {
		before, err := s.receipt(ctx, tx, id)
		if err != nil {
			return err
		}
		if before.State != "issued" {
			return fault.Conflict("receipt", "receipt_voided")
		}
		if before.RefundedFen > 0 {
			return fault.Conflict("receipt", "receipt_refunded")
		}
		if err := s.dayOpen(ctx, tx, op); err != nil {
			return err
		}
		var allocs []struct {
			BillID int64 `db:"bill_id"`
			Amount int64 `db:"amount_fen"`
		}
		if err := tx.Select(ctx, &allocs, "SELECT bill_id, amount_fen FROM payment_allocations WHERE payment_id = ?", before.PaymentID); err != nil {
			return err
		}
		now := s.now()
		for _, a := range allocs {
			if _, err := tx.Exec(ctx, "UPDATE bills SET paid_fen = paid_fen - ?, state = 'open', updated_at = ? WHERE id = ?", a.Amount, now, a.BillID); err != nil {
				return err
			}
		}
		res, err := tx.Exec(ctx, `UPDATE receipts SET state = 'voided', void_reason = ?, voided_by = ?, void_approved_by = ?, voided_at = ?, void_day = ?
			WHERE id = ? AND state = 'issued'`, reason, op.id, approver.ID, now, s.Today(), id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.Conflict("receipt", "receipt_voided")
		}
		if rc, err = s.receipt(ctx, tx, id); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "receipt.void", Entity: "receipt", EntityID: id, Before: before,
			After: map[string]any{"receipt": rc, "approved_by": approver.Name}})
	})
	return rc, err
}

// RefundInput is a refund of (part of) a receipt.
type RefundInput struct {
	ReceiptID int64  `json:"receipt_id"`
	AmountFen int64  `json:"amount_fen"`
	Method    string `json:"method"`
	Reason    string `json:"reason"`
}

// Refund pays money back against a receipt (a deposit when a card is
// returned, an overpayment): a separate entry on the refunding operator's
// day, referring to the receipt, approved by a supervisor. The bills stay
// paid; the refunds of a receipt never exceed it.
func (s *Service) Refund(ctx context.Context, in RefundInput, approver auth.Actor) (int64, error) {
	in.Reason = strings.TrimSpace(in.Reason)
	switch {
	case in.Reason == "" || len([]rune(in.Reason)) > 200:
		return 0, fault.Invalid("reason", "reason_required")
	case in.AmountFen <= 0 || in.AmountFen > MaxAmount:
		return 0, fault.Invalid("amount", "amount_invalid")
	case in.Method != "cash" && in.Method != "card" && in.Method != "transfer":
		return 0, fault.Invalid("method", "method_invalid")
	}
	if err := checkApprover(approver); err != nil {
		return 0, err
	}
	op, err := person(ctx)
	if err != nil {
		return 0, err
	}
	var id int64
	err = s.tx(ctx, func(tx *store.Tx) error {
		rc, err := s.receipt(ctx, tx, in.ReceiptID)
		if err != nil {
			return err
		}
		if rc.State != "issued" {
			return fault.Conflict("receipt", "receipt_voided")
		}
		if rc.RefundedFen+in.AmountFen > rc.AmountFen {
			return fault.Invalid("amount", "refund_over_receipt", "left", rc.AmountFen-rc.RefundedFen)
		}
		if err := s.dayOpen(ctx, tx, op); err != nil {
			return err
		}
		id, err = tx.Insert(ctx, `INSERT INTO refunds (site_id, receipt_id, amount_fen, method, reason, requested_by, approved_by, operator_kind,
			operator_id, business_day, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, 'staff', ?, ?, ?) RETURNING id`,
			s.site.ID, in.ReceiptID, in.AmountFen, in.Method, in.Reason, op.id, approver.ID, op.id, s.Today(), s.now())
		if err != nil {
			return err
		}
		if err := s.queuePrint(ctx, tx, "", "refund", &rc.ID, refundDoc(rc, in, op.name, approver.Name, s.now().In(s.loc))); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "refund.create", Entity: "refund", EntityID: id,
			After: map[string]any{"refund": in, "receipt": rc.Number, "approved_by": approver.Name}})
	})
	return id, err
}

// BillReceipt returns the issued receipt that paid a bill (the deposit
// of a card being returned, to refund against), or 0 if it is not paid.
func (s *Service) BillReceipt(ctx context.Context, billID int64) (int64, error) {
	var id int64
	err := s.db.Get(ctx, &id, `SELECT r.id FROM payment_allocations a JOIN receipts r ON r.payment_id = a.payment_id
		WHERE a.bill_id = ? AND r.site_id = ? AND r.state = 'issued' ORDER BY r.id DESC LIMIT 1`, billID, s.site.ID)
	if store.IsNoRows(err) {
		return 0, nil
	}
	return id, err
}
