// Package kiosk runs the lobby kiosks: their registration and enrolment,
// owners' PINs with their lockout, and the short identified sessions in
// which an owner sees and pays the unit's bills.
package kiosk

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"onecard/auth"
	"onecard/estate"
	"onecard/fault"
	"onecard/store"
)

// Options configure the kiosks.
type Options struct {
	// PINAttempts wrong PINs lock a unit's PIN for PINLock (5, 15 min).
	PINAttempts int
	PINLock     time.Duration
	// Idle ends an identified session after this long without a touch
	// (60 s).
	Idle time.Duration
}

// Service is the site's kiosks.
type Service struct {
	db     *store.DB
	site   estate.Site
	estate *estate.Service
	o      Options
	now    func() time.Time

	mu       sync.Mutex
	sessions map[string]*Session   // by token
	known    map[string]knownKiosk // credentials checked lately
}

// knownKiosk is a credential checked lately: kiosk pages are asked for
// often, and a kiosk disabled here drops them at once (another replica's
// disabling is seen within credentialTTL).
type knownKiosk struct {
	k  Kiosk
	at time.Time
}

const credentialTTL = 5 * time.Second

func (s *Service) forget() {
	s.mu.Lock()
	s.known = nil
	s.mu.Unlock()
}

// New returns the kiosks of the estate's site.
func New(db *store.DB, es *estate.Service, o Options) *Service {
	if o.PINAttempts <= 0 {
		o.PINAttempts = 5
	}
	if o.PINLock <= 0 {
		o.PINLock = 15 * time.Minute
	}
	if o.Idle <= 0 {
		o.Idle = 60 * time.Second
	}
	return &Service{db: db, site: es.Site(), estate: es, o: o, now: func() time.Time { return time.Now().UTC() },
		sessions: map[string]*Session{}}
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Idle is how long a session lasts without a touch.
func (s *Service) Idle() time.Duration { return s.o.Idle }

// Kiosk is a registered kiosk.
type Kiosk struct {
	ID         int64      `db:"id" json:"id"`
	Code       string     `db:"code" json:"code"`
	Name       string     `db:"name" json:"name"`
	Location   string     `db:"location" json:"location"`
	Reader     string     `db:"reader" json:"reader"`
	Printer    string     `db:"printer" json:"printer"`
	Terminal   string     `db:"terminal" json:"terminal"`
	EnrolledAt *time.Time `db:"enrolled_at" json:"enrolled_at,omitempty"`
	Disabled   bool       `db:"disabled" json:"disabled"`
	CSRF       string     `db:"csrf" json:"-"`
}

const kioskCols = "id, code, name, location, reader, printer, terminal, enrolled_at, disabled, csrf"

var codeRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,39}$`)

// Kiosks lists the site's kiosks.
func (s *Service) Kiosks(ctx context.Context) ([]Kiosk, error) {
	out := []Kiosk{}
	err := s.db.Select(ctx, &out, "SELECT "+kioskCols+" FROM kiosks WHERE site_id = ? ORDER BY code", s.site.ID)
	return out, err
}

// Register records a kiosk (or changes its name, location and devices)
// and returns a one-time enrolment code for its browser, valid 24 hours.
func (s *Service) Register(ctx context.Context, k Kiosk) (Kiosk, string, error) {
	k.Code, k.Name = strings.TrimSpace(k.Code), strings.TrimSpace(k.Name)
	switch {
	case !codeRE.MatchString(k.Code):
		return Kiosk{}, "", fault.Invalid("code", "kiosk_code_invalid")
	case k.Name == "" || len([]rune(k.Name)) > 40:
		return Kiosk{}, "", fault.Invalid("name", "name_required")
	case len(k.Location) > 100 || len(k.Reader) > 40 || len(k.Printer) > 40 || len(k.Terminal) > 40:
		return Kiosk{}, "", fault.Invalid("location", "too_long", "max", 100)
	}
	code := enrolCode()
	now := s.now()
	var out Kiosk
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE kiosks SET name = ?, location = ?, reader = ?, printer = ?, terminal = ?, enroll_hash = ?,
			enroll_expires_at = ?, updated_at = ? WHERE site_id = ? AND code = ?`, k.Name, k.Location, k.Reader, k.Printer, k.Terminal,
			hash(code), now.Add(24*time.Hour), now, s.site.ID, k.Code)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := tx.Insert(ctx, `INSERT INTO kiosks (site_id, code, name, location, reader, printer, terminal, enroll_hash,
				enroll_expires_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
				s.site.ID, k.Code, k.Name, k.Location, k.Reader, k.Printer, k.Terminal, hash(code), now.Add(24*time.Hour), now, now); err != nil {
				return err
			}
		}
		if err := tx.Get(ctx, &out, "SELECT "+kioskCols+" FROM kiosks WHERE site_id = ? AND code = ?", s.site.ID, k.Code); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "kiosk.register", Entity: "kiosk", EntityID: out.ID, After: out})
	})
	return out, code, err
}

// Enrol turns a browser into the kiosk whose one-time code it presents:
// it returns the kiosk and its credential (for a cookie); the code is
// used up, and any earlier credential of the kiosk stops working.
func (s *Service) Enrol(ctx context.Context, code string) (Kiosk, string, error) {
	code = strings.ToUpper(strings.TrimSpace(code))
	secret := randomHex(32)
	var k Kiosk
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		err := tx.Get(ctx, &k, "SELECT "+kioskCols+" FROM kiosks WHERE site_id = ? AND enroll_hash = ? AND enroll_expires_at > ? AND disabled = ?",
			s.site.ID, hash(code), s.now(), false)
		if store.IsNoRows(err) {
			return fault.Invalid("code", "enrol_code_invalid")
		}
		if err != nil {
			return err
		}
		k.CSRF = randomHex(16)
		now := s.now()
		if _, err := tx.Exec(ctx, `UPDATE kiosks SET enroll_hash = NULL, enroll_expires_at = NULL, secret_hash = ?, csrf = ?, enrolled_at = ?,
			updated_at = ? WHERE id = ?`, hash(secret), k.CSRF, now, now, k.ID); err != nil {
			return err
		}
		k.EnrolledAt = &now
		return auth.Record(auth.WithActor(ctx, Actor(k)), tx, auth.Entry{Action: "kiosk.enrol", Entity: "kiosk", EntityID: k.ID})
	})
	if err != nil {
		return Kiosk{}, "", err
	}
	s.forget() // the kiosk's earlier credential stops working
	return k, strconv.FormatInt(k.ID, 10) + "." + secret, nil
}

// Authenticate finds the enabled kiosk a credential belongs to.
func (s *Service) Authenticate(ctx context.Context, credential string) (Kiosk, error) {
	s.mu.Lock()
	kn, ok := s.known[credential]
	s.mu.Unlock()
	if ok && time.Since(kn.at) < credentialTTL {
		return kn.k, nil
	}
	k, err := s.authenticate(ctx, credential)
	if err == nil {
		s.mu.Lock()
		if s.known == nil || len(s.known) > 1000 {
			s.known = map[string]knownKiosk{}
		}
		// A copy: the caller's string may point into a request buffer
		// that is reused (fiber's cookies), and a map key must not change.
		s.known[strings.Clone(credential)] = knownKiosk{k, time.Now()}
		s.mu.Unlock()
	}
	return k, err
}

func (s *Service) authenticate(ctx context.Context, credential string) (Kiosk, error) {
	idPart, secret, ok := strings.Cut(credential, ".")
	id, err := strconv.ParseInt(idPart, 10, 64)
	if !ok || err != nil || len(secret) != 64 {
		return Kiosk{}, fault.ErrAuth
	}
	var row struct {
		Kiosk
		Hash *string `db:"secret_hash"`
	}
	err = s.db.Get(ctx, &row, "SELECT "+kioskCols+", secret_hash FROM kiosks WHERE id = ? AND site_id = ?", id, s.site.ID)
	if err != nil || row.Hash == nil || subtle.ConstantTimeCompare([]byte(*row.Hash), []byte(hash(secret))) != 1 {
		return Kiosk{}, fault.ErrAuth
	}
	if row.Disabled {
		return Kiosk{}, fault.Forbidden("kiosk_disabled")
	}
	return row.Kiosk, nil
}

// SetDisabled stops (or restarts) a kiosk at once: its credential is
// refused from the next request, and its sessions end.
func (s *Service) SetDisabled(ctx context.Context, code string, disabled bool) error {
	var id int64
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		if err := tx.Get(ctx, &id, "SELECT id FROM kiosks WHERE site_id = ? AND code = ?", s.site.ID, code); err != nil {
			if store.IsNoRows(err) {
				return fault.NotFound("kiosk_not_found")
			}
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE kiosks SET disabled = ?, updated_at = ? WHERE id = ?", disabled, s.now(), id); err != nil {
			return err
		}
		action := "kiosk.enable"
		if disabled {
			action = "kiosk.disable"
		}
		return auth.Record(ctx, tx, auth.Entry{Action: action, Entity: "kiosk", EntityID: id})
	})
	s.forget()
	if err == nil && disabled {
		s.mu.Lock()
		for t, se := range s.sessions {
			if se.KioskID == id {
				delete(s.sessions, t)
			}
		}
		s.mu.Unlock()
	}
	return err
}

// Actor is the kiosk as the actor of what is done there (payments are
// booked to it).
func Actor(k Kiosk) auth.Actor {
	return auth.Actor{Kind: "kiosk", ID: k.ID, Name: "kiosk:" + k.Code, CSRF: k.CSRF}
}

func enrolCode() string {
	const alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789" // no 0/O, 1/I
	b := make([]byte, 10)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func hash(s string) string {
	h := sha256.Sum256([]byte("onecard/kiosk/" + s))
	return hex.EncodeToString(h[:])
}

var pinRE = regexp.MustCompile(`^\d{6}$`)

// SetPIN sets (or resets) a unit's kiosk PIN, six digits, and clears its
// lockout. The desk does this with the owner present.
func (s *Service) SetPIN(ctx context.Context, unit, pin string) error {
	if !pinRE.MatchString(pin) || strings.Count(pin, pin[:1]) == 6 || strings.Contains("0123456789876543210", pin) {
		return fault.Invalid("pin", "pin_weak")
	}
	u, err := s.estate.Unit(ctx, unit)
	if err != nil {
		return err
	}
	h, err := auth.HashPassword(pin)
	if err != nil {
		return err
	}
	a := auth.ActorFrom(ctx)
	var by *int64
	if a.Kind == "staff" {
		by = &a.ID
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO unit_pins (unit_id, pin_hash, failures, locked_until, set_by, set_at) VALUES (?, ?, 0, NULL, ?, ?)
			ON CONFLICT (unit_id) DO UPDATE SET pin_hash = excluded.pin_hash, failures = 0, locked_until = NULL, set_by = excluded.set_by,
			set_at = excluded.set_at`, u.ID, h, by, s.now()); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "unit.pin_set", Entity: "unit", EntityID: u.ID})
	})
}

