package mailroom

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"onecard/auth"
	"onecard/devices/scanner"
	"onecard/estate"
	"onecard/fault"
	"onecard/store"
)

// Item types (SOP §3).
const (
	Letter     = "letter"     // 平信
	Registered = "registered" // 挂号信
	Parcel     = "parcel"     // 包裹
	Express    = "express"    // 快递
	Remittance = "remittance" // 汇款单
	Newspaper  = "newspaper"  // 报纸
)

// Types lists the item types, in the order the desk offers them.
var Types = []string{Express, Parcel, Letter, Registered, Remittance, Newspaper}

var typeNames = map[string]string{Letter: "平信", Registered: "挂号信", Parcel: "包裹", Express: "快递", Remittance: "汇款单", Newspaper: "报纸"}

// TypeName is an item type in Chinese, as the register prints it.
func TypeName(t string) string {
	if n, ok := typeNames[t]; ok {
		return n
	}
	return t
}

// trackedTypes must carry a tracking number.
var trackedTypes = []string{Registered, Parcel, Express}

// urgent types are notified at once (SOP §3: express and important items).
func urgent(t string) bool { return t != Letter && t != Newspaper }

// Conditions, storages, holds and states of an item.
const (
	ConditionOK      = "ok"
	ConditionDamaged = "damaged"

	StorageShelf  = "shelf"
	StorageLocker = "locker"

	HoldStandard = "standard"
	HoldMovedOut = "moved_out"
	HoldConsent  = "consent"

	StateWaiting   = "waiting"
	StateCollected = "collected"
	StateReturned  = "returned"
)

// Item is an incoming item.
type Item struct {
	ID       int64   `db:"id" json:"id"`
	Number   string  `db:"number" json:"number"`
	Type     string  `db:"item_type" json:"type"`
	TypeName string  `db:"-" json:"type_name"`
	Carrier  string  `db:"carrier" json:"carrier"`
	Tracking *string `db:"tracking" json:"tracking,omitempty"`
	UnitID   int64   `db:"unit_id" json:"-"`
	Unit     string  `db:"unit" json:"unit"`
	// Recipient is as written on the item; PersonID the resident it was
	// matched to, if any.
	Recipient     string `db:"recipient" json:"recipient"`
	PersonID      *int64 `db:"person_id" json:"person_id,omitempty"`
	Condition     string `db:"item_condition" json:"condition"`
	DamageNote    string `db:"damage_note" json:"damage_note,omitempty"`
	Countersigned bool   `db:"countersigned" json:"countersigned"`
	Storage       string `db:"storage" json:"storage"`
	Slot          string `db:"slot" json:"slot,omitempty"`
	// Door is the locker door assigned (the item is in it once StoredAt
	// is set).
	Door           *int       `db:"door" json:"door,omitempty"`
	StoredAt       *time.Time `db:"stored_at" json:"stored_at,omitempty"`
	NeedsSignature bool       `db:"needs_signature" json:"needs_signature"`
	Hold           string     `db:"hold" json:"hold"`
	HoldNote       string     `db:"hold_note" json:"hold_note,omitempty"`
	State          string     `db:"state" json:"state"`
	// Attention is why staff should look at the item, empty when all is
	// well: a locker command that failed, as purpose:reason:door
	// ("store:not_opened:12": the door given did not open and the item
	// needs another; "pickup:no_answer:3": the resident could not take it;
	// "service:…" for a door opened by staff). AttentionParts splits it.
	Attention    string     `db:"attention" json:"attention,omitempty"`
	RegisteredOn string     `db:"registered_on" json:"registered_on"`
	RegisteredAt time.Time  `db:"registered_at" json:"registered_at"`
	RegisteredBy string     `db:"registered_by" json:"registered_by"`
	CollectedAt  *time.Time `db:"collected_at" json:"collected_at,omitempty"`
	// CollectorKind is recipient, household or agent at the desk, code at
	// the locker.
	CollectorKind *string    `db:"collector_kind" json:"collector_kind,omitempty"`
	CollectorName string     `db:"collector_name" json:"collector_name,omitempty"`
	AgentIDLast4  string     `db:"agent_id_last4" json:"agent_id_last4,omitempty"`
	SignatureID   *int64     `db:"signature_id" json:"signature_id,omitempty"`
	CollectedVia  string     `db:"collected_via" json:"collected_via,omitempty"`
	HandedBy      string     `db:"handed_by" json:"handed_by,omitempty"`
	ReturnedAt    *time.Time `db:"returned_at" json:"returned_at,omitempty"`
	ReturnNote    string     `db:"return_note" json:"return_note,omitempty"`
	UpdatedAt     time.Time  `db:"updated_at" json:"updated_at"`

	// HoldUntil is the day the item is due back to the courier if still
	// here (RegisteredOn plus the hold period).
	HoldUntil string `db:"-" json:"hold_until"`
	// InLocker: the item is behind its door.
	InLocker bool `db:"-" json:"in_locker"`
	// CollectAt is where the resident collects it: "locker" (with the
	// pickup code, at the kiosk) or "desk" (signed for, or on a shelf).
	CollectAt string `db:"-" json:"collect_at"`
}

