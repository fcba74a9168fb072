package auth

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"onecard/fault"
	"onecard/store"
)

// Session is a logged-in staff member's session. Token is only set when the
// session is created; the database keeps its hash.
type Session struct {
	Token     string
	Actor     Actor
	ExpiresAt time.Time
}

// Login checks a username and password and opens a session. Repeated
// failures for one name lock it for a while, whether or not it exists; a
// locked or disabled account cannot log in even with the right password.
func (s *Service) Login(ctx context.Context, username, password, remoteAddr, userAgent string) (Session, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	now := s.now()
	row, err := s.checkCredentials(ctx, username, password, now)
	if err != nil {
		return Session{}, err
	}
	sess := Session{
		Token:     randomToken(32),
		Actor:     Actor{Kind: "staff", ID: row.ID, Name: row.Username, Role: row.Role, CSRF: randomToken(24)},
		ExpiresAt: now.Add(s.policy.SessionTTL),
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM login_failures WHERE username = ?", username); err != nil {
			return err
		}
		// Expired sessions are swept at each login rather than by a job.
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE expires_at < ?", now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (token_hash, staff_id, csrf_token, created_at, expires_at, last_seen_at, remote_addr, user_agent)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, hashToken(sess.Token), row.ID, sess.Actor.CSRF, now, sess.ExpiresAt, now,
			truncate(remoteAddr, 64), truncate(userAgent, 256)); err != nil {
			return err
		}
		return Record(WithActor(ctx, sess.Actor), tx, Entry{Action: "staff.login", Entity: "staff", EntityID: row.ID,
			After: map[string]any{"remote_addr": remoteAddr}})
	})
	if err != nil {
		return Session{}, fmt.Errorf("auth: open session: %w", err)
	}
	return sess, nil
}

// checkCredentials is the password check of Login and Approve, with the
// same lockout.
func (s *Service) checkCredentials(ctx context.Context, username, password string, now time.Time) (Staff, error) {
	if len(username) > 64 || len(password) > 256 {
		return Staff{}, &fault.Error{Kind: fault.ErrAuth, Code: "login_failed"}
	}
	var lockedUntil *time.Time
	if err := s.db.Get(ctx, &lockedUntil, "SELECT locked_until FROM login_failures WHERE username = ?", username); err != nil && !store.IsNoRows(err) {
		return Staff{}, fmt.Errorf("auth: read failures: %w", err)
	}
	if lockedUntil != nil && now.Before(*lockedUntil) {
		return Staff{}, &fault.Error{Kind: fault.ErrLocked, Code: "login_locked",
			Args: map[string]any{"minutes": int(lockedUntil.Sub(now).Minutes()) + 1}}
	}
	var row struct {
		Staff
		Hash string `db:"password_hash"`
	}
	err := s.db.Get(ctx, &row, "SELECT "+staffCols+", password_hash FROM staff WHERE username = ?", username)
	found := err == nil
	if err != nil && !store.IsNoRows(err) {
		return Staff{}, fmt.Errorf("auth: read staff: %w", err)
	}
	hash := dummyHash
	if found {
		hash = row.Hash
	}
	ok, err := CheckPassword(hash, password)
	if err != nil {
		return Staff{}, err
	}
	if !found || !ok {
		return Staff{}, s.recordFailure(ctx, username, now)
	}
	if row.Disabled {
		return Staff{}, &fault.Error{Kind: fault.ErrAuth, Code: "account_disabled"}
	}
	return row.Staff, nil
}

// Approve checks a second person's credentials for something that needs
// their approval (a supervisor authorising a void at the cashier's desk):
// the account must exist, be enabled, have one of roles, and give the
// right password; failures count towards the same lockout as logins. The
// approval is recorded in the audit log with what it was for.
func (s *Service) Approve(ctx context.Context, username, password, purpose string, roles ...Role) (Actor, error) {
	username = strings.ToLower(strings.TrimSpace(username))
	row, err := s.checkCredentials(ctx, username, password, s.now())
	if err != nil {
		if fe, ok := fault.As(err); ok && fe.Code == "login_failed" {
			return Actor{}, fault.Invalid("approver", "approval_failed")
		}
		return Actor{}, err
	}
	if !slices.Contains(roles, row.Role) {
		return Actor{}, fault.Invalid("approver", "approver_role")
	}
	a := Actor{Kind: "staff", ID: row.ID, Name: row.Username, Role: row.Role}
	err = Record(ctx, s.db, Entry{Action: "staff.approve", Entity: "staff", EntityID: row.ID, After: map[string]any{"for": purpose}})
	if err != nil {
		return Actor{}, err
	}
	return a, nil
}