// PINState is what the desk sees of a unit's PIN.
type PINState struct {
	Set         bool       `json:"set"`
	Failures    int        `json:"failures"`
	LockedUntil *time.Time `json:"locked_until,omitempty"`
}

// PIN returns a unit's PIN state.
func (s *Service) PIN(ctx context.Context, unit string) (PINState, error) {
	u, err := s.estate.Unit(ctx, unit)
	if err != nil {
		return PINState{}, err
	}
	var row struct {
		Failures    int        `db:"failures"`
		LockedUntil *time.Time `db:"locked_until"`
	}
	err = s.db.Get(ctx, &row, "SELECT failures, locked_until FROM unit_pins WHERE unit_id = ?", u.ID)
	if store.IsNoRows(err) {
		return PINState{}, nil
	}
	if err != nil {
		return PINState{}, err
	}
	st := PINState{Set: true, Failures: row.Failures}
	if row.LockedUntil != nil && row.LockedUntil.After(s.now()) {
		st.LockedUntil = row.LockedUntil
	}
	return st, nil
}

// checkPIN checks a unit's PIN, counting failures and locking the PIN
// after too many; the answer never says whether the unit exists.
func (s *Service) checkPIN(ctx context.Context, unit, pin string) (estate.UnitDetail, error) {
	wrong := fault.Invalid("pin", "pin_wrong")
	u, err := s.estate.Unit(ctx, unit)
	if err != nil {
		auth.CheckPassword(dummyHash, pin) // the same time as a real check
		return estate.UnitDetail{}, wrong
	}
	var row struct {
		Hash        string     `db:"pin_hash"`
		Failures    int        `db:"failures"`
		LockedUntil *time.Time `db:"locked_until"`
	}
	err = s.db.Get(ctx, &row, "SELECT pin_hash, failures, locked_until FROM unit_pins WHERE unit_id = ?", u.ID)
	if store.IsNoRows(err) {
		auth.CheckPassword(dummyHash, pin)
		return estate.UnitDetail{}, wrong
	}
	if err != nil {
		return estate.UnitDetail{}, err
	}
	now := s.now()
	if row.LockedUntil != nil && row.LockedUntil.After(now) {
		return estate.UnitDetail{}, &fault.Error{Kind: fault.ErrLocked, Code: "pin_locked",
			Args: map[string]any{"minutes": int(row.LockedUntil.Sub(now).Minutes()) + 1}}
	}
	ok, err := auth.CheckPassword(row.Hash, pin)
	if err != nil {
		return estate.UnitDetail{}, err
	}
	if ok {
		if row.Failures > 0 {
			s.db.Exec(ctx, "UPDATE unit_pins SET failures = 0, locked_until = NULL WHERE unit_id = ?", u.ID)
		}
		return u, nil
	}
	failures := row.Failures + 1
	var lock *time.Time
	if failures >= s.o.PINAttempts {
		t := now.Add(s.o.PINLock)
		lock, failures = &t, 0
	}
	if _, err := s.db.Exec(ctx, "UPDATE unit_pins SET failures = ?, locked_until = ? WHERE unit_id = ?", failures, lock, u.ID); err != nil {
		return estate.UnitDetail{}, err
	}
	if lock != nil {
		auth.Record(ctx, s.db, auth.Entry{Action: "unit.pin_locked", Entity: "unit", EntityID: u.ID})
		return estate.UnitDetail{}, &fault.Error{Kind: fault.ErrLocked, Code: "pin_locked", Args: map[string]any{"minutes": int(s.o.PINLock.Minutes())}}
	}
	return estate.UnitDetail{}, wrong
}

