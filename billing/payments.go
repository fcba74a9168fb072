package billing

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// Terminal is a bank-card payment terminal, as billing uses it (one that
// also has Ready() bool is asked first whether it is connected). Sale
// charges amount under our reference and returns the outcome; when the
// outcome cannot be learned (no answer, power lost), it returns State
// "unknown" and the caller resolves it later with Query, which returns
// what the terminal's journal says about the reference.
type Terminal interface {
	Sale(ctx context.Context, ref string, amountFen int64) (TerminalResult, error)
	Query(ctx context.Context, ref string) (TerminalResult, error)
}

// TerminalResult is a terminal's answer.
type TerminalResult struct {
	// State: approved, declined, unknown, not_found (the terminal never
	// saw the reference), in_progress.
	State    string
	AuthCode string
	Last4    string
	Reason   string
}

// Payment methods (qr only where a gateway is configured).
var Methods = []string{"cash", "card", "transfer", "qr"}

// PayInput is a payment at the desk (or a kiosk).
type PayInput struct {
	// IdemKey identifies the attempt: a request repeated with the same key
	// (a double click, a retry after a timeout) is the same payment.
	IdemKey string  `json:"idem_key"`
	Unit    string  `json:"unit"`
	BillIDs []int64 `json:"bill_ids"` // empty: the unit's open bills, oldest first
	// AmountFen may be less than the bills' total (a partial payment,
	// applied oldest first) but not more.
	AmountFen   int64  `json:"amount_fen"`
	Method      string `json:"method"`
	TenderedFen int64  `json:"tendered_fen"` // cash: what the payer handed over
	TransferRef string `json:"transfer_ref"` // transfer: the bank's reference
	// Terminal and Printer name a kiosk's devices (Options.Terminals, and
	// a printer run by RunPrinterNamed); "" is the desk's. Set by the
	// kiosk, never by an API caller.
	Terminal string `json:"-"`
	Printer  string `json:"-"`
}

// Payment is one attempt to pay.
type Payment struct {
	ID          int64     `db:"id" json:"id"`
	Ref         string    `db:"ref" json:"ref"`
	UnitCode    string    `db:"unit_code" json:"unit"`
	Method      string    `db:"method" json:"method"`
	AmountFen   int64     `db:"amount_fen" json:"amount_fen"`
	TenderedFen int64     `db:"tendered_fen" json:"tendered_fen,omitempty"`
	ChangeFen   int64     `db:"change_fen" json:"change_fen,omitempty"`
	State       string    `db:"state" json:"state"`
	Outcome     string    `db:"outcome" json:"outcome,omitempty"`
	AuthCode    string    `db:"auth_code" json:"auth_code,omitempty"`
	CardLast4   string    `db:"card_last4" json:"card_last4,omitempty"`
	TransferRef string    `db:"transfer_ref" json:"transfer_ref,omitempty"`
	ProviderTxn string    `db:"provider_txn" json:"provider_txn,omitempty"`
	QRContent   string    `db:"qr_content" json:"qr_content,omitempty"`
	BillIDs     string    `db:"bill_ids" json:"-"`
	IdemKey     string    `db:"idem_key" json:"-"`
	OpKind      string    `db:"operator_kind" json:"-"`
	OpID        int64     `db:"operator_id" json:"-"`
	OpName      string    `db:"operator_name" json:"operator"`
	BusinessDay *string   `db:"business_day" json:"business_day,omitempty"`
	CreatedAt   time.Time `db:"created_at" json:"created_at"`
	// Terminal and Printer: the kiosk's devices it was taken on ("": the
	// desk's).
	Terminal string   `db:"terminal" json:"terminal,omitempty"`
	Printer  string   `db:"printer" json:"printer,omitempty"`
	Receipt  *Receipt `db:"-" json:"receipt,omitempty"`
}

const paymentCols = `p.id, p.ref, u.code AS unit_code, p.method, p.amount_fen, p.tendered_fen, p.change_fen, p.state, p.outcome,
	p.auth_code, p.card_last4, p.transfer_ref, p.provider_txn, p.qr_content, p.bill_ids, p.idem_key, p.operator_kind, p.operator_id, p.operator_name,
	p.business_day, p.created_at, p.terminal, p.printer`
const paymentFrom = ` FROM payments p JOIN units u ON u.id = p.unit_id`

