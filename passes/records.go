package passes

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// States of a pass.
var States = []string{"issued", "used", "cancelled"}

// dayRange is a site-time day [from, to) in UTC.
func (s *Service) dayRange(day string) (time.Time, time.Time, error) {
	if day == "" {
		day = s.now().In(s.loc).Format(time.DateOnly)
	}
	d, err := time.ParseInLocation(time.DateOnly, day, s.loc)
	if err != nil {
		return time.Time{}, time.Time{}, fault.Invalid("day", "date_invalid")
	}
	return d.UTC(), d.AddDate(0, 0, 1).UTC(), nil
}

// Today is the site's date.
func (s *Service) Today() string { return s.now().In(s.loc).Format(time.DateOnly) }

// List lists the passes issued from day "from" to day "to" (site time,
// inclusive), in one state or all, oldest first.
func (s *Service) List(ctx context.Context, from, to, state string) ([]Pass, error) {
	start, _, err := s.dayRange(from)
	if err != nil {
		return nil, err
	}
	_, end, err := s.dayRange(to)
	if err != nil {
		return nil, err
	}
	if end.Sub(start) > 370*24*time.Hour {
		return nil, fault.Invalid("to", "range_too_long")
	}
	q := "SELECT " + passCols + passFrom + " WHERE p.site_id = ? AND p.issued_at >= ? AND p.issued_at < ?"
	args := []any{s.site.ID, start, end}
	if state != "" {
		if !slicesContains(States, state) {
			return nil, fault.Invalid("state", "state_invalid")
		}
		q += " AND p.state = ?"
		args = append(args, state)
	}
	out := []Pass{}
	if err := s.db.Select(ctx, &out, q+" ORDER BY p.id", args...); err != nil {
		return nil, err
	}
	for i := range out {
		out[i].fill()
	}
	return out, nil
}

// Reconciliation is the weekly count of passes issued in a period and
// what became of them; Unused lists those whose window ended unused, to
// follow up.
type Reconciliation struct {
	From, To  string
	Issued    int
	Used      int
	Cancelled int
	Open      int // still within their window
	Unused    []Pass
	Flags     []Flag
}

// Reconcile reconciles the passes issued from from to to (inclusive).
func (s *Service) Reconcile(ctx context.Context, from, to string) (Reconciliation, error) {
	list, err := s.List(ctx, from, to, "")
	if err != nil {
		return Reconciliation{}, err
	}
	r := Reconciliation{From: from, To: to, Unused: []Pass{}}
	now := s.now()
	for _, p := range list {
		r.Issued++
		switch {
		case p.State == "used":
			r.Used++
		case p.State == "cancelled":
			r.Cancelled++
		case now.Before(p.ValidUntil):
			r.Open++
		default:
			r.Unused = append(r.Unused, p)
		}
	}
	if r.Flags, err = s.Flags(ctx, from, to); err != nil {
		return r, err
	}
	return r, nil
}

// Flag is something the server noticed at a gate: a pass released again
// (two gates, a terminal that was offline), or released offline when it
// would have been refused.
type Flag struct {
	Pass   string    `db:"number" json:"pass"`
	PassID int64     `db:"pass_id" json:"pass_id"`
	Gate   string    `db:"gate" json:"gate"`
	Source string    `db:"source" json:"source"`
	Reason string    `db:"reason" json:"reason"`
	At     time.Time `db:"at" json:"at"`
}

// Flags lists the flags raised from day from to day to.
func (s *Service) Flags(ctx context.Context, from, to string) ([]Flag, error) {
	start, _, err := s.dayRange(from)
	if err != nil {
		return nil, err
	}
	_, end, err := s.dayRange(to)
	if err != nil {
		return nil, err
	}
	out := []Flag{}
	err = s.db.Select(ctx, &out, `SELECT p.number, c.pass_id, c.gate, c.source, c.reason, c.at FROM pass_checks c JOIN passes p ON p.id = c.pass_id
		WHERE c.site_id = ? AND c.kind = 'flag' AND c.at >= ? AND c.at < ? ORDER BY c.id`, s.site.ID, start, end)
	return out, err
}

// Check is one check of a pass at a gate.
type CheckRow struct {
	Gate   string    `db:"gate" json:"gate"`
	Source string    `db:"source" json:"source"`
	Kind   string    `db:"kind" json:"kind"`
	OK     bool      `db:"ok" json:"ok"`
	Reason string    `db:"reason" json:"reason,omitempty"`
	At     time.Time `db:"at" json:"at"`
}

// Checks lists the checks of a pass, oldest first.
func (s *Service) Checks(ctx context.Context, id int64) ([]CheckRow, error) {
	out := []CheckRow{}
	err := s.db.Select(ctx, &out, "SELECT gate, source, kind, ok, reason, at FROM pass_checks WHERE site_id = ? AND pass_id = ? ORDER BY id", s.site.ID, id)
	return out, err
}

// Purge deletes the passes issued before the retention period, with their
// checks, and the duty log as old; the audit log keeps its rows. It
// returns how many passes went.
func (s *Service) Purge(ctx context.Context) (int64, error) {
	before := s.now().Add(-s.retention)
	var n int64
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM pass_checks WHERE site_id = ? AND pass_id IN (SELECT id FROM passes WHERE site_id = ? AND issued_at < ?)",
			s.site.ID, s.site.ID, before); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM pass_checks WHERE site_id = ? AND pass_id IS NULL AND at < ?", s.site.ID, before); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, "DELETE FROM passes WHERE site_id = ? AND issued_at < ?", s.site.ID, before)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		duty, err := tx.Exec(ctx, "DELETE FROM duty_log WHERE site_id = ? AND at < ?", s.site.ID, before)
		if err != nil {
			return err
		}
		d, _ := duty.RowsAffected()
		return auth.Record(ctx, tx, auth.Entry{Action: "passes.purge", Entity: "site", EntityID: s.site.ID,
			After: map[string]any{"before": before, "passes": n, "duty_log": d}})
	})
	return n, err
}

// ExportXLSX writes the passes issued from from to to as a spreadsheet.
func (s *Service) ExportXLSX(ctx context.Context, from, to string) ([]byte, error) {
	list, err := s.List(ctx, from, to, "")
	if err != nil {
		return nil, err
	}
	f := excelize.NewFile()
	defer f.Close()
	sheet := "放行条"
	f.SetSheetName("Sheet1", sheet)
	head := []any{"编号", "房号", "申请人", "身份", "物品", "车牌", "出口", "有效期自", "有效期至", "欠费(元)", "批准人", "状态", "放行时间", "放行出口", "搬运人证件尾号", "经办", "开具时间"}
	if err := f.SetSheetRow(sheet, "A1", &head); err != nil {
		return nil, err
	}
	local := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.In(s.loc).Format("2006-01-02 15:04")
	}
	for i, p := range list {
		row := []any{p.Number, p.Unit, p.Applicant, roleName(p.Role), p.ItemsText(), p.Plate, p.Gate, local(&p.ValidFrom), local(&p.ValidUntil),
			float64(p.ArrearsFen) / 100, p.ApprovedBy, stateName(p.State), local(p.ReleasedAt), p.ReleasedGate, p.MoverID, p.IssuedBy, local(&p.IssuedAt)}
		if err := f.SetSheetRow(sheet, fmt.Sprintf("A%d", i+2), &row); err != nil {
			return nil, err
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func stateName(s string) string {
	return map[string]string{"issued": "未使用", "used": "已放行", "cancelled": "已作废"}[strings.TrimSpace(s)]
}