const itemCols = `i.id, i.number, i.item_type, i.carrier, i.tracking, i.unit_id, u.code AS unit, i.recipient, i.person_id,
	i.item_condition, i.damage_note, i.countersigned, i.storage, i.slot, d.number AS door, i.stored_at, i.needs_signature, i.hold,
	i.hold_note, i.state, i.attention, i.registered_on, i.registered_at, i.registered_by, i.collected_at, i.collector_kind,
	i.collector_name, i.agent_id_last4, i.signature_id, i.collected_via, i.handed_by, i.returned_at, i.return_note, i.updated_at`
const itemFrom = ` FROM mail_items i JOIN units u ON u.id = i.unit_id LEFT JOIN mail_doors d ON d.id = i.door_id`

// fill sets the derived fields.
func (it *Item) fill(st Settings) {
	it.TypeName = TypeName(it.Type)
	it.HoldUntil = addDays(it.RegisteredOn, st.holdDays(it.Hold))
	it.InLocker = it.State == StateWaiting && it.Door != nil && it.StoredAt != nil
	it.CollectAt = "desk"
	if it.InLocker && !it.NeedsSignature {
		it.CollectAt = "locker"
	}
}

func (s *Service) items(ctx context.Context, q store.Q, where string, args ...any) ([]Item, error) {
	st, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	out := []Item{}
	if err := q.Select(ctx, &out, "SELECT "+itemCols+itemFrom+" WHERE i.site_id = ? AND "+where, append([]any{s.site.ID}, args...)...); err != nil {
		return nil, fmt.Errorf("mailroom: items: %w", err)
	}
	for i := range out {
		out[i].fill(st)
	}
	return out, nil
}

func (s *Service) item(ctx context.Context, q store.Q, id int64) (Item, error) {
	its, err := s.items(ctx, q, "i.id = ?", id)
	if err != nil {
		return Item{}, err
	}
	if len(its) == 0 {
		return Item{}, fault.NotFound("item_not_found")
	}
	return its[0], nil
}

// Item returns one item.
func (s *Service) Item(ctx context.Context, id int64) (Item, error) { return s.item(ctx, s.db, id) }

// Waiting lists a unit's items not yet collected or returned, oldest
// first (the kiosk shows them once the owner is identified: CollectAt
// says where each is collected).
func (s *Service) Waiting(ctx context.Context, unit string) ([]Item, error) {
	u, err := s.unit(ctx, s.db, unit)
	if err != nil {
		return nil, err
	}
	return s.items(ctx, s.db, "i.unit_id = ? AND i.state = 'waiting' ORDER BY i.registered_at, i.id", u.id)
}

// AttentionParts splits Attention into the failed command's purpose, its
// reason and the door.
func (it Item) AttentionParts() (purpose, reason string, door int) {
	p := strings.SplitN(it.Attention, ":", 3)
	if len(p) != 3 {
		return "", "", 0
	}
	door, _ = strconv.Atoi(p[2])
	return p[0], p[1], door
}

// Query narrows a listing of items; zero fields match everything.
type Query struct {
	Unit  string
	State string // waiting, collected, returned
	// Day is a registration day (YYYY-MM-DD).
	Day   string
	Limit int // 100 by default, at most 500
}

// Find lists items, newest first.
func (s *Service) Find(ctx context.Context, q Query) ([]Item, error) {
	where, args := []string{"1 = 1"}, []any{}
	if q.Unit != "" {
		u, err := s.unit(ctx, s.db, q.Unit)
		if err != nil {
			return nil, err
		}
		where, args = append(where, "i.unit_id = ?"), append(args, u.id)
	}
	if q.State != "" {
		if !slices.Contains([]string{StateWaiting, StateCollected, StateReturned}, q.State) {
			return nil, fault.Invalid("state", "state_invalid")
		}
		where, args = append(where, "i.state = ?"), append(args, q.State)
	}
	if q.Day != "" {
		d, err := estate.ParseDate("day", q.Day)
		if err != nil {
			return nil, err
		}
		where, args = append(where, "i.registered_on = ?"), append(args, d)
	}
	if q.Limit <= 0 || q.Limit > 500 {
		q.Limit = 100
	}
	return s.items(ctx, s.db, strings.Join(where, " AND ")+fmt.Sprintf(" ORDER BY i.id DESC LIMIT %d", q.Limit), args...)
}

