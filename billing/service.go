// Package billing keeps the estate's books: fee items and their prices,
// bills per unit and period, payments with their state machine, receipts
// numbered without gaps, voids and refunds with a supervisor's approval,
// print jobs, the daily close and arrears (SOP §4). Money is integer fen.
package billing

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"onecard/auth"
	"onecard/estate"
	"onecard/fault"
	"onecard/gateway"
	"onecard/store"
)

// MaxAmount is the largest amount one bill, payment or refund may have
// (¥1,000,000): anything larger is a typing mistake.
const MaxAmount = 100_000_000

// Service is the books of one site.
type Service struct {
	db        *store.DB
	site      estate.Site
	loc       *time.Location
	now       func() time.Time
	log       *slog.Logger
	terminals map[string]Terminal // "" is the desk's
	printer   string
	gateway   gateway.Provider
	// notifyURL is where the gateway sends its notifications.
	notifyURL string

	wakes    []chan struct{} // the printers' workers, woken when a job is queued
	settings *Settings       // cached for a minute (another replica may change it); SaveSettings replaces it
	setAt    time.Time
	mu       sync.Mutex
	inflight map[string]bool // payment refs with a terminal call running here
	gen      atomic.Uint64   // counts this process's writes to the books
	readings atomic.Uint64   // numbers CachedAccount's readings
	accounts map[string]cachedAccount
}

// Options configure the books.
type Options struct {
	// Terminal takes card payments at the desk; nil: card payments are
	// refused there.
	Terminal Terminal
	// Terminals are the kiosks' terminals by name (PayInput.Terminal).
	Terminals map[string]Terminal
	// Printer names the receipt printer print jobs are queued for.
	Printer string
	// Gateway takes QR payments; NotifyURL is where it reaches onecard's
	// notification handler. Nil: QR payments are refused.
	Gateway   gateway.Provider
	NotifyURL string
	Log       *slog.Logger
}

// Open returns the books of site, creating its settings row on first use.
func Open(ctx context.Context, db *store.DB, site estate.Site, o Options) (*Service, error) {
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("billing: time zone %q: %w", site.TimeZone, err)
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Printer == "" {
		o.Printer = "desk"
	}
	s := &Service{db: db, site: site, loc: loc, now: func() time.Time { return time.Now().UTC() }, log: o.Log,
		terminals: map[string]Terminal{}, printer: o.Printer, gateway: o.Gateway, notifyURL: o.NotifyURL, inflight: map[string]bool{}, accounts: map[string]cachedAccount{}}
	_, err = db.Exec(ctx, `INSERT INTO billing_settings (site_id, updated_at) VALUES (?, ?) ON CONFLICT (site_id) DO NOTHING`, site.ID, s.now())
	if err != nil {
		return nil, fmt.Errorf("billing: settings: %w", err)
	}
	for name, t := range o.Terminals {
		if t != nil && name != "" {
			s.terminals[name] = t
		}
	}
	if o.Terminal != nil {
		s.terminals[""] = o.Terminal
	}
	return s, nil
}

// SetClock replaces the clock (tests, and loading history).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Clock returns the clock.
func (s *Service) Clock() func() time.Time { return s.now }

// Today is the business day at the site.
func (s *Service) Today() string { return s.now().In(s.loc).Format(time.DateOnly) }

// Site is the site of these books.
func (s *Service) Site() estate.Site { return s.site }

// FeeItem is something the estate charges for.
type FeeItem struct {
	ID       int64  `db:"id" json:"id"`
	Code     string `db:"code" json:"code"`
	Name     string `db:"name" json:"name"`
	Kind     string `db:"kind" json:"kind"`
	PriceFen int64  `db:"price_fen" json:"price_fen"`
	Active   bool   `db:"active" json:"active"`
	Version  int    `db:"version" json:"version"`
}

// Fee item kinds.
var Kinds = []string{"per_area", "monthly", "metered", "one_off"}

var codeRE = regexp.MustCompile(`^[a-z][a-z0-9_]{0,31}$`)

