package mailroom

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/xuri/excelize/v2"

	"onecard/devices/scanner"
	"onecard/estate"
	"onecard/fault"
)

// AgeBucket counts waiting items whose age in days (since the day they
// came) is between MinDays and MaxDays (-1: no upper bound).
type AgeBucket struct {
	Label   string         `json:"label"`
	MinDays int            `json:"min_days"`
	MaxDays int            `json:"max_days"`
	Count   int            `json:"count"`
	ByType  map[string]int `json:"by_type"`
}

var buckets = []AgeBucket{
	{Label: "0–1", MinDays: 0, MaxDays: 1},
	{Label: "2–3", MinDays: 2, MaxDays: 3},
	{Label: "4–7", MinDays: 4, MaxDays: 7},
	{Label: "8–14", MinDays: 8, MaxDays: 14},
	{Label: "15–30", MinDays: 15, MaxDays: 30},
	{Label: "30+", MinDays: 31, MaxDays: -1},
}

// WaitingByAge counts the waiting items by age as of now: 0–1 days, 2–3,
// 4–7, 8–14, 15–30, over 30.
func (s *Service) WaitingByAge(ctx context.Context, now time.Time) ([]AgeBucket, error) {
	var rows []struct {
		Day  string `db:"registered_on"`
		Type string `db:"item_type"`
		N    int    `db:"n"`
	}
	if err := s.db.Select(ctx, &rows, `SELECT registered_on, item_type, COUNT(*) AS n FROM mail_items WHERE site_id = ? AND state = 'waiting'
		GROUP BY registered_on, item_type`, s.site.ID); err != nil {
		return nil, fmt.Errorf("mailroom: waiting by age: %w", err)
	}
	out := make([]AgeBucket, len(buckets))
	for i, b := range buckets {
		b.ByType = map[string]int{}
		out[i] = b
	}
	today := s.day(now)
	for _, r := range rows {
		age := max(0, daysBetween(r.Day, today))
		for i := range out {
			if age >= out[i].MinDays && (out[i].MaxDays < 0 || age <= out[i].MaxDays) {
				out[i].Count += r.N
				out[i].ByType[r.Type] += r.N
				break
			}
		}
	}
	return out, nil
}

// RegisterRow is one line of the daily register (SOP §3 fields).
type RegisterRow struct {
	Date        string `json:"date"`
	Number      string `json:"number"`
	Type        string `json:"type"`
	TypeName    string `json:"type_name"`
	Carrier     string `json:"carrier"`
	Tracking    string `json:"tracking"`
	Unit        string `json:"unit"`
	Recipient   string `json:"recipient"`
	Condition   string `json:"condition"` // 完好, or 破损: the note (快递员已签字)
	Storage     string `json:"storage"`   // 货架 A-3, 快递柜 12号柜门
	State       string `json:"state"`
	CollectedBy string `json:"collected_by"` // who, and how (本人/家属/代领 尾号…/取件码)
	CollectedAt string `json:"collected_at"` // local time, or the return's
	Clerk       string `json:"clerk"`
}

var stateNames = map[string]string{StateWaiting: "待领取", StateCollected: "已领取", StateReturned: "已退回"}

var collectorNames = map[string]string{CollectorRecipient: "本人", CollectorHousehold: "家属", CollectorAgent: "代领", "code": "取件码"}

// DailyRegister is the register of the items that came on day
// (YYYY-MM-DD), in order of their numbers.
func (s *Service) DailyRegister(ctx context.Context, day string) ([]RegisterRow, error) {
	day, err := estate.ParseDate("day", day)
	if err != nil {
		return nil, err
	}
	items, err := s.items(ctx, s.db, "i.registered_on = ? ORDER BY i.number", day)
	if err != nil {
		return nil, err
	}
	out := make([]RegisterRow, 0, len(items))
	for _, it := range items {
		r := RegisterRow{Date: it.RegisteredOn, Number: it.Number, Type: it.Type, TypeName: it.TypeName, Carrier: it.Carrier,
			Unit: it.Unit, Recipient: it.Recipient, Condition: "完好", State: stateNames[it.State], Clerk: it.RegisteredBy}
		if it.Tracking != nil {
			r.Tracking = *it.Tracking
		}
		if it.Condition == ConditionDamaged {
			r.Condition = "破损：" + it.DamageNote + "（快递员已签字）"
		}
		switch {
		case it.Storage == StorageShelf:
			r.Storage = "货架 " + it.Slot
		case it.Door != nil:
			r.Storage = "快递柜 " + doorLabel(*it.Door)
		default:
			r.Storage = "快递柜（待分配）"
		}
		switch {
		case it.CollectedAt != nil:
			who := it.CollectorName
			if it.CollectorKind != nil {
				who = collectorNames[*it.CollectorKind] + " " + who
			}
			if it.AgentIDLast4 != "" {
				who += "（证件尾号" + it.AgentIDLast4 + "）"
			}
			r.CollectedBy, r.CollectedAt = who, it.CollectedAt.In(s.loc).Format("2006-01-02 15:04")
		case it.ReturnedAt != nil:
			r.CollectedBy, r.CollectedAt = "退回："+it.ReturnNote, it.ReturnedAt.In(s.loc).Format("2006-01-02 15:04")
		}
		out = append(out, r)
	}
	return out, nil
}