type unitRef struct {
	id   int64
	code string
}

// unit finds a unit by code: unknown is bad input (unit_unknown).
func (s *Service) unit(ctx context.Context, q store.Q, code string) (unitRef, error) {
	c, err := estate.ParseUnitCode(code)
	if err != nil {
		return unitRef{}, fault.Invalid("unit", "unit_code_invalid")
	}
	var id int64
	err = q.Get(ctx, &id, "SELECT id FROM units WHERE site_id = ? AND code = ?", s.site.ID, c.String())
	if store.IsNoRows(err) {
		return unitRef{}, fault.Invalid("unit", "unit_unknown")
	}
	if err != nil {
		return unitRef{}, fmt.Errorf("mailroom: unit %s: %w", code, err)
	}
	return unitRef{id, c.String()}, nil
}

// RegisterInput is an incoming item as the clerk registers it.
type RegisterInput struct {
	Type    string `json:"type"`
	Carrier string `json:"carrier"`
	// Tracking is the courier's number, scanned or typed (normalized);
	// required for registered, parcel and express items.
	Tracking string `json:"tracking,omitempty"`
	Unit     string `json:"unit"`
	// Recipient is the name on the item (optional); PersonID, optional,
	// names a resident (past or present) of the unit. A recipient written
	// exactly as a resident's name is matched to them.
	Recipient string `json:"recipient,omitempty"`
	PersonID  int64  `json:"person_id,omitempty"`
	// Condition is ok or damaged; damaged needs a note and the courier's
	// countersignature.
	Condition     string `json:"condition"`
	DamageNote    string `json:"damage_note,omitempty"`
	Countersigned bool   `json:"countersigned,omitempty"`
	// Storage is shelf (with Slot, e.g. "A-3") or locker (then
	// PlaceInLocker assigns a door).
	Storage string `json:"storage"`
	Slot    string `json:"slot,omitempty"`
}

