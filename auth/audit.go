package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"onecard/store"
)

// Entry is one audit row to write: what was done to which record, with
// the record before and after. Before and After are marshalled to JSON.
type Entry struct {
	Action   string
	Entity   string
	EntityID any // int64 or string
	Before   any
	After    any
}

// Record writes an audit row for the actor in ctx. Call it with the
// transaction that makes the change, so the change and its record commit
// together or not at all.
func Record(ctx context.Context, q store.Q, e Entry) error {
	a := ActorFrom(ctx)
	var actorID *int64
	if a.Kind != "system" {
		id := a.ID
		actorID = &id
	}
	before, err := marshal(e.Before)
	if err != nil {
		return err
	}
	after, err := marshal(e.After)
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO audit_log (at, actor_kind, actor_id, actor_name, action, entity, entity_id, before_json, after_json, request_id)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, time.Now().UTC(), a.Kind, actorID, a.Name, e.Action, e.Entity,
		fmt.Sprint(e.EntityID), before, after, requestID(ctx))
	if err != nil {
		return fmt.Errorf("auth: write audit row: %w", err)
	}
	return nil
}

func marshal(v any) (*string, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("auth: audit json: %w", err)
	}
	s := string(b)
	return &s, nil
}

// AuditRow is one row of the audit log.
type AuditRow struct {
	ID        int64     `db:"id" json:"id"`
	At        time.Time `db:"at" json:"at"`
	ActorKind string    `db:"actor_kind" json:"actor_kind"`
	ActorID   *int64    `db:"actor_id" json:"actor_id,omitempty"`
	ActorName string    `db:"actor_name" json:"actor_name"`
	Action    string    `db:"action" json:"action"`
	Entity    string    `db:"entity" json:"entity"`
	EntityID  string    `db:"entity_id" json:"entity_id"`
	Before    *string   `db:"before_json" json:"before,omitempty"`
	After     *string   `db:"after_json" json:"after,omitempty"`
	RequestID string    `db:"request_id" json:"request_id,omitempty"`
}

// AuditFilter narrows an audit listing. Zero fields match everything.
type AuditFilter struct {
	Actor    string
	Action   string // prefix match: "unit." finds every unit action
	Entity   string
	EntityID string
	From, To time.Time
	BeforeID int64 // for paging: rows with id < BeforeID
	Limit    int
}

// Audit lists audit rows, newest first.
func (s *Service) Audit(ctx context.Context, f AuditFilter) ([]AuditRow, error) {
	var where []string
	var args []any
	add := func(cond string, v any) { where = append(where, cond); args = append(args, v) }
	if f.Actor != "" {
		add("actor_name = ?", f.Actor)
	}
	if f.Action != "" {
		add("action LIKE ? ESCAPE '\\'", strings.TrimSuffix(store.Like(f.Action), "%")[1:]+"%")
	}
	if f.Entity != "" {
		add("entity = ?", f.Entity)
	}
	if f.EntityID != "" {
		add("entity_id = ?", f.EntityID)
	}
	if !f.From.IsZero() {
		add("at >= ?", f.From.UTC())
	}
	if !f.To.IsZero() {
		add("at < ?", f.To.UTC())
	}
	if f.BeforeID > 0 {
		add("id < ?", f.BeforeID)
	}
	if f.Limit <= 0 || f.Limit > 500 {
		f.Limit = 100
	}
	q := "SELECT id, at, actor_kind, actor_id, actor_name, action, entity, entity_id, before_json, after_json, request_id FROM audit_log"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id DESC LIMIT " + strconv.Itoa(f.Limit)
	var out []AuditRow
	if err := s.db.Select(ctx, &out, q, args...); err != nil {
		return nil, fmt.Errorf("auth: audit: %w", err)
	}
	return out, nil
}
