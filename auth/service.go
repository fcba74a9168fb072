package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"onecard/fault"
	"onecard/store"
)

// Policy is how long sessions last and how logins are throttled.
type Policy struct {
	SessionTTL     time.Duration // absolute lifetime of a session
	SessionIdle    time.Duration // a session unused this long ends
	MaxFailures    int           // failed logins before the name is locked
	LockoutPeriod  time.Duration // how long a locked name stays locked
	FailureWindow  time.Duration // failures older than this are forgotten
	LastSeenUpdate time.Duration // how often last_seen_at is written
}

// DefaultPolicy suits a staffed desk: a shift-long session, ten tries.
var DefaultPolicy = Policy{
	SessionTTL:     12 * time.Hour,
	SessionIdle:    2 * time.Hour,
	MaxFailures:    10,
	LockoutPeriod:  15 * time.Minute,
	FailureWindow:  time.Hour,
	LastSeenUpdate: time.Minute,
}

// Service is the auth domain service.
type Service struct {
	db     *store.DB
	policy Policy
	now    func() time.Time
}

// New returns a Service on db.
func New(db *store.DB, p Policy) *Service {
	return &Service{db: db, policy: p, now: func() time.Time { return time.Now().UTC() }}
}

// SetClock replaces the clock (tests of lockout expiry).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Staff is a staff account as shown to admins (never the hash).
type Staff struct {
	ID           int64      `db:"id" json:"id"`
	Username     string     `db:"username" json:"username"`
	DisplayName  string     `db:"display_name" json:"display_name"`
	Role         Role       `db:"role" json:"role"`
	Disabled     bool       `db:"disabled" json:"disabled"`
	FailedLogins int        `db:"failed_logins" json:"-"`
	LockedUntil  *time.Time `db:"locked_until" json:"locked_until,omitempty"`
	CreatedAt    time.Time  `db:"created_at" json:"created_at"`
	UpdatedAt    time.Time  `db:"updated_at" json:"updated_at"`
}

const staffCols = "id, username, display_name, role, disabled, failed_logins, locked_until, created_at, updated_at"

// NewStaff is the input for CreateStaff.
type NewStaff struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        Role   `json:"role"`
	Password    string `json:"password"`
}

func validUsername(u string) bool {
	if len(u) < 2 || len(u) > 32 {
		return false
	}
	for _, r := range u {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

func validPassword(pw string) *fault.Error {
	if utf8.RuneCountInString(pw) < MinPasswordLen {
		return fault.Invalid("password", "password_too_short", "min", MinPasswordLen)
	}
	if len(pw) > 256 {
		return fault.Invalid("password", "password_too_long", "max", 256)
	}
	return nil
}

// CreateStaff adds a staff account.
func (s *Service) CreateStaff(ctx context.Context, in NewStaff) (Staff, error) {
	in.Username = strings.ToLower(strings.TrimSpace(in.Username))
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	if !validUsername(in.Username) {
		return Staff{}, fault.Invalid("username", "username_invalid")
	}
	if in.DisplayName == "" {
		in.DisplayName = in.Username
	}
	if utf8.RuneCountInString(in.DisplayName) > 64 {
		return Staff{}, fault.Invalid("display_name", "too_long", "max", 64)
	}
	if !in.Role.Valid() {
		return Staff{}, fault.Invalid("role", "role_invalid")
	}
	if err := validPassword(in.Password); err != nil {
		return Staff{}, err
	}
	hash, err := HashPassword(in.Password)
	if err != nil {
		return Staff{}, err
	}
	now := s.now()
	var out Staff
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		id, err := tx.Insert(ctx, `INSERT INTO staff (username, display_name, role, password_hash, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, in.Username, in.DisplayName, in.Role, hash, now, now)
		if store.IsUnique(err) {
			return fault.Conflict("username", "username_taken", "username", in.Username)
		}
		if err != nil {
			return fmt.Errorf("auth: create staff: %w", err)
		}
		if err := tx.Get(ctx, &out, "SELECT "+staffCols+" FROM staff WHERE id = ?", id); err != nil {
			return fmt.Errorf("auth: read staff: %w", err)
		}
		return Record(ctx, tx, Entry{Action: "staff.create", Entity: "staff", EntityID: id, After: out})
	})
	return out, err
}

// ListStaff returns every staff account, by username.
func (s *Service) ListStaff(ctx context.Context) ([]Staff, error) {
	var out []Staff
	if err := s.db.Select(ctx, &out, "SELECT "+staffCols+" FROM staff ORDER BY username"); err != nil {
		return nil, fmt.Errorf("auth: list staff: %w", err)
	}
	return out, nil
}

// StaffByUsername returns one account.
func (s *Service) StaffByUsername(ctx context.Context, username string) (Staff, error) {
	var out Staff
	err := s.db.Get(ctx, &out, "SELECT "+staffCols+" FROM staff WHERE username = ?", strings.ToLower(strings.TrimSpace(username)))
	if store.IsNoRows(err) {
		return out, fault.NotFound("staff_not_found")
	}
	if err != nil {
		return out, fmt.Errorf("auth: staff %s: %w", username, err)
	}
	return out, nil
}

// ResetPassword sets a new password, clears any lockout and ends the
// account's sessions.
func (s *Service) ResetPassword(ctx context.Context, username, pw string) error {
	if err := validPassword(pw); err != nil {
		return err
	}
	st, err := s.StaffByUsername(ctx, username)
	if err != nil {
		return err
	}
	hash, err := HashPassword(pw)
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE staff SET password_hash = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE id = ?`,
			hash, s.now(), st.ID); err != nil {
			return fmt.Errorf("auth: reset password: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM login_failures WHERE username = ?", st.Username); err != nil {
			return fmt.Errorf("auth: clear failures: %w", err)
		}
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE staff_id = ?", st.ID); err != nil {
			return fmt.Errorf("auth: end sessions: %w", err)
		}
		return Record(ctx, tx, Entry{Action: "staff.reset_password", Entity: "staff", EntityID: st.ID,
			After: map[string]any{"username": st.Username}})
	})
}

// SetDisabled turns an account off (ending its sessions) or back on.
func (s *Service) SetDisabled(ctx context.Context, username string, disabled bool) error {
	st, err := s.StaffByUsername(ctx, username)
	if err != nil {
		return err
	}
	if a := ActorFrom(ctx); disabled && a.Kind == "staff" && a.ID == st.ID {
		return fault.Invalid("username", "cannot_disable_self")
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "UPDATE staff SET disabled = ?, updated_at = ? WHERE id = ?", disabled, s.now(), st.ID); err != nil {
			return fmt.Errorf("auth: disable: %w", err)
		}
		if disabled {
			if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE staff_id = ?", st.ID); err != nil {
				return fmt.Errorf("auth: end sessions: %w", err)
			}
		}
		after := st
		after.Disabled = disabled
		return Record(ctx, tx, Entry{Action: "staff.set_disabled", Entity: "staff", EntityID: st.ID, Before: st, After: after})
	})
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux; if it does nothing is safe
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func hashToken(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(h[:])
}