// FeeItems lists the site's fee items.
func (s *Service) FeeItems(ctx context.Context) ([]FeeItem, error) {
	var items []FeeItem
	err := s.db.Select(ctx, &items, "SELECT id, code, name, kind, price_fen, active, version FROM fee_items WHERE site_id = ? ORDER BY id", s.site.ID)
	return items, err
}

func (s *Service) feeItem(ctx context.Context, q store.Q, code string) (FeeItem, error) {
	var it FeeItem
	err := q.Get(ctx, &it, "SELECT id, code, name, kind, price_fen, active, version FROM fee_items WHERE site_id = ? AND code = ?", s.site.ID, code)
	if store.IsNoRows(err) {
		return it, fault.NotFound("fee_item_not_found")
	}
	return it, err
}

// SaveFeeItem creates a fee item, or changes the name, price and active
// flag of an existing one (Version must match; the kind never changes).
// A new price applies to bills generated from then on.
func (s *Service) SaveFeeItem(ctx context.Context, in FeeItem) (FeeItem, error) {
	in.Code, in.Name = strings.TrimSpace(in.Code), strings.TrimSpace(in.Name)
	switch {
	case !codeRE.MatchString(in.Code):
		return FeeItem{}, fault.Invalid("code", "fee_code_invalid")
	case in.Name == "" || len([]rune(in.Name)) > 40:
		return FeeItem{}, fault.Invalid("name", "fee_name_invalid")
	case in.PriceFen < 0 || in.PriceFen > MaxAmount:
		return FeeItem{}, fault.Invalid("price", "amount_invalid")
	}
	var out FeeItem
	err := s.tx(ctx, func(tx *store.Tx) error {
		old, err := s.feeItem(ctx, tx, in.Code)
		now := s.now()
		if fault.Code(err) == "fee_item_not_found" {
			if !slices.Contains(Kinds, in.Kind) {
				return fault.Invalid("kind", "fee_kind_invalid")
			}
			id, err := tx.Insert(ctx, `INSERT INTO fee_items (site_id, code, name, kind, price_fen, active, created_at, updated_at)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, s.site.ID, in.Code, in.Name, in.Kind, in.PriceFen, true, now, now)
			if err != nil {
				return err
			}
			out = FeeItem{ID: id, Code: in.Code, Name: in.Name, Kind: in.Kind, PriceFen: in.PriceFen, Active: true, Version: 1}
			return auth.Record(ctx, tx, auth.Entry{Action: "fee_item.create", Entity: "fee_item", EntityID: id, After: out})
		}
		if err != nil {
			return err
		}
		if in.Version != old.Version {
			return fault.Conflict("version", "stale_version")
		}
		if in.Kind != "" && in.Kind != old.Kind {
			return fault.Invalid("kind", "fee_kind_fixed")
		}
		out = old
		out.Name, out.PriceFen, out.Active, out.Version = in.Name, in.PriceFen, in.Active, old.Version+1
		if _, err := tx.Exec(ctx, "UPDATE fee_items SET name = ?, price_fen = ?, active = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?",
			out.Name, out.PriceFen, out.Active, out.Version, now, old.ID, old.Version); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "fee_item.update", Entity: "fee_item", EntityID: old.ID, Before: old, After: out})
	})
	return out, err
}

// Subscribe makes a unit pay a monthly item that only some units pay (a
// rented parking space) from a period on.
func (s *Service) Subscribe(ctx context.Context, itemCode, unitCode, since string) error {
	if _, err := parsePeriod(since); err != nil {
		return err
	}
	return s.tx(ctx, func(tx *store.Tx) error {
		it, err := s.feeItem(ctx, tx, itemCode)
		if err != nil {
			return err
		}
		if it.Kind != "monthly" {
			return fault.Invalid("item", "fee_not_monthly")
		}
		u, err := s.unit(ctx, tx, unitCode)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO fee_subscriptions (fee_item_id, unit_id, since_period) VALUES (?, ?, ?)
			ON CONFLICT (fee_item_id, unit_id) DO UPDATE SET since_period = excluded.since_period, until_period = NULL`, it.ID, u.ID, since); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "fee_item.subscribe", Entity: "unit", EntityID: u.ID,
			After: map[string]any{"item": itemCode, "since": since}})
	})
}

