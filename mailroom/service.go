package mailroom

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"onecard/auth"
	"onecard/devices"
	"onecard/estate"
	"onecard/fault"
	"onecard/store"
)

// Options configure the mailroom of a site. Zero fields take the defaults
// in brackets.
type Options struct {
	// Locker is the parcel-locker bank; nil: locker storage is refused
	// (locker_unavailable).
	Locker devices.Locker
	// LockerPoll is how often RunLocker reads the sensors of doors it is
	// watching (500 ms).
	LockerPoll time.Duration
	// PickupWindow is how long after a pickup code is accepted its kiosk
	// may open the item's door (10 min).
	PickupWindow time.Duration
	// OrdinaryDelay holds notices of ordinary mail (letters, newspapers)
	// this long, so that a unit's post of the day goes out as one message
	// (1 h). Express and important items are notified at once.
	OrdinaryDelay time.Duration
	// LockerNoticeWait holds a locker item's arrival notice until the door
	// has closed on it, so that it carries the door and the code, but no
	// longer than this (15 min): then it says the item is at the desk.
	LockerNoticeWait time.Duration
	// RetryBase and RetryMax bound the backoff between delivery attempts
	// of a notification (30 s doubling, at most 1 h); MaxAttempts ends
	// them (8).
	RetryBase, RetryMax time.Duration
	MaxAttempts         int
	// NotifyPoll is how often RunNotifier looks for due notifications
	// besides being woken by new ones (5 s).
	NotifyPoll time.Duration
	Log        *slog.Logger
}

func (o *Options) defaults() {
	set := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	set(&o.LockerPoll, 500*time.Millisecond)
	set(&o.PickupWindow, 10*time.Minute)
	set(&o.OrdinaryDelay, time.Hour)
	set(&o.LockerNoticeWait, 15*time.Minute)
	set(&o.RetryBase, 30*time.Second)
	set(&o.RetryMax, time.Hour)
	set(&o.NotifyPoll, 5*time.Second)
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
}

// Service is the mailroom of one site.
type Service struct {
	db     *store.DB
	site   estate.Site
	loc    *time.Location
	locker devices.Locker
	o      Options
	log    *slog.Logger

	clockMu sync.RWMutex
	clock   func() time.Time

	mu       sync.Mutex
	settings *Settings
	setAt    time.Time
	lockWake []chan struct{}
	noteWake []chan struct{}
}

// Open returns the mailroom of site, creating its settings row (and its
// pickup-code salt) on first use.
func Open(ctx context.Context, db *store.DB, site estate.Site, o Options) (*Service, error) {
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("mailroom: time zone %q: %w", site.TimeZone, err)
	}
	o.defaults()
	s := &Service{db: db, site: site, loc: loc, locker: o.Locker, o: o, log: o.Log,
		clock: func() time.Time { return time.Now().UTC() }}
	salt := make([]byte, 16)
	rand.Read(salt)
	if _, err := db.Exec(ctx, `INSERT INTO mail_settings (site_id, code_salt, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (site_id) DO NOTHING`, site.ID, hex.EncodeToString(salt), s.now()); err != nil {
		return nil, fmt.Errorf("mailroom: settings: %w", err)
	}
	return s, nil
}

// SetClock replaces the clock (tests). It is safe to call while the
// workers run.
func (s *Service) SetClock(now func() time.Time) {
	s.clockMu.Lock()
	s.clock = now
	s.clockMu.Unlock()
}

func (s *Service) now() time.Time {
	s.clockMu.RLock()
	defer s.clockMu.RUnlock()
	return s.clock().UTC()
}

// Site is the site of this mailroom.
func (s *Service) Site() estate.Site { return s.site }

// HasLocker reports whether a locker bank is connected.
func (s *Service) HasLocker() bool { return s.locker != nil }

// day is the business day at the site of t.
func (s *Service) day(t time.Time) string { return t.In(s.loc).Format(time.DateOnly) }

// addDays adds n days to a YYYY-MM-DD date.
func addDays(day string, n int) string {
	t, err := time.Parse(time.DateOnly, day)
	if err != nil {
		return day
	}
	return t.AddDate(0, 0, n).Format(time.DateOnly)
}

// daysBetween counts the days from day a to day b (b later: positive).
func daysBetween(a, b string) int {
	ta, err1 := time.Parse(time.DateOnly, a)
	tb, err2 := time.Parse(time.DateOnly, b)
	if err1 != nil || err2 != nil {
		return 0
	}
	return int(tb.Sub(ta).Hours()+12) / 24
}