var dummyHash = func() string {
	h, err := auth.HashPassword("not a pin at all")
	if err != nil {
		panic(fmt.Sprint("kiosk: ", err))
	}
	return h
}()

// Session is an owner identified at a kiosk.
type Session struct {
	Token   string
	KioskID int64
	Unit    string
	Method  string // "pin" or "card"
	Touched time.Time
}

// IdentifyByPIN starts a session for a unit after its PIN.
func (s *Service) IdentifyByPIN(ctx context.Context, k Kiosk, unit, pin string) (*Session, error) {
	u, err := s.checkPIN(ctx, unit, pin)
	if err != nil {
		return nil, err
	}
	return s.start(k, u.Code, "pin"), nil
}

func (s *Service) start(k Kiosk, unit, method string) *Session {
	se := &Session{Token: randomHex(24), KioskID: k.ID, Unit: unit, Method: method, Touched: s.now()}
	s.mu.Lock()
	defer s.mu.Unlock()
	for t, old := range s.sessions { // one session per kiosk; expired ones go
		if old.KioskID == k.ID || s.now().Sub(old.Touched) > s.o.Idle {
			delete(s.sessions, t)
		}
	}
	s.sessions[se.Token] = se
	return se
}

// Session returns the kiosk's live session for token, touching it; nil if
// there is none (ended, idle too long, another kiosk's).
func (s *Service) Session(k Kiosk, token string) *Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	se := s.sessions[token]
	if se == nil || se.KioskID != k.ID {
		return nil
	}
	if s.now().Sub(se.Touched) > s.o.Idle {
		delete(s.sessions, token)
		return nil
	}
	se.Touched = s.now()
	return se
}

// End ends a session.
func (s *Service) End(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.sessions, token)
}