// Errors of a card payment whose outcome is not known yet.
var ErrOutcomeUnknown = errors.New("billing: the terminal's answer is not known yet")

// operator is who takes a payment: a staff member or a kiosk.
type operator struct {
	kind string
	id   int64
	name string
}

func operatorFrom(ctx context.Context) (operator, error) {
	a := auth.ActorFrom(ctx)
	switch a.Kind {
	case "staff", "kiosk", "token":
		return operator{a.Kind, a.ID, a.Name}, nil
	}
	return operator{}, fault.Forbidden("operator_required")
}

// person returns the staff member acting: voids, refunds and closing a day
// need a person, not an integration's token.
func person(ctx context.Context) (operator, error) {
	op, err := operatorFrom(ctx)
	if err != nil {
		return op, err
	}
	if op.kind != "staff" {
		return op, fault.Invalid("operator", "person_required")
	}
	return op, nil
}

// Pay takes a payment. Cash and transfers settle at once, with a receipt.
// A card payment is recorded as sent before the terminal is asked, so that
// whatever happens next (a decline, no answer, the server killed) the
// attempt is on the books and is resolved by asking the terminal, never by
// guessing; it settles when the terminal approves. A repeated request with
// the same IdemKey returns the same payment.
func (s *Service) Pay(ctx context.Context, in PayInput) (Payment, error) {
	op, err := operatorFrom(ctx)
	if err != nil {
		return Payment{}, err
	}
	if err := checkPay(&in); err != nil {
		return Payment{}, err
	}
	if in.Method == "qr" && s.gateway == nil {
		return Payment{}, fault.Invalid("method", "no_gateway")
	}
	if in.Method == "card" {
		term := s.terminals[in.Terminal]
		if term == nil {
			return Payment{}, fault.Invalid("method", "no_terminal")
		}
		if r, ok := term.(interface{ Ready() bool }); ok && !r.Ready() {
			return Payment{}, fault.Conflict("method", "terminal_offline")
		}
	}
	ref := newRef(s.now())
	if in.Method == "card" || in.Method == "qr" {
		// Claimed before the payment is committed and released only once
		// the terminal or the gateway has answered: the resolver, which
		// leaves claimed payments alone, must never ask about a sale before
		// it is sent (the answer "not found" would end the payment declined
		// while the sale goes on and the money is taken).
		s.claim(ref)
		defer s.release(ref)
	}
	var p Payment
	var fresh bool
	err = s.tx(ctx, func(tx *store.Tx) error {
		var pre *prepared
		var err error
		p, pre, err = s.create(ctx, tx, ref, in, op)
		fresh = pre != nil
		if err != nil || !fresh || in.Method == "card" || in.Method == "qr" {
			return err
		}
		return s.settle(ctx, tx, &p, op, pre)
	})
	if err != nil {
		return p, err
	}
	if fresh && testHookPaymentCommitted != nil {
		testHookPaymentCommitted()
	}
	if fresh && in.Method == "card" {
		return s.charge(ctx, p, op)
	}
	if fresh && in.Method == "qr" {
		return s.payQR(ctx, p)
	}
	if err := s.withReceipt(ctx, &p); err != nil {
		return p, err
	}
	return p, outcomeErr(p) // a repeated request gets the same answer
}

// outcomeErr is the error a card payment's state means for the caller.
func outcomeErr(p Payment) error {
	switch p.State {
	case "sent", "unknown", "approved":
		return ErrOutcomeUnknown
	case "declined":
		_, reason, _ := strings.Cut(p.Outcome, ": ")
		return fault.Invalid("card", "card_declined", "reason", reason)
	}
	return nil
}

func checkPay(in *PayInput) error {
	in.IdemKey = strings.TrimSpace(in.IdemKey)
	in.TransferRef = strings.TrimSpace(in.TransferRef)
	switch {
	case len(in.IdemKey) < 8 || len(in.IdemKey) > 64:
		return fault.Invalid("idem_key", "idem_key_invalid")
	case !slices.Contains(Methods, in.Method):
		return fault.Invalid("method", "method_invalid")
	case in.AmountFen <= 0 || in.AmountFen > MaxAmount:
		return fault.Invalid("amount", "amount_invalid")
	case len(in.BillIDs) > 240:
		return fault.Invalid("bill_ids", "too_many_bills")
	}
	switch in.Method {
	case "cash":
		if in.TenderedFen < in.AmountFen || in.TenderedFen > MaxAmount {
			return fault.Invalid("tendered", "tendered_short")
		}
	case "transfer":
		if in.TransferRef == "" || len(in.TransferRef) > 64 {
			return fault.Invalid("transfer_ref", "transfer_ref_required")
		}
		in.TenderedFen = 0
	default:
		in.TenderedFen = 0
	}
	return nil
}