// Settings are the site's billing settings.
type Settings struct {
	// LateRatePerDayE5 is the contractual late charge per day in
	// hundred-thousandths of the overdue amount (50 = 0.05 % a day); 0 (the
	// default) means none.
	LateRatePerDayE5 int `db:"late_rate_per_day_e5" json:"late_rate_per_day_e5"`
	// DueDays: a month's bills are due on this day of the month.
	DueDays int `db:"due_days" json:"due_days"`
}

// Settings returns the site's billing settings.
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	s.mu.Lock()
	cached := s.settings
	fresh := time.Since(s.setAt) < time.Minute
	s.mu.Unlock()
	if cached != nil && fresh {
		return *cached, nil
	}
	var st Settings
	err := s.db.Get(ctx, &st, "SELECT late_rate_per_day_e5, due_days FROM billing_settings WHERE site_id = ?", s.site.ID)
	if err == nil {
		s.mu.Lock()
		s.settings, s.setAt = &st, time.Now()
		s.mu.Unlock()
	}
	return st, err
}

// SaveSettings changes the site's billing settings.
func (s *Service) SaveSettings(ctx context.Context, st Settings) error {
	if st.LateRatePerDayE5 < 0 || st.LateRatePerDayE5 > 1000 {
		return fault.Invalid("late_rate", "late_rate_invalid")
	}
	if st.DueDays < 1 || st.DueDays > 28 {
		return fault.Invalid("due_days", "due_days_invalid")
	}
	return s.tx(ctx, func(tx *store.Tx) error {
		before, err := s.Settings(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE billing_settings SET late_rate_per_day_e5 = ?, due_days = ?, updated_at = ? WHERE site_id = ?",
			st.LateRatePerDayE5, st.DueDays, s.now(), s.site.ID); err != nil {
			return err
		}
		tx.AfterCommit(func() {
			s.mu.Lock()
			s.settings, s.setAt = &st, time.Now()
			s.mu.Unlock()
		})
		return auth.Record(ctx, tx, auth.Entry{Action: "billing.settings", Entity: "site", EntityID: s.site.ID, Before: before, After: st})
	})
}

// tx runs fn in a transaction of the books: once it commits, cached
// accounts are forgotten.
func (s *Service) tx(ctx context.Context, fn func(tx *store.Tx) error) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		tx.AfterCommit(s.changed)
		return fn(tx)
	})
}

// unitRef is what billing needs of a unit.
type unitRef struct {
	ID   int64  `db:"id"`
	Code string `db:"code"`
	Area int64  `db:"area_centi_m2"`
}

func (s *Service) unit(ctx context.Context, q store.Q, code string) (unitRef, error) {
	uc, err := estate.ParseUnitCode(code)
	if err != nil {
		return unitRef{}, err
	}
	var u unitRef
	err = q.Get(ctx, &u, "SELECT id, code, area_centi_m2 FROM units WHERE site_id = ? AND code = ?", s.site.ID, uc.String())
	if store.IsNoRows(err) {
		return u, fault.NotFound("unit_not_found")
	}
	return u, err
}

// parsePeriod reads "2026-12".
func parsePeriod(p string) (time.Time, error) {
	t, err := time.Parse("2006-01", p)
	if err != nil || t.Year() < 2000 || t.Year() > 2200 {
		return time.Time{}, fault.Invalid("period", "period_invalid")
	}
	return t, nil
}

// Subscribed reports whether a unit pays a monthly item that only some
// units pay (a rented parking space) for the current month.
func (s *Service) Subscribed(ctx context.Context, unitCode, itemCode string) (bool, error) {
	u, err := s.unit(ctx, s.db, unitCode)
	if err != nil {
		return false, err
	}
	period := s.Today()[:7]
	var n int
	err = s.db.Get(ctx, &n, `SELECT COUNT(*) FROM fee_subscriptions fs JOIN fee_items f ON f.id = fs.fee_item_id
		WHERE f.site_id = ? AND f.code = ? AND fs.unit_id = ? AND fs.since_period <= ? AND (fs.until_period IS NULL OR fs.until_period >= ?)`,
		s.site.ID, itemCode, u.ID, period, period)
	return n > 0, err
}