// Settings are the site's mailroom settings (SOP §3, configurable).
type Settings struct {
	// ReminderDays: an item not collected this many days after it came is
	// reminded, then daily (3).
	ReminderDays int `db:"reminder_days" json:"reminder_days"`
	// HoldDays: an item is returned to the courier this many days after it
	// came (7: unclear address); MovedOutHoldDays for a resident who moved
	// out (14); ConsentHoldDays with the recipient's consent (30, the
	// most).
	HoldDays         int `db:"hold_days" json:"hold_days"`
	MovedOutHoldDays int `db:"moved_out_hold_days" json:"moved_out_hold_days"`
	ConsentHoldDays  int `db:"consent_hold_days" json:"consent_hold_days"`
	// SignatureTypes are signed for at the desk, by the recipient or a
	// named agent, never released at the kiosk (SOP: registered, parcel,
	// express, remittance).
	SignatureTypes []string `db:"-" json:"signature_types"`
	// DoorOpenAlertSeconds: a locker door open longer is flagged (120).
	DoorOpenAlertSeconds int `db:"door_open_alert_seconds" json:"door_open_alert_seconds"`
	// CodeAttempts wrong pickup codes from one kiosk lock it for
	// CodeLockMinutes (5, 15).
	CodeAttempts    int `db:"code_attempts" json:"code_attempts"`
	CodeLockMinutes int `db:"code_lock_minutes" json:"code_lock_minutes"`
	// SignatureRetentionDays: signature images are blanked after this
	// long (365; PIPL: least data).
	SignatureRetentionDays int `db:"signature_retention_days" json:"signature_retention_days"`

	SignatureTypesText string `db:"signature_types" json:"-"`
	salt               string
}

// NeedsSignature reports whether items of type t are signed for at the
// desk.
func (st Settings) NeedsSignature(t string) bool { return slices.Contains(st.SignatureTypes, t) }

func (st Settings) holdDays(hold string) int {
	switch hold {
	case HoldMovedOut:
		return st.MovedOutHoldDays
	case HoldConsent:
		return st.ConsentHoldDays
	}
	return st.HoldDays
}

// Settings returns the site's mailroom settings (cached for a minute:
// another replica may change them).
func (s *Service) Settings(ctx context.Context) (Settings, error) {
	s.mu.Lock()
	cached, fresh := s.settings, time.Since(s.setAt) < time.Minute
	s.mu.Unlock()
	if cached != nil && fresh {
		return *cached, nil
	}
	var row struct {
		Settings
		Salt string `db:"code_salt"`
	}
	err := s.db.Get(ctx, &row, `SELECT reminder_days, hold_days, moved_out_hold_days, consent_hold_days, signature_types,
		door_open_alert_seconds, code_attempts, code_lock_minutes, signature_retention_days, code_salt FROM mail_settings WHERE site_id = ?`, s.site.ID)
	if err != nil {
		return Settings{}, fmt.Errorf("mailroom: settings: %w", err)
	}
	st := row.Settings
	st.salt = row.Salt
	st.SignatureTypes = splitTypes(st.SignatureTypesText)
	s.mu.Lock()
	s.settings, s.setAt = &st, time.Now()
	s.mu.Unlock()
	return st, nil
}