// prepared is what create learned that settle needs, so that a cash
// payment settles without reading it all again.
type prepared struct {
	unitID int64
	bills  []Bill // the chosen bills, oldest first
}

// create records the attempt, or finds the earlier one with the same key
// (then prepared is nil). Cash and transfers are recorded settled: they
// settle in the same transaction.
func (s *Service) create(ctx context.Context, tx *store.Tx, ref string, in PayInput, op operator) (Payment, *prepared, error) {
	// A repeated request is looked up only when the new one cannot be
	// recorded: most requests are not repeats.
	prior := func(cause error) (Payment, *prepared, error) {
		var p Payment
		err := tx.Get(ctx, &p, "SELECT "+paymentCols+paymentFrom+" WHERE p.site_id = ? AND p.idem_key = ?", s.site.ID, in.IdemKey)
		switch {
		case store.IsNoRows(err):
			return Payment{}, nil, cause
		case err != nil:
			return Payment{}, nil, err
		case p.Method != in.Method || p.AmountFen != in.AmountFen || p.OpKind != op.kind || p.OpID != op.id:
			return Payment{}, nil, fault.Conflict("idem_key", "idem_key_reused")
		}
		return p, nil, nil
	}
	u, err := s.unit(ctx, tx, in.Unit)
	if err != nil {
		return prior(err)
	}
	if err := s.dayOpen(ctx, tx, op); err != nil {
		return prior(err)
	}
	bills, err := s.chosenBills(ctx, tx, u.ID, in.BillIDs)
	if err != nil {
		return prior(err)
	}
	var owed int64
	for _, b := range bills {
		owed += b.Outstanding()
	}
	if in.AmountFen > owed {
		return prior(fault.Invalid("amount", "amount_over_due", "due", owed))
	}
	ids := make([]string, len(bills))
	for i, b := range bills {
		ids[i] = fmt.Sprint(b.ID)
	}
	now := s.now()
	p := Payment{Ref: ref, UnitCode: u.Code, Method: in.Method, AmountFen: in.AmountFen, TenderedFen: in.TenderedFen,
		ChangeFen: max(in.TenderedFen-in.AmountFen, 0), State: "settled", TransferRef: in.TransferRef, BillIDs: strings.Join(ids, ","),
		IdemKey: in.IdemKey, OpKind: op.kind, OpID: op.id, OpName: op.name, CreatedAt: now, Terminal: in.Terminal, Printer: in.Printer}
	if in.Method == "card" || in.Method == "qr" {
		p.State = "sent" // committed before the terminal or the gateway is asked
	} else {
		day := s.Today()
		p.BusinessDay = &day
	}
	p.ID, err = tx.Insert(ctx, `INSERT INTO payments (site_id, unit_id, idem_key, ref, method, amount_fen, tendered_fen, change_fen, bill_ids,
		state, transfer_ref, operator_kind, operator_id, operator_name, business_day, created_at, updated_at, terminal, printer)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (site_id, idem_key) DO NOTHING RETURNING id`,
		s.site.ID, u.ID, p.IdemKey, p.Ref, p.Method, p.AmountFen, p.TenderedFen, p.ChangeFen, p.BillIDs, p.State, p.TransferRef,
		op.kind, op.id, op.name, p.BusinessDay, now, now, p.Terminal, p.Printer)
	if store.IsNoRows(err) { // the key is taken: a repeat
		return prior(fault.Conflict("idem_key", "idem_key_reused"))
	}
	if err != nil {
		return Payment{}, nil, err
	}
	return p, &prepared{u.ID, bills}, auth.Record(ctx, tx, auth.Entry{Action: "payment.create", Entity: "payment", EntityID: p.ID, After: p})
}

