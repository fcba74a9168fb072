package billing

import (
	"context"
	"io"
	"time"

	"github.com/xuri/excelize/v2"

	"onecard/fault"
)

// DayReport writes a business day's books as an XLSX workbook for finance:
// every receipt issued, voided or refunded that day, and each operator's
// totals and close.
func (s *Service) DayReport(ctx context.Context, day string, w io.Writer) error {
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return fault.Invalid("day", "day_invalid")
	}
	ops, err := s.Operators(ctx, day)
	if err != nil {
		return err
	}
	var rows []struct {
		Year     int       `db:"year"`
		No       int64     `db:"number"`
		State    string    `db:"state"`
		Unit     string    `db:"unit"`
		Method   string    `db:"method"`
		Amount   int64     `db:"amount_fen"`
		Operator string    `db:"operator_name"`
		Issued   time.Time `db:"issued_at"`
		PayDay   *string   `db:"business_day"`
		VoidDay  *string   `db:"void_day"`
		Reason   string    `db:"void_reason"`
		Refunded int64     `db:"refunded"`
	}
	err = s.db.Select(ctx, &rows, `SELECT r.year, r.number, r.state, u.code AS unit, p.method, p.amount_fen, p.operator_name, r.issued_at,
		p.business_day, r.void_day, r.void_reason, COALESCE((SELECT SUM(f.amount_fen) FROM refunds f WHERE f.receipt_id = r.id AND f.business_day = ?), 0) AS refunded
		FROM receipts r JOIN payments p ON p.id = r.payment_id JOIN units u ON u.id = p.unit_id
		WHERE r.site_id = ? AND (p.business_day = ? OR r.void_day = ? OR r.id IN (SELECT receipt_id FROM refunds WHERE business_day = ?))
		ORDER BY r.year, r.number`, day, s.site.ID, day, day, day)
	if err != nil {
		return err
	}
	f := excelize.NewFile()
	defer f.Close()
	const sheet = "收据"
	f.SetSheetName("Sheet1", sheet)
	set := func(sh string, row int, vals ...any) {
		for i, v := range vals {
			cell, _ := excelize.CoordinatesToCellName(i+1, row)
			f.SetCellValue(sh, cell, v)
		}
	}
	yuan := func(fen int64) float64 { return float64(fen) / 100 }
	set(sheet, 1, "收据号", "状态", "房号", "方式", "金额(元)", "收款人", "时间", "收款日", "作废日", "作废原因", "当日退款(元)")
	for i, r := range rows {
		local := r.Issued.In(s.loc).Format("2006-01-02 15:04")
		set(sheet, i+2, ReceiptNumber(r.Year, r.No), r.State, r.Unit, MethodName(r.Method), yuan(r.Amount), r.Operator, local,
			deref(r.PayDay), deref(r.VoidDay), r.Reason, yuan(r.Refunded))
	}
	const totals = "日结"
	f.NewSheet(totals)
	set(totals, 1, "收款人", "现金收款", "银行卡收款", "转账收款", "作废", "退款", "现金净额", "实点现金", "差额", "备注", "日结人", "日结时间")
	for i, d := range ops {
		sum := func(m map[string]int64) float64 {
			var t int64
			for _, v := range m {
				t += v
			}
			return yuan(t)
		}
		vals := []any{d.Operator, yuan(d.Totals.Payments["cash"]), yuan(d.Totals.Payments["card"]), yuan(d.Totals.Payments["transfer"]),
			sum(d.Totals.Voids), sum(d.Totals.Refunds), yuan(d.CashExpected)}
		if c := d.Close; c != nil {
			vals = append(vals, yuan(c.Counted), yuan(c.Difference), c.Note, c.ClosedBy, c.ClosedAt.In(s.loc).Format("2006-01-02 15:04"))
		} else {
			vals = append(vals, "", "", "未日结")
		}
		set(totals, i+2, vals...)
	}
	return f.Write(w)
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