func (s *Service) recordFailure(ctx context.Context, username string, now time.Time) error {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var f struct {
			Failures int       `db:"failures"`
			Last     time.Time `db:"last_failure_at"`
		}
		err := tx.Get(ctx, &f, "SELECT failures, last_failure_at FROM login_failures WHERE username = ?", username)
		if err != nil && !store.IsNoRows(err) {
			return err
		}
		exists := err == nil
		if exists && now.Sub(f.Last) > s.policy.FailureWindow {
			f.Failures = 0
		}
		f.Failures++
		var locked *time.Time
		if f.Failures >= s.policy.MaxFailures {
			t := now.Add(s.policy.LockoutPeriod)
			locked = &t
		}
		if exists {
			_, err = tx.Exec(ctx, "UPDATE login_failures SET failures = ?, locked_until = ?, last_failure_at = ? WHERE username = ?",
				f.Failures, locked, now, username)
		} else {
			_, err = tx.Exec(ctx, "INSERT INTO login_failures (username, failures, locked_until, last_failure_at) VALUES (?, ?, ?, ?)",
				username, f.Failures, locked, now)
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE staff SET failed_logins = ?, locked_until = ? WHERE username = ?", f.Failures, locked, username); err != nil {
			return err
		}
		if locked != nil {
			return Record(ctx, tx, Entry{Action: "staff.locked", Entity: "login", EntityID: username,
				After: map[string]any{"failures": f.Failures, "locked_until": locked}})
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("auth: record failure: %w", err)
	}
	return &fault.Error{Kind: fault.ErrAuth, Code: "login_failed"}
}

// SessionActor returns the actor of a live session token, sliding its idle
// timer. An unknown or expired token is fault.ErrAuth.
func (s *Service) SessionActor(ctx context.Context, token string) (Actor, error) {
	if token == "" || len(token) > 128 {
		return Actor{}, fault.ErrAuth
	}
	now := s.now()
	var row struct {
		StaffID   int64     `db:"staff_id"`
		CSRF      string    `db:"csrf_token"`
		Expires   time.Time `db:"expires_at"`
		LastSeen  time.Time `db:"last_seen_at"`
		Username  string    `db:"username"`
		Role      Role      `db:"role"`
		Disabled  bool      `db:"disabled"`
		TokenHash string    `db:"token_hash"`
	}
	err := s.db.Get(ctx, &row, `SELECT s.token_hash, s.staff_id, s.csrf_token, s.expires_at, s.last_seen_at, st.username, st.role, st.disabled
		FROM sessions s JOIN staff st ON st.id = s.staff_id WHERE s.token_hash = ?`, hashToken(token))
	if store.IsNoRows(err) {
		return Actor{}, fault.ErrAuth
	}
	if err != nil {
		return Actor{}, fmt.Errorf("auth: read session: %w", err)
	}
	if row.Disabled || now.After(row.Expires) || now.Sub(row.LastSeen) > s.policy.SessionIdle {
		return Actor{}, fault.ErrAuth
	}
	if now.Sub(row.LastSeen) > s.policy.LastSeenUpdate {
		if _, err := s.db.Exec(ctx, "UPDATE sessions SET last_seen_at = ? WHERE token_hash = ?", now, row.TokenHash); err != nil {
			return Actor{}, fmt.Errorf("auth: touch session: %w", err)
		}
	}
	return Actor{Kind: "staff", ID: row.StaffID, Name: row.Username, Role: row.Role, CSRF: row.CSRF}, nil
}

// Logout ends a session.
func (s *Service) Logout(ctx context.Context, token string) error {
	a, err := s.SessionActor(ctx, token)
	if err != nil {
		return nil // already gone
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		if _, err := tx.Exec(ctx, "DELETE FROM sessions WHERE token_hash = ?", hashToken(token)); err != nil {
			return fmt.Errorf("auth: logout: %w", err)
		}
		return Record(WithActor(ctx, a), tx, Entry{Action: "staff.logout", Entity: "staff", EntityID: a.ID})
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