// chosenBills returns the open bills to pay, oldest first: the ones named
// (all of the unit's, open) or else all the unit's open bills.
func (s *Service) chosenBills(ctx context.Context, q store.Q, unitID int64, ids []int64) ([]Bill, error) {
	var bills []Bill
	if err := q.Select(ctx, &bills, "SELECT "+billCols+billFrom+" WHERE b.unit_id = ? AND b.state = 'open' ORDER BY b.due_on, b.period, b.id", unitID); err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		if len(bills) == 0 {
			return nil, fault.Invalid("bill_ids", "nothing_due")
		}
		return bills, nil
	}
	var out []Bill
	for _, id := range ids {
		i := slices.IndexFunc(bills, func(b Bill) bool { return b.ID == id })
		if i < 0 {
			return nil, fault.Conflict("bill_ids", "bill_not_open", "bill", id)
		}
		if !slices.ContainsFunc(out, func(b Bill) bool { return b.ID == id }) {
			out = append(out, bills[i])
		}
	}
	slices.SortStableFunc(out, func(a, b Bill) int {
		return strings.Compare(a.DueOn+a.Period+fmt.Sprintf("%020d", a.ID), b.DueOn+b.Period+fmt.Sprintf("%020d", b.ID))
	})
	return out, nil
}

// testHookPaymentCommitted, set by tests only, runs after a new payment is
// committed and before its terminal or gateway is asked.
var testHookPaymentCommitted func()

// claim marks a payment's reference as being dealt with in this process
// (Resolve leaves it alone) until release.
func (s *Service) claim(ref string) {
	s.mu.Lock()
	s.inflight[ref] = true
	s.mu.Unlock()
}

func (s *Service) release(ref string) {
	s.mu.Lock()
	delete(s.inflight, ref)
	s.mu.Unlock()
}

// charge asks the terminal and records the outcome. The payment is
// claimed (Pay).
func (s *Service) charge(ctx context.Context, p Payment, op operator) (Payment, error) {
	term := s.terminals[p.Terminal]
	if term == nil { // its terminal is no longer configured
		return p, ErrOutcomeUnknown
	}
	res, err := term.Sale(ctx, p.Ref, p.AmountFen)
	if err != nil && res.State == "" {
		res.State = "unknown"
	}
	if ctx.Err() != nil { // the request went away: record the outcome anyway
		ctx = context.WithoutCancel(ctx)
	}
	out, err2 := s.record(ctx, p.ID, res, op)
	if err2 != nil {
		return p, err2
	}
	return out, outcomeErr(out)
}

// record applies a terminal's answer to a payment still waiting for one:
// approved settles it (with its receipt), declined and not_found end it,
// unknown and in_progress leave it waiting. An approval for a payment
// already declined settles it too, loudly: the money has been taken, so
// the books must show it (what its bills no longer need becomes credit).
func (s *Service) record(ctx context.Context, id int64, res TerminalResult, op operator) (Payment, error) {
	var p Payment
	err := s.tx(ctx, func(tx *store.Tx) error {
		var err error
		if p, err = s.payment(ctx, tx, id); err != nil {
			return err
		}
		late := p.State == "declined" && res.State == "approved"
		if !late && !slices.Contains([]string{"sent", "unknown", "approved"}, p.State) {
			return nil // already resolved (by the resolver, say)
		}
		if late {
			s.log.Error("billing: a payment recorded declined was approved after all: settled, the money having been taken",
				"ref", p.Ref, "declined", p.Outcome, "auth", res.AuthCode)
		}
		before := p
		switch res.State {
		case "approved":
			p.AuthCode, p.CardLast4 = trunc(res.AuthCode, 32), trunc(res.Last4, 4)
			if _, err := tx.Exec(ctx, "UPDATE payments SET state = 'approved', auth_code = ?, card_last4 = ?, updated_at = ? WHERE id = ?",
				p.AuthCode, p.CardLast4, s.now(), p.ID); err != nil {
				return err
			}
			return s.settle(ctx, tx, &p, op, nil)
		case "declined", "not_found":
			p.State, p.Outcome = "declined", trunc(res.State+": "+res.Reason, 200)
		default:
			if p.State == "unknown" {
				return nil
			}
			p.State, p.Outcome = "unknown", trunc(res.Reason, 200)
		}
		if _, err := tx.Exec(ctx, "UPDATE payments SET state = ?, outcome = ?, updated_at = ? WHERE id = ?", p.State, p.Outcome, s.now(), p.ID); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "payment." + p.State, Entity: "payment", EntityID: p.ID, Before: before, After: p})
	})
	if err == nil {
		err = s.withReceipt(ctx, &p)
	}
	return p, err
}