// DailyRegisterXLSX writes the daily register of day as an XLSX workbook:
// sheet 收件登记 (the items that came) and sheet 寄件登记 (outgoing mail).
func (s *Service) DailyRegisterXLSX(ctx context.Context, day string, w io.Writer) error {
	rows, err := s.DailyRegister(ctx, day)
	if err != nil {
		return err
	}
	outgoing, err := s.OutgoingOn(ctx, day)
	if err != nil {
		return err
	}
	f := excelize.NewFile()
	defer f.Close()
	const in, outSheet = "收件登记", "寄件登记"
	f.SetSheetName("Sheet1", in)
	set := func(sheet string, row int, vals ...any) {
		for i, v := range vals {
			cell, _ := excelize.CoordinatesToCellName(i+1, row)
			f.SetCellValue(sheet, cell, v)
		}
	}
	set(in, 1, "日期", "编号", "类别", "寄件方/快递公司", "单号", "房号", "收件人", "外观", "存放", "状态", "领取人", "领取/退回时间", "登记人")
	for i, r := range rows {
		set(in, i+2, r.Date, r.Number, r.TypeName, r.Carrier, r.Tracking, r.Unit, r.Recipient, r.Condition, r.Storage, r.State,
			r.CollectedBy, r.CollectedAt, r.Clerk)
	}
	f.SetColWidth(in, "A", "M", 14)
	f.NewSheet(outSheet)
	set(outSheet, 1, "日期", "房号", "寄件人", "收件人及地址", "方式", "单号", "登记时间", "登记人")
	for i, o := range outgoing {
		tracking := ""
		if o.Tracking != nil {
			tracking = *o.Tracking
		}
		set(outSheet, i+2, o.RegisteredOn, o.Unit, o.Sender, o.Addressee, TypeName(o.Method), tracking,
			o.RegisteredAt.In(s.loc).Format("2006-01-02 15:04"), o.RegisteredBy)
	}
	if err := f.Write(w); err != nil {
		return fmt.Errorf("mailroom: write register: %w", err)
	}
	return nil
}

// Event is one thing that happened to an item.
type Event struct {
	At         time.Time `db:"at" json:"at"`
	ItemID     int64     `db:"item_id" json:"item_id"`
	ItemNumber string    `db:"number" json:"item_number"`
	Kind       string    `db:"kind" json:"kind"`
	Detail     string    `db:"detail" json:"detail,omitempty"`
	Actor      string    `db:"actor" json:"actor"`
}

// Event kinds: registered, locker_assigned, door_opened, door_failed,
// stored, code_issued, code_used, notified (detail: the notice's kind),
// reminder_queued, shelved, consent_hold, collected, returned.

// History is the story of every item with a tracking number (normalized
// as scanned), oldest first: registered, stored, notified, collected or
// returned. An unknown number is tracking_unknown.
func (s *Service) History(ctx context.Context, tracking string) ([]Event, error) {
	t := scanner.Normalize(tracking)
	if scanner.ValidTracking(t) != nil {
		return nil, fault.Invalid("tracking", "tracking_invalid")
	}
	out := []Event{}
	if err := s.db.Select(ctx, &out, `SELECT e.at, e.item_id, i.number, e.kind, e.detail, e.actor FROM mail_events e JOIN mail_items i ON i.id = e.item_id
		WHERE i.site_id = ? AND i.tracking = ? ORDER BY e.id`, s.site.ID, t); err != nil {
		return nil, fmt.Errorf("mailroom: history: %w", err)
	}
	if len(out) == 0 {
		return nil, fault.NotFound("tracking_unknown")
	}
	return out, nil
}

// Events is the story of one item, oldest first (an item without a
// tracking number has no History to look it up by).
func (s *Service) Events(ctx context.Context, itemID int64) ([]Event, error) {
	out := []Event{}
	if err := s.db.Select(ctx, &out, `SELECT e.at, e.item_id, i.number, e.kind, e.detail, e.actor FROM mail_events e JOIN mail_items i ON i.id = e.item_id
		WHERE i.site_id = ? AND i.id = ? ORDER BY e.id`, s.site.ID, itemID); err != nil {
		return nil, fmt.Errorf("mailroom: events: %w", err)
	}
	return out, nil
}
