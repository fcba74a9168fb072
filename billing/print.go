package billing

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// Line is one line of a printout. The printer driver decides the bytes;
// billing decides what is on the paper.
type Line struct {
	Text  string `json:"t,omitempty"`
	Align string `json:"a,omitempty"` // "", "center", "right"
	Bold  bool   `json:"b,omitempty"`
	Big   bool   `json:"g,omitempty"` // double width and height
	QR    string `json:"qr,omitempty"`
	Rule  bool   `json:"r,omitempty"` // a dashed line across
	Cut   bool   `json:"cut,omitempty"`
}

// Printer prints a printout, or says why it cannot (out of paper, cover
// open, not answering): then nothing was printed.
type Printer interface {
	Print(ctx context.Context, doc []Line) error
}

// Yuan formats fen as yuan with two decimals and thousands separators.
func Yuan(fen int64) string {
	sign := ""
	if fen < 0 {
		sign, fen = "-", -fen
	}
	s := fmt.Sprint(fen / 100)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return fmt.Sprintf("%s%s.%02d", sign, s, fen%100)
}

var methodNames = map[string]string{"cash": "现金", "card": "银行卡", "transfer": "转账", "qr": "扫码"}

// MethodName is a payment method in Chinese, as printed.
func MethodName(m string) string {
	if n, ok := methodNames[m]; ok {
		return n
	}
	return m
}

// receiptDoc lays out a receipt (SOP §4): number, room, fee items and
// periods, amount in figures and capitals, method, operator, time. A copy
// says so; a voided receipt says so.
func receiptDoc(rc Receipt, copy bool) []Line {
	title := "收款收据"
	if copy {
		title += "（重印副本）"
	}
	doc := []Line{
		{Text: rc.Site, Align: "center", Bold: true},
		{Text: title, Align: "center", Big: true},
		{Text: "No. " + rc.Number, Align: "center"},
	}
	if rc.State == "voided" {
		doc = append(doc, Line{Text: "*** 已作废 VOID ***", Align: "center", Bold: true})
	}
	doc = append(doc, Line{Rule: true}, Line{Text: "房号: " + rc.Unit}, Line{Text: "时间: " + rc.Local}, Line{Rule: true})
	for _, l := range rc.Lines {
		doc = append(doc, Line{Text: fmt.Sprintf("%s %s  ¥%s", l.Item, l.Period, Yuan(l.AmountFen))})
	}
	doc = append(doc, Line{Rule: true},
		Line{Text: "合计: ¥" + Yuan(rc.AmountFen), Bold: true},
		Line{Text: "大写: " + rc.Capital, Bold: true},
		Line{Text: "方式: " + MethodName(rc.Method) + methodDetail(rc)})
	if rc.Method == "cash" && rc.TenderedFen > 0 {
		doc = append(doc, Line{Text: fmt.Sprintf("实收: ¥%s  找零: ¥%s", Yuan(rc.TenderedFen), Yuan(rc.ChangeFen))})
	}
	doc = append(doc, Line{Text: "收款人: " + rc.Operator},
		Line{QR: "onecard:receipt:" + rc.Number, Align: "center"},
		Line{Text: "请妥善保管本收据，谢谢！", Align: "center"},
		Line{Cut: true})
	return doc
}

func methodDetail(rc Receipt) string {
	switch {
	case rc.CardLast4 != "":
		return " (尾号 " + rc.CardLast4 + ")"
	case rc.TransferRef != "":
		return " (" + rc.TransferRef + ")"
	}
	return ""
}

func refundDoc(rc Receipt, in RefundInput, operator, approver string, at time.Time) []Line {
	return []Line{
		{Text: rc.Site, Align: "center", Bold: true},
		{Text: "退款凭证", Align: "center", Big: true},
		{Rule: true},
		{Text: "原收据: No. " + rc.Number},
		{Text: "房号: " + rc.Unit},
		{Text: "时间: " + at.Format("2006-01-02 15:04")},
		{Text: "退款: ¥" + Yuan(in.AmountFen), Bold: true},
		{Text: "大写: " + Capital(in.AmountFen), Bold: true},
		{Text: "方式: " + MethodName(in.Method)},
		{Text: "原因: " + in.Reason},
		{Text: "经办: " + operator + "  批准: " + approver},
		{Text: "领款人签字: ____________"},
		{Cut: true},
	}
}

// queuePrint adds a print job for printer ("": the desk's) in tx (the
// outbox): it is printed after the commit, once.
func (s *Service) queuePrint(ctx context.Context, tx *store.Tx, printer, kind string, receiptID *int64, doc []Line) error {
	if importing(ctx) {
		return nil
	}
	now := s.now()
	if _, err := tx.Exec(ctx, `INSERT INTO print_jobs (site_id, printer, kind, receipt_id, payload, state, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, 'queued', ?, ?)`, s.site.ID, cmp.Or(printer, s.printer), kind, receiptID, jsonString(doc), now, now); err != nil {
		return err
	}
	tx.AfterCommit(s.kickPrinter)
	return nil
}

// QueuePrintTx queues a printout other than a receipt (a gate pass) for
// printer ("": the desk's) in the caller's transaction: printed after the
// commit, once, by the printer's worker, and listed with the print jobs.
func (s *Service) QueuePrintTx(ctx context.Context, tx *store.Tx, printer, kind string, doc []Line) error {
	return s.queuePrint(ctx, tx, printer, kind, nil, doc)
}

