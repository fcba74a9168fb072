package auth

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"onecard/fault"
	"onecard/store"
)

// TokenPrefix starts every API token, so a leaked one is easy to grep for.
const TokenPrefix = "oc_"

// Token is an API token as listed (never its value).
type Token struct {
	ID         int64      `db:"id" json:"id"`
	Name       string     `db:"name" json:"name"`
	Prefix     string     `db:"prefix" json:"prefix"`
	Role       Role       `db:"role" json:"role"`
	CreatedBy  int64      `db:"created_by" json:"created_by"`
	CreatedAt  time.Time  `db:"created_at" json:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at" json:"last_used_at,omitempty"`
	RevokedAt  *time.Time `db:"revoked_at" json:"revoked_at,omitempty"`
}

const tokenCols = "id, name, prefix, role, created_by, created_at, last_used_at, revoked_at"

// CreateToken makes an API token for an integration and returns its value,
// which is shown once and stored only hashed. Only a staff actor can create
// one (the token records who).
func (s *Service) CreateToken(ctx context.Context, name string, role Role) (Token, string, error) {
	a := ActorFrom(ctx)
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 {
		return Token{}, "", fault.Invalid("name", "token_name_invalid")
	}
	if !role.Valid() {
		return Token{}, "", fault.Invalid("role", "role_invalid")
	}
	if a.Kind != "staff" {
		return Token{}, "", fault.Forbidden("token_needs_staff")
	}
	value := TokenPrefix + randomToken(32)
	now := s.now()
	var out Token
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		id, err := tx.Insert(ctx, `INSERT INTO api_tokens (name, token_hash, prefix, role, created_by, created_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, name, hashToken(value), value[:len(TokenPrefix)+6], role, a.ID, now)
		if err != nil {
			return fmt.Errorf("auth: create token: %w", err)
		}
		if err := tx.Get(ctx, &out, "SELECT "+tokenCols+" FROM api_tokens WHERE id = ?", id); err != nil {
			return err
		}
		return Record(ctx, tx, Entry{Action: "token.create", Entity: "api_token", EntityID: id, After: out})
	})
	if err != nil {
		return Token{}, "", err
	}
	return out, value, nil
}

// ListTokens lists every token, newest first.
func (s *Service) ListTokens(ctx context.Context) ([]Token, error) {
	var out []Token
	if err := s.db.Select(ctx, &out, "SELECT "+tokenCols+" FROM api_tokens ORDER BY id DESC"); err != nil {
		return nil, fmt.Errorf("auth: list tokens: %w", err)
	}
	return out, nil
}

// RevokeToken stops a token from working; the row stays for the record.
func (s *Service) RevokeToken(ctx context.Context, id int64) error {
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		var before Token
		err := tx.Get(ctx, &before, "SELECT "+tokenCols+" FROM api_tokens WHERE id = ?", id)
		if store.IsNoRows(err) {
			return fault.NotFound("token_not_found")
		}
		if err != nil {
			return err
		}
		if before.RevokedAt != nil {
			return nil
		}
		now := s.now()
		if _, err := tx.Exec(ctx, "UPDATE api_tokens SET revoked_at = ? WHERE id = ?", now, id); err != nil {
			return fmt.Errorf("auth: revoke token: %w", err)
		}
		after := before
		after.RevokedAt = &now
		return Record(ctx, tx, Entry{Action: "token.revoke", Entity: "api_token", EntityID: id, Before: before, After: after})
	})
}

// TokenActor returns the actor of a bearer token value.
func (s *Service) TokenActor(ctx context.Context, value string) (Actor, error) {
	if !strings.HasPrefix(value, TokenPrefix) || len(value) > 128 {
		return Actor{}, fault.ErrAuth
	}
	var t Token
	err := s.db.Get(ctx, &t, "SELECT "+tokenCols+" FROM api_tokens WHERE token_hash = ?", hashToken(value))
	if store.IsNoRows(err) {
		return Actor{}, fault.ErrAuth
	}
	if err != nil {
		return Actor{}, fmt.Errorf("auth: read token: %w", err)
	}
	if t.RevokedAt != nil {
		return Actor{}, fault.ErrAuth
	}
	now := s.now()
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > s.policy.LastSeenUpdate {
		if _, err := s.db.Exec(ctx, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", now, t.ID); err != nil {
			return Actor{}, fmt.Errorf("auth: touch token: %w", err)
		}
	}
	return Actor{Kind: "token", ID: t.ID, Name: "token:" + t.Name, Role: t.Role}, nil
}