// settle applies a payment to its bills, oldest first, takes the next
// receipt number, and queues the receipt's printing: all in tx, so the
// books, the receipt and the print job commit together or not at all. A
// cash or transfer payment (recorded settled by create, which passes what
// it read as pre) for bills paid meanwhile is refused; an approved card
// payment (pre nil) is never refused, the money being taken: what its
// bills no longer need goes to the unit's other open bills, and then to
// credit.
func (s *Service) settle(ctx context.Context, tx *store.Tx, p *Payment, op operator, pre *prepared) error {
	before := *p
	chosen := []Bill(nil)
	if pre != nil {
		chosen = pre.bills
	} else {
		var unitID int64
		if err := tx.Get(ctx, &unitID, "SELECT unit_id FROM payments WHERE id = ?", p.ID); err != nil {
			return err
		}
		var ids []int64
		for _, f := range strings.Split(p.BillIDs, ",") {
			var id int64
			if _, err := fmt.Sscan(f, &id); err == nil {
				ids = append(ids, id)
			}
		}
		var open []Bill
		if err := tx.Select(ctx, &open, "SELECT "+billCols+billFrom+" WHERE b.unit_id = ? AND b.state = 'open' ORDER BY b.due_on, b.period, b.id", unitID); err != nil {
			return err
		}
		for _, b := range open { // the chosen bills still open, then the rest
			if slices.Contains(ids, b.ID) {
				chosen = append(chosen, b)
			}
		}
		for _, b := range open {
			if !slices.Contains(ids, b.ID) {
				chosen = append(chosen, b)
			}
		}
	}
	left := p.AmountFen
	now := s.now()
	var lines []ReceiptLine
	for _, b := range chosen {
		if left == 0 {
			break
		}
		amt := min(left, b.Outstanding())
		res, err := tx.Exec(ctx, `UPDATE bills SET paid_fen = paid_fen + ?, state = CASE WHEN paid_fen + ? = amount_fen THEN 'paid' ELSE 'open' END,
			updated_at = ? WHERE id = ? AND state = 'open' AND amount_fen - paid_fen >= ?`, amt, amt, now, b.ID, amt)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			if pre != nil {
				return fault.Conflict("bill_ids", "bill_paid_meanwhile")
			}
			continue // paid meanwhile: the next one
		}
		if _, err := tx.Exec(ctx, "INSERT INTO payment_allocations (payment_id, bill_id, amount_fen) VALUES (?, ?, ?)", p.ID, b.ID, amt); err != nil {
			return err
		}
		lines = append(lines, ReceiptLine{Item: b.ItemName, Period: b.Period, AmountFen: amt})
		left -= amt
	}
	if left > 0 && pre != nil {
		return fault.Conflict("bill_ids", "bill_paid_meanwhile")
	}
	if pre == nil {
		day := s.Today()
		if err := s.dayOpen(ctx, tx, op); err != nil {
			// An approved card payment whose operator closed the day
			// meanwhile lands on the books the next day.
			day = s.now().In(s.loc).AddDate(0, 0, 1).Format(time.DateOnly)
		}
		p.State, p.BusinessDay = "settled", &day
		if _, err := tx.Exec(ctx, "UPDATE payments SET state = 'settled', business_day = ?, updated_at = ? WHERE id = ?", day, now, p.ID); err != nil {
			return err
		}
	}
	rc, err := s.issueReceipt(ctx, tx, p, lines)
	if err != nil {
		return err
	}
	p.Receipt = &rc
	return auth.Record(ctx, tx, auth.Entry{Action: "payment.settle", Entity: "payment", EntityID: p.ID, Before: before,
		After: map[string]any{"payment": p, "receipt": rc.Number, "unallocated_fen": left}})
}

func (s *Service) payment(ctx context.Context, q store.Q, id int64) (Payment, error) {
	var p Payment
	err := q.Get(ctx, &p, "SELECT "+paymentCols+paymentFrom+" WHERE p.id = ? AND p.site_id = ?", id, s.site.ID)
	if store.IsNoRows(err) {
		return p, fault.NotFound("payment_not_found")
	}
	return p, err
}