type importKey struct{}

// Importing marks ctx as loading payment history (from an earlier system,
// or the demo's year): receipts are numbered and recorded as usual but not
// printed.
func Importing(ctx context.Context) context.Context { return context.WithValue(ctx, importKey{}, true) }

func importing(ctx context.Context) bool { v, _ := ctx.Value(importKey{}).(bool); return v }

// kickPrinter wakes every printer's worker: a job was queued.
func (s *Service) kickPrinter() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.wakes {
		select {
		case w <- struct{}{}:
		default:
		}
	}
}

// PrintJob is a queued, done or failed printout.
type PrintJob struct {
	ID        int64     `db:"id" json:"id"`
	Kind      string    `db:"kind" json:"kind"`
	Printer   string    `db:"printer" json:"printer"`
	ReceiptID *int64    `db:"receipt_id" json:"receipt_id,omitempty"`
	State     string    `db:"state" json:"state"`
	Attempts  int       `db:"attempts" json:"attempts"`
	LastError string    `db:"last_error" json:"last_error,omitempty"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
}

// PrintJobs lists the jobs not done (queued, printing, failed), oldest
// first, and the last few done.
func (s *Service) PrintJobs(ctx context.Context) ([]PrintJob, error) {
	var jobs []PrintJob
	err := s.db.Select(ctx, &jobs, `SELECT id, kind, printer, receipt_id, state, attempts, last_error, created_at, updated_at FROM print_jobs
		WHERE site_id = ? AND (state <> 'done' OR id > (SELECT COALESCE(MAX(id), 0) - 20 FROM print_jobs)) ORDER BY id`, s.site.ID)
	return jobs, err
}

// RetryPrint queues a failed job again (the desk, once the paper is in).
func (s *Service) RetryPrint(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE print_jobs SET state = 'queued', updated_at = ? WHERE id = ? AND site_id = ? AND state = 'failed'", s.now(), id, s.site.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.Conflict("job", "print_job_not_failed")
		}
		tx.AfterCommit(s.kickPrinter)
		return auth.Record(ctx, tx, auth.Entry{Action: "print_job.retry", Entity: "print_job", EntityID: id})
	})
}

// RunPrinter prints queued jobs on p, oldest first, until ctx ends. A job
// is marked printing (committed) before it is sent, and done after: a job
// found printing at start was interrupted and may or may not have come
// out, so it is marked failed for the desk to look at and retry, never
// printed twice by itself. A job the printer refuses (out of paper) is
// marked failed with the reason.
func (s *Service) RunPrinter(ctx context.Context, p Printer) { s.RunPrinterNamed(ctx, s.printer, p) }

// RunPrinterNamed is RunPrinter for the printer the jobs name (a kiosk's:
// see PayInput.Printer).
func (s *Service) RunPrinterNamed(ctx context.Context, name string, p Printer) {
	if _, err := s.db.Exec(ctx, `UPDATE print_jobs SET state = 'failed', last_error = 'interrupted: check the printer, then retry if nothing came out',
		updated_at = ? WHERE site_id = ? AND printer = ? AND state = 'printing'`, s.now(), s.site.ID, name); err != nil {
		s.log.Error("billing: printer jobs", "err", err)
	}
	wake := make(chan struct{}, 1)
	s.mu.Lock()
	s.wakes = append(s.wakes, wake)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.wakes = slices.DeleteFunc(s.wakes, func(w chan struct{}) bool { return w == wake })
		s.mu.Unlock()
	}()
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		for ctx.Err() == nil && s.printOne(ctx, name, p) {
		}
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-t.C:
		}
	}
}

// printOne prints the oldest queued job; false when there was none (or the
// database failed).
func (s *Service) printOne(ctx context.Context, name string, p Printer) bool {
	var job struct {
		ID      int64  `db:"id"`
		Payload string `db:"payload"`
	}
	err := s.db.Get(ctx, &job, "SELECT id, payload FROM print_jobs WHERE site_id = ? AND printer = ? AND state = 'queued' ORDER BY id LIMIT 1", s.site.ID, name)
	if err != nil {
		if !store.IsNoRows(err) && ctx.Err() == nil {
			s.log.Error("billing: print queue", "err", err)
		}
		return false
	}
	res, err := s.db.Exec(ctx, "UPDATE print_jobs SET state = 'printing', attempts = attempts + 1, updated_at = ? WHERE id = ? AND state = 'queued'", s.now(), job.ID)
	if err != nil {
		return false
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return true // taken meanwhile
	}
	var doc []Line
	perr := json.Unmarshal([]byte(job.Payload), &doc)
	if perr == nil {
		perr = p.Print(ctx, doc)
	}
	state, msg := "done", ""
	if perr != nil {
		state, msg = "failed", trunc(perr.Error(), 200)
		s.log.Warn("billing: print failed", "job", job.ID, "err", perr)
	}
	if _, err := s.db.Exec(context.WithoutCancel(ctx), "UPDATE print_jobs SET state = ?, last_error = ?, updated_at = ? WHERE id = ?", state, msg, s.now(), job.ID); err != nil {
		s.log.Error("billing: print job state", "job", job.ID, "err", err)
		return false
	}
	return true
}