func splitTypes(s string) []string {
	out := []string{}
	for _, t := range strings.Split(s, ",") {
		if t = strings.TrimSpace(t); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// SaveSettings changes the site's mailroom settings. Items already
// registered keep whether they need a signature; hold periods apply to
// waiting items at once.
func (s *Service) SaveSettings(ctx context.Context, st Settings) error {
	if _, err := staff(ctx); err != nil {
		return err
	}
	days := func(field string, v int) error {
		if v < 1 || v > MaxHoldDays {
			e := fault.Invalid("days", "days_invalid", "max", MaxHoldDays)
			e.Field = field
			return e
		}
		return nil
	}
	for _, c := range []struct {
		f string
		v int
	}{{"reminder_days", st.ReminderDays}, {"hold_days", st.HoldDays}, {"moved_out_hold_days", st.MovedOutHoldDays}, {"consent_hold_days", st.ConsentHoldDays}} {
		if err := days(c.f, c.v); err != nil {
			return err
		}
	}
	if st.ReminderDays >= st.HoldDays {
		return fault.Invalid("reminder_days", "reminder_after_hold")
	}
	for _, t := range st.SignatureTypes {
		if !slices.Contains(Types, t) {
			return fault.Invalid("signature_types", "item_type_invalid")
		}
	}
	switch {
	case st.DoorOpenAlertSeconds < 10 || st.DoorOpenAlertSeconds > 3600:
		return fault.Invalid("door_open_alert_seconds", "door_alert_invalid")
	case st.CodeAttempts < 1 || st.CodeAttempts > 20:
		return fault.Invalid("code_attempts", "code_attempts_invalid")
	case st.CodeLockMinutes < 1 || st.CodeLockMinutes > 24*60:
		return fault.Invalid("code_lock_minutes", "code_lock_invalid")
	case st.SignatureRetentionDays < 30 || st.SignatureRetentionDays > 3650:
		return fault.Invalid("signature_retention_days", "retention_invalid")
	}
	types := strings.Join(st.SignatureTypes, ",")
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		before, err := s.Settings(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE mail_settings SET reminder_days = ?, hold_days = ?, moved_out_hold_days = ?, consent_hold_days = ?,
			signature_types = ?, door_open_alert_seconds = ?, code_attempts = ?, code_lock_minutes = ?, signature_retention_days = ?, updated_at = ?
			WHERE site_id = ?`, st.ReminderDays, st.HoldDays, st.MovedOutHoldDays, st.ConsentHoldDays, types, st.DoorOpenAlertSeconds,
			st.CodeAttempts, st.CodeLockMinutes, st.SignatureRetentionDays, s.now(), s.site.ID); err != nil {
			return err
		}
		tx.AfterCommit(func() {
			s.mu.Lock()
			s.settings = nil
			s.mu.Unlock()
		})
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.settings", Entity: "site", EntityID: s.site.ID, Before: before, After: st})
	})
}

// MaxHoldDays is the longest any item is kept (SOP §3: at most 30 days,
// with the recipient's consent).
const MaxHoldDays = 30

// operator returns who acts: a staff member, an integration's token or a
// kiosk. Work nobody at a screen or a device asked for is refused.
func operator(ctx context.Context) (auth.Actor, error) {
	a := auth.ActorFrom(ctx)
	switch a.Kind {
	case "staff", "token", "kiosk":
		return a, nil
	}
	return a, fault.Forbidden("operator_required")
}

// staff returns the staff member (or integration) acting: desk work.
func staff(ctx context.Context) (auth.Actor, error) {
	a, err := operator(ctx)
	if err != nil {
		return a, err
	}
	if a.Kind == "kiosk" {
		return a, fault.Forbidden("operator_required")
	}
	return a, nil
}

// person returns the staff member acting: handing items over and
// returning them needs a person, not a token.
func person(ctx context.Context) (auth.Actor, error) {
	a, err := operator(ctx)
	if err != nil {
		return a, err
	}
	if a.Kind != "staff" {
		return a, fault.Invalid("operator", "person_required")
	}
	return a, nil
}

// event records what happened to an item, for its history.
func (s *Service) event(ctx context.Context, tx *store.Tx, itemID int64, kind, detail string) error {
	_, err := tx.Exec(ctx, "INSERT INTO mail_events (site_id, item_id, kind, detail, actor, at) VALUES (?, ?, ?, ?, ?, ?)",
		s.site.ID, itemID, kind, trunc(detail, 500), auth.ActorFrom(ctx).Name, s.now())
	if err != nil {
		return fmt.Errorf("mailroom: event: %w", err)
	}
	return nil
}

// wake wakes the workers waiting on ws.
func (s *Service) wake(ws *[]chan struct{}) func() {
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, w := range *ws {
			select {
			case w <- struct{}{}:
			default:
			}
		}
	}
}

func (s *Service) subscribe(ws *[]chan struct{}) (chan struct{}, func()) {
	w := make(chan struct{}, 1)
	s.mu.Lock()
	*ws = append(*ws, w)
	s.mu.Unlock()
	return w, func() {
		s.mu.Lock()
		*ws = slices.DeleteFunc(*ws, func(c chan struct{}) bool { return c == w })
		s.mu.Unlock()
	}
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !isRuneStart(s[n]) {
		n--
	}
	return s[:n]
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

// text trims s and checks its length in characters; missing (nil: the
// field is optional) is the error for an empty s.
func text(field, s string, max int, missing *fault.Error) (string, error) {
	s = strings.TrimSpace(s)
	if missing != nil && s == "" {
		return s, missing
	}
	if len([]rune(s)) > max {
		return s, fault.Invalid(field, "too_long", "max", max)
	}
	return s, nil
}