// Payment returns a payment with its receipt.
func (s *Service) Payment(ctx context.Context, id int64) (Payment, error) {
	p, err := s.payment(ctx, s.db, id)
	if err == nil {
		err = s.withReceipt(ctx, &p)
	}
	return p, err
}

func (s *Service) withReceipt(ctx context.Context, p *Payment) error {
	if p.State != "settled" || p.Receipt != nil {
		return nil
	}
	var id int64
	if err := s.db.Get(ctx, &id, "SELECT id FROM receipts WHERE payment_id = ?", p.ID); err != nil {
		return err
	}
	rc, err := s.Receipt(ctx, id)
	if err != nil {
		return err
	}
	p.Receipt = &rc
	return nil
}

// qrCreateGrace: the server that took a QR payment makes its order at the
// gateway within seconds of the commit (the gateway client's timeout is
// 15 s). Until then another replica's resolver leaves the payment alone:
// the gateway would not know the order yet. (In the taking server the
// payment is claimed.)
const qrCreateGrace = 30 * time.Second

// Resolve settles or ends every card payment left waiting (after a
// timeout, a crash, a restart) by asking the terminal about its reference.
// Payments with a terminal call running in this process are left alone.
// It returns how many it resolved.
func (s *Service) Resolve(ctx context.Context) (int, error) {
	if len(s.terminals) == 0 && s.gateway == nil {
		return 0, nil
	}
	var waiting []Payment
	if err := s.db.Select(ctx, &waiting, "SELECT "+paymentCols+paymentFrom+
		" WHERE p.site_id = ? AND p.method IN ('card', 'qr') AND p.state IN ('sent', 'unknown', 'approved') ORDER BY p.id", s.site.ID); err != nil {
		return 0, err
	}
	n := 0
	for _, p := range waiting {
		s.mu.Lock()
		busy := s.inflight[p.Ref]
		s.mu.Unlock()
		if busy {
			continue
		}
		res := TerminalResult{State: "approved", AuthCode: p.AuthCode, Last4: p.CardLast4}
		if p.State != "approved" && p.Method == "qr" {
			if s.gateway == nil || (p.ProviderTxn == "" && s.now().Sub(p.CreatedAt) < qrCreateGrace) {
				continue
			}
			var ok bool
			if res, ok = s.resolveQR(ctx, p); !ok {
				continue
			}
		} else if p.State != "approved" { // approved but not settled: a crash between the two
			term := s.terminals[p.Terminal]
			if term == nil {
				continue
			}
			var err error
			if res, err = term.Query(ctx, p.Ref); err != nil {
				s.log.Warn("billing: terminal query", "ref", p.Ref, "err", err)
				continue
			}
		}
		out, err := s.record(ctx, p.ID, res, operator{p.OpKind, p.OpID, p.OpName})
		if err != nil {
			s.log.Error("billing: resolve payment", "ref", p.Ref, "err", err)
			continue
		}
		if out.State != p.State {
			n++
			s.log.Info("billing: payment resolved", "ref", p.Ref, "state", out.State)
		}
	}
	return n, nil
}

// RunResolver resolves waiting card payments now and every interval, or
// every two seconds while some are still waiting (after a restart, the
// terminal's port takes a moment to open).
func (s *Service) RunResolver(ctx context.Context, every time.Duration) {
	for {
		if _, err := s.Resolve(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("billing: resolver", "err", err)
		}
		wait := every
		var n int
		if err := s.db.Get(ctx, &n, "SELECT COUNT(*) FROM payments WHERE site_id = ? AND method IN ('card', 'qr') AND state IN ('sent', 'unknown', 'approved')", s.site.ID); err == nil && n > 0 {
			wait = min(every, 2*time.Second)
			// A terminal not connected yet (just started): ask as soon as
			// it is.
			for _, t := range s.terminals {
				if r, ok := t.(interface{ Ready() bool }); ok && !r.Ready() {
					wait = 100 * time.Millisecond
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

func newRef(now time.Time) string {
	b := make([]byte, 5)
	rand.Read(b)
	return "P" + now.Format("060102") + strings.ToUpper(hex.EncodeToString(b))
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// jsonString marshals v for a TEXT column.
func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