// Register records an incoming item and queues its arrival notice, in one
// transaction. The item gets a number of the day (20261120-001). A
// tracking number already waiting is refused (tracking_duplicate). An
// item for a resident who moved out (or a unit whose residents all moved
// out) is held for the moved-out period.
func (s *Service) Register(ctx context.Context, in RegisterInput) (Item, error) {
	a, err := staff(ctx)
	if err != nil {
		return Item{}, err
	}
	st, err := s.Settings(ctx)
	if err != nil {
		return Item{}, err
	}
	var tracking *string
	if err := s.checkRegister(&in, st, &tracking); err != nil {
		return Item{}, err
	}
	var out Item
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		u, err := s.unit(ctx, tx, in.Unit)
		if err != nil {
			return err
		}
		personID, hold, err := s.recipient(ctx, tx, u.id, in.Recipient, in.PersonID)
		if err != nil {
			return err
		}
		now := s.now()
		day := s.day(now)
		var n int
		if err := tx.Get(ctx, &n, `INSERT INTO mail_counters (site_id, day, last_number) VALUES (?, ?, 1)
			ON CONFLICT (site_id, day) DO UPDATE SET last_number = mail_counters.last_number + 1 RETURNING last_number`, s.site.ID, day); err != nil {
			return fmt.Errorf("mailroom: item number: %w", err)
		}
		number := fmt.Sprintf("%s-%03d", strings.ReplaceAll(day, "-", ""), n)
		id, err := tx.Insert(ctx, `INSERT INTO mail_items (site_id, number, item_type, carrier, tracking, unit_id, recipient, person_id,
			item_condition, damage_note, countersigned, storage, slot, needs_signature, hold, state, registered_on, registered_at,
			registered_by, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'waiting', ?, ?, ?, ?) RETURNING id`,
			s.site.ID, number, in.Type, in.Carrier, tracking, u.id, in.Recipient, personID, in.Condition, in.DamageNote, in.Countersigned,
			in.Storage, in.Slot, st.NeedsSignature(in.Type), hold, day, now, a.Name, now)
		if store.IsUnique(err) {
			return fault.Conflict("tracking", "tracking_duplicate")
		}
		if err != nil {
			return fmt.Errorf("mailroom: register: %w", err)
		}
		next := now
		if !urgent(in.Type) {
			next = now.Add(s.o.OrdinaryDelay)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mail_notifications (site_id, item_id, unit_id, kind, urgent, state, next_at, created_at, updated_at)
			VALUES (?, ?, ?, 'arrival', ?, 'queued', ?, ?, ?)`, s.site.ID, id, u.id, urgent(in.Type), next, now, now); err != nil {
			return fmt.Errorf("mailroom: queue notice: %w", err)
		}
		detail := in.Storage
		if in.Slot != "" {
			detail += " " + in.Slot
		}
		if err := s.event(ctx, tx, id, "registered", detail); err != nil {
			return err
		}
		out = Item{ID: id, Number: number, Type: in.Type, Carrier: in.Carrier, Tracking: tracking, UnitID: u.id, Unit: u.code,
			Recipient: in.Recipient, PersonID: personID, Condition: in.Condition, DamageNote: in.DamageNote, Countersigned: in.Countersigned,
			Storage: in.Storage, Slot: in.Slot, NeedsSignature: st.NeedsSignature(in.Type), Hold: hold, State: StateWaiting,
			RegisteredOn: day, RegisteredAt: now, RegisteredBy: a.Name, UpdatedAt: now}
		out.fill(st)
		tx.AfterCommit(s.wake(&s.noteWake))
		return auth.Record(ctx, tx, auth.Entry{Action: "mail_item.register", Entity: "mail_item", EntityID: id, After: out})
	})
	if err != nil {
		return Item{}, err
	}
	return out, nil
}

func (s *Service) checkRegister(in *RegisterInput, st Settings, tracking **string) error {
	var err error
	in.Type = strings.TrimSpace(in.Type)
	if !slices.Contains(Types, in.Type) {
		return fault.Invalid("type", "item_type_invalid")
	}
	if in.Carrier, err = text("carrier", in.Carrier, 40, fault.Invalid("carrier", "carrier_required")); err != nil {
		return err
	}
	in.Tracking = scanner.Normalize(in.Tracking)
	switch {
	case in.Tracking == "" && slices.Contains(trackedTypes, in.Type):
		return fault.Invalid("tracking", "tracking_required")
	case in.Tracking != "":
		if err := scanner.ValidTracking(in.Tracking); err != nil {
			return fault.Invalid("tracking", "tracking_invalid")
		}
		*tracking = &in.Tracking
	}
	if strings.TrimSpace(in.Unit) == "" {
		return fault.Invalid("unit", "unit_required")
	}
	if in.Recipient, err = text("recipient", in.Recipient, 40, nil); err != nil {
		return err
	}
	switch in.Condition {
	case ConditionOK:
		in.DamageNote, in.Countersigned = "", false
	case ConditionDamaged:
		if in.DamageNote, err = text("damage_note", in.DamageNote, 200, fault.Invalid("damage_note", "damage_note_required")); err != nil {
			return err
		}
		if !in.Countersigned {
			return fault.Invalid("countersigned", "countersign_required")
		}
	default:
		return fault.Invalid("condition", "condition_invalid")
	}
	switch in.Storage {
	case StorageShelf:
		if in.Slot, err = text("slot", in.Slot, 20, fault.Invalid("slot", "slot_required")); err != nil {
			return err
		}
	case StorageLocker:
		in.Slot = ""
		if s.locker == nil {
			return fault.Invalid("storage", "locker_unavailable")
		}
		if st.NeedsSignature(in.Type) {
			return fault.Invalid("storage", "locker_needs_signature")
		}
	default:
		return fault.Invalid("storage", "storage_invalid")
	}
	return nil
}

// recipient matches the recipient to a resident of the unit and picks the
// hold: moved_out when the person (or, with no person, every resident of
// the unit) has moved out.
func (s *Service) recipient(ctx context.Context, tx *store.Tx, unitID int64, name string, personID int64) (*int64, string, error) {
	var occ []struct {
		PersonID int64   `db:"person_id"`
		Name     string  `db:"name"`
		Out      *string `db:"moved_out_on"`
	}
	if err := tx.Select(ctx, &occ, `SELECT o.person_id, p.name, o.moved_out_on FROM occupancies o JOIN people p ON p.id = o.person_id
		WHERE o.unit_id = ? ORDER BY CASE WHEN o.moved_out_on IS NULL THEN 0 ELSE 1 END, o.id`, unitID); err != nil {
		return nil, "", fmt.Errorf("mailroom: residents: %w", err)
	}
	current := func(pid int64) bool {
		for _, o := range occ {
			if o.PersonID == pid && o.Out == nil {
				return true
			}
		}
		return false
	}
	if personID != 0 {
		for _, o := range occ {
			if o.PersonID == personID {
				if current(personID) {
					return &personID, HoldStandard, nil
				}
				return &personID, HoldMovedOut, nil
			}
		}
		return nil, "", fault.Invalid("person_id", "recipient_not_of_unit")
	}
	if name != "" {
		for _, o := range occ { // current residents first
			if o.Name == name {
				pid := o.PersonID
				if o.Out == nil {
					return &pid, HoldStandard, nil
				}
				return &pid, HoldMovedOut, nil
			}
		}
	}
	if len(occ) > 0 && occ[0].Out != nil { // nobody lives there any more
		return nil, HoldMovedOut, nil
	}
	return nil, HoldStandard, nil
}

// BatchResult is one item of RegisterBatch: the item, or why it was
// refused.
type BatchResult struct {
	Item Item  `json:"item"`
	Err  error `json:"-"`
}

// RegisterBatch registers items one after another, each in its own
// transaction (as the clerk scans them): one refused item does not stop
// the others.
func (s *Service) RegisterBatch(ctx context.Context, in []RegisterInput) []BatchResult {
	out := make([]BatchResult, len(in))
	for i, r := range in {
		out[i].Item, out[i].Err = s.Register(ctx, r)
	}
	return out
}

// waitingItem reads an item in tx for a change and checks it is waiting.
func (s *Service) waitingItem(ctx context.Context, tx *store.Tx, id int64) (Item, error) {
	it, err := s.item(ctx, tx, id)
	if err != nil {
		return it, err
	}
	if it.State != StateWaiting {
		return it, fault.Conflict("item", "item_not_waiting", "state", it.State)
	}
	return it, nil
}

// Shelve puts a waiting item that is not behind a locker door on a shelf
// slot (say no door was free, or its door did not open).
func (s *Service) Shelve(ctx context.Context, id int64, slot string) (Item, error) {
	if _, err := staff(ctx); err != nil {
		return Item{}, err
	}
	slot, err := text("slot", slot, 20, fault.Invalid("slot", "slot_required"))
	if err != nil {
		return Item{}, err
	}
	var out Item
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		out, err = s.changeWaiting(ctx, tx, id, "mail_item.shelve", "shelved", slot, func(before Item) error {
			if before.Door != nil {
				return fault.Conflict("item", "item_in_locker")
			}
			if _, err := tx.Exec(ctx, "UPDATE mail_items SET storage = 'shelf', slot = ?, attention = '', updated_at = ? WHERE id = ?", slot, s.now(), id); err != nil {
				return err
			}
			return s.revokeCode(ctx, tx, id)
		})
		return err
	})
	return out, err
}

// ConsentHold keeps a waiting item for the consent hold period (30 days
// by default, the most the SOP allows): the recipient asked for it. note
// says who consented and how.
func (s *Service) ConsentHold(ctx context.Context, id int64, note string) (Item, error) {
	if _, err := staff(ctx); err != nil {
		return Item{}, err
	}
	note, err := text("note", note, 200, fault.Invalid("note", "consent_note_required"))
	if err != nil {
		return Item{}, err
	}
	var out Item
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		out, err = s.changeWaiting(ctx, tx, id, "mail_item.consent_hold", "consent_hold", note, func(Item) error {
			_, err := tx.Exec(ctx, "UPDATE mail_items SET hold = 'consent', hold_note = ?, updated_at = ? WHERE id = ?", note, s.now(), id)
			return err
		})
		return err
	})
	return out, err
}

// changeWaiting changes a waiting item in tx: change (which may refuse,
// given the item as it was), then the event in its history and the audit
// row with the item before and after. It returns the item after.
func (s *Service) changeWaiting(ctx context.Context, tx *store.Tx, id int64, action, event, detail string, change func(before Item) error) (Item, error) {
	before, err := s.waitingItem(ctx, tx, id)
	if err != nil {
		return Item{}, err
	}
	if err := change(before); err != nil {
		return Item{}, err
	}
	if err := s.event(ctx, tx, id, event, detail); err != nil {
		return Item{}, err
	}
	after, err := s.item(ctx, tx, id)
	if err != nil {
		return Item{}, err
	}
	return after, auth.Record(ctx, tx, auth.Entry{Action: action, Entity: "mail_item", EntityID: id, Before: before, After: after})
}

// errRetry asks a transaction to run again (a door taken meanwhile).
var errRetry = errors.New("mailroom: retry")
