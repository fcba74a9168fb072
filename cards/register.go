package cards

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/devices"
	"onecard/estate"
	"onecard/fault"
	"onecard/fleet"
	"onecard/fleet/proto"
	"onecard/store"
)

// Register is the site's one-card register: applications, issuing on the
// desk encoder, loss, unblocking, replacement and return (SOP §1). Every
// step is a card event and an audit row in the transaction that makes it,
// and every change of what a card opens goes to the readers through the
// fleet's whitelist changes in the same transaction.
type Register struct {
	db      *store.DB
	site    estate.Site
	loc     *time.Location
	now     func() time.Time
	estate  *estate.Service
	billing *billing.Service
	fleet   *fleet.Service
	station *Station
	keys    Keys
}

// RegisterDeps are what the register works with. Station may be nil (no
// encoder: cards can be applied for, not issued).
type RegisterDeps struct {
	DB      *store.DB
	Estate  *estate.Service
	Billing *billing.Service
	Fleet   *fleet.Service
	Station *Station
	Keys    Keys
}

// OpenRegister opens the register of the estate's site.
func OpenRegister(ctx context.Context, d RegisterDeps) (*Register, error) {
	site := d.Estate.Site()
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return nil, err
	}
	r := &Register{db: d.DB, site: site, loc: loc, now: func() time.Time { return time.Now().UTC() }, estate: d.Estate,
		billing: d.Billing, fleet: d.Fleet, station: d.Station, keys: d.Keys}
	if _, err := d.DB.Exec(ctx, "INSERT INTO card_policy (site_id, updated_at) VALUES (?, ?) ON CONFLICT (site_id) DO NOTHING", site.ID, r.now()); err != nil {
		return nil, fmt.Errorf("cards: policy: %w", err)
	}
	return r, nil
}

// SetClock replaces the clock (tests).
func (r *Register) SetClock(now func() time.Time) { r.now = now }

func (r *Register) today() string { return r.now().In(r.loc).Format(time.DateOnly) }

// Policy is the site's card policy (SOP §1, configurable).
type Policy struct {
	FreePerHousehold int   `db:"free_per_household" json:"free_per_household"`
	MaxPerHousehold  int   `db:"max_per_household" json:"max_per_household"`
	FeeFen           int64 `db:"fee_fen" json:"fee_fen"`
	DepositOn        bool  `db:"deposit_on" json:"deposit_on"`
	DepositFen       int64 `db:"deposit_fen" json:"deposit_fen"`
	OwnerMonths      int   `db:"owner_months" json:"owner_months"`
}

// Policy returns the site's card policy.
func (r *Register) Policy(ctx context.Context) (Policy, error) {
	var p Policy
	err := r.db.Get(ctx, &p, `SELECT free_per_household, max_per_household, fee_fen, deposit_on, deposit_fen, owner_months
		FROM card_policy WHERE site_id = ?`, r.site.ID)
	return p, err
}

// SavePolicy changes the site's card policy.
func (r *Register) SavePolicy(ctx context.Context, p Policy) error {
	switch {
	case p.FreePerHousehold < 0 || p.FreePerHousehold > 20:
		return fault.Invalid("free_per_household", "policy_invalid")
	case p.MaxPerHousehold < 1 || p.MaxPerHousehold > 50 || p.MaxPerHousehold < p.FreePerHousehold:
		return fault.Invalid("max_per_household", "policy_invalid")
	case p.FeeFen < 0 || p.FeeFen > 100_000:
		return fault.Invalid("fee_fen", "policy_invalid")
	case p.DepositFen < 0 || p.DepositFen > 1_000_000:
		return fault.Invalid("deposit_fen", "policy_invalid")
	case p.OwnerMonths < 1 || p.OwnerMonths > 120:
		return fault.Invalid("owner_months", "policy_invalid")
	}
	return r.db.Tx(ctx, func(tx *store.Tx) error {
		before, err := r.Policy(ctx)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE card_policy SET free_per_household = ?, max_per_household = ?, fee_fen = ?, deposit_on = ?,
			deposit_fen = ?, owner_months = ?, updated_at = ? WHERE site_id = ?`, p.FreePerHousehold, p.MaxPerHousehold, p.FeeFen,
			p.DepositOn, p.DepositFen, p.OwnerMonths, r.now(), r.site.ID); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "card_policy.update", Entity: "site", EntityID: r.site.ID, Before: before, After: p})
	})
}

// Record is a card in the register.
type Record struct {
	ID            int64      `db:"id" json:"id"`
	Number        int64      `db:"number" json:"number"`
	UID           *string    `db:"uid" json:"uid,omitempty"`
	PersonID      int64      `db:"person_id" json:"person_id"`
	Holder        string     `db:"holder" json:"holder"`
	Unit          *string    `db:"unit" json:"unit,omitempty"`
	Type          string     `db:"type" json:"type"`
	State         string     `db:"state" json:"state"`
	ValidFrom     string     `db:"valid_from" json:"valid_from"`
	ValidUntil    string     `db:"valid_until" json:"valid_until"`
	Replaces      *int64     `db:"replaces" json:"replaces,omitempty"`
	FeeBillID     *int64     `db:"fee_bill_id" json:"fee_bill_id,omitempty"`
	DepositBillID *int64     `db:"deposit_bill_id" json:"deposit_bill_id,omitempty"`
	Note          string     `db:"note" json:"note,omitempty"`
	IssuedAt      *time.Time `db:"issued_at" json:"issued_at,omitempty"`
	Version       int        `db:"version" json:"version"`
	Rights        []Right    `db:"-" json:"rights"`
}

// Right is a zone a card opens, on a schedule.
type Right struct {
	Zone  string `db:"zone" json:"zone"`
	Sched string `db:"sched" json:"sched"`
}

const cardCols = `c.id, c.number, c.uid, c.person_id, p.name AS holder, u.code AS unit, c.type, c.state, c.valid_from, c.valid_until,
	c.replaces, c.fee_bill_id, c.deposit_bill_id, c.note, c.issued_at, c.version`
const cardFrom = ` FROM cards c JOIN people p ON p.id = c.person_id LEFT JOIN units u ON u.id = c.unit_id`

func (r *Register) card(ctx context.Context, q store.Q, id int64) (Record, error) {
	var c Record
	err := q.Get(ctx, &c, "SELECT "+cardCols+cardFrom+" WHERE c.id = ? AND c.site_id = ?", id, r.site.ID)
	if store.IsNoRows(err) {
		return c, fault.NotFound("card_not_found")
	}
	if err != nil {
		return c, err
	}
	c.Rights = []Right{}
	err = q.Select(ctx, &c.Rights, "SELECT zone, sched FROM card_rights WHERE card_id = ? ORDER BY zone", id)
	return c, err
}

// Record returns a card with its rights.
func (r *Register) Card(ctx context.Context, id int64) (Record, error) { return r.card(ctx, r.db, id) }

// UnitCards lists a unit's cards, those in use first.
func (r *Register) UnitCards(ctx context.Context, unit string) ([]Record, error) {
	uc, err := estate.ParseUnitCode(unit)
	if err != nil {
		return nil, err
	}
	out := []Record{}
	err = r.db.Select(ctx, &out, "SELECT "+cardCols+cardFrom+` WHERE c.site_id = ? AND u.code = ?
		ORDER BY CASE WHEN c.state IN ('applied', 'active', 'blocked') THEN 0 ELSE 1 END, c.number`, r.site.ID, uc.String())
	return out, err
}

// Event is a step in a card's life.
type Event struct {
	Action string    `db:"action" json:"action"`
	Note   string    `db:"note" json:"note,omitempty"`
	Staff  string    `db:"staff_name" json:"staff"`
	At     time.Time `db:"at" json:"at"`
}

// Events returns a card's register entries, oldest first.
func (r *Register) Events(ctx context.Context, id int64) ([]Event, error) {
	out := []Event{}
	err := r.db.Select(ctx, &out, `SELECT e.action, e.note, e.staff_name, e.at FROM card_events e JOIN cards c ON c.id = e.card_id
		WHERE e.card_id = ? AND c.site_id = ? ORDER BY e.id`, id, r.site.ID)
	return out, err
}

// event records a step in the register and the audit log.
func (r *Register) event(ctx context.Context, tx *store.Tx, c Record, action, note string, before any) error {
	a := auth.ActorFrom(ctx)
	var staffID *int64
	if a.Kind == "staff" {
		staffID = &a.ID
	}
	if _, err := tx.Exec(ctx, "INSERT INTO card_events (card_id, action, note, staff_id, staff_name, at) VALUES (?, ?, ?, ?, ?, ?)",
		c.ID, action, note, staffID, a.Name, r.now()); err != nil {
		return err
	}
	return auth.Record(ctx, tx, auth.Entry{Action: "card." + action, Entity: "card", EntityID: c.ID, Before: before, After: c})
}

// ApplyInput is an application for a card for a resident of a unit.
type ApplyInput struct {
	Unit     string `json:"unit"`
	PersonID int64  `json:"person_id"`
	// Carpark adds the car park (a household renting a space).
	Carpark bool `json:"carpark"`
	// Groups adds access groups on top of the type's defaults.
	Groups []string `json:"groups,omitempty"`
	Note   string   `json:"note"`
}

// Apply records an application after the checks of SOP §1: the unit is
// handed over; the person lives there now as owner, family member
// confirmed by the owner, or tenant with a lease running and the owner's
// consent (all recorded by the directory at move-in); the household is
// under its maximum. The card fee is charged beyond the household's free
// cards, and the deposit where the site takes one, as bills with the card.
func (r *Register) Apply(ctx context.Context, in ApplyInput) (Record, error) {
	in.Note = strings.TrimSpace(in.Note)
	if len([]rune(in.Note)) > 200 {
		return Record{}, fault.Invalid("note", "note_too_long", "max", 200)
	}
	unit, err := r.estate.Unit(ctx, in.Unit)
	if err != nil {
		return Record{}, err
	}
	today := r.today()
	if unit.HandoverDate == nil || *unit.HandoverDate > today {
		return Record{}, fault.Invalid("unit", "unit_not_handed_over")
	}
	var occ *estate.Occupancy
	for i, o := range unit.Occupancies {
		if o.PersonID == in.PersonID && o.Current() {
			occ = &unit.Occupancies[i]
			break
		}
	}
	if occ == nil {
		return Record{}, fault.Invalid("person_id", "not_resident")
	}
	policy, err := r.Policy(ctx)
	if err != nil {
		return Record{}, err
	}
	until := r.now().In(r.loc).AddDate(0, policy.OwnerMonths, 0).Format(time.DateOnly)
	if occ.Role == estate.Tenant {
		if occ.LeaseEnd == nil || *occ.LeaseEnd < today {
			return Record{}, fault.Invalid("person_id", "lease_ended")
		}
		until = min(until, *occ.LeaseEnd) // a tenant's card ends with the lease
	}
	rights := []Right{{"gate", "always"}, {fmt.Sprintf("b%d", unit.Building), "always"}, {fmt.Sprintf("b%d-lift", unit.Building), "always"}}
	if in.Carpark {
		rights = append(rights, Right{"carpark", "always"})
	}
	if rights, err = r.withGroups(ctx, rights, in.Groups); err != nil {
		return Record{}, err
	}
	var c Record
	err = r.db.Tx(ctx, func(tx *store.Tx) error {
		var inUse int
		if err := tx.Get(ctx, &inUse, "SELECT COUNT(*) FROM cards WHERE unit_id = ? AND state IN ('applied', 'active', 'blocked')", unit.ID); err != nil {
			return err
		}
		if inUse >= policy.MaxPerHousehold {
			return fault.Conflict("unit", "household_card_limit", "max", policy.MaxPerHousehold)
		}
		var issued int // cards the household ever had, for the free ones
		if err := tx.Get(ctx, &issued, "SELECT COUNT(*) FROM cards WHERE unit_id = ? AND replaces IS NULL AND state <> 'cancelled'", unit.ID); err != nil {
			return err
		}
		var err error
		c, err = r.create(ctx, tx, Record{PersonID: in.PersonID, Type: occ.Role, ValidFrom: today, ValidUntil: until, Note: in.Note, Rights: rights},
			unit.ID, unit.Code, issued >= policy.FreePerHousehold, policy)
		return err
	})
	return c, err
}

// create inserts a resident's card (state applied) with its rights, fee
// and deposit.
func (r *Register) create(ctx context.Context, tx *store.Tx, c Record, unitID int64, unitCode string, fee bool, policy Policy) (Record, error) {
	return r.createFor(ctx, tx, c, &unitID, unitCode, fee, policy)
}

// createFor is create for any card; unitID is nil for staff.
func (r *Register) createFor(ctx context.Context, tx *store.Tx, c Record, unitID *int64, unitCode string, fee bool, policy Policy) (Record, error) {
	var no int64
	if err := tx.Get(ctx, &no, `INSERT INTO card_counters (site_id, last_no) VALUES (?, 1)
		ON CONFLICT (site_id) DO UPDATE SET last_no = card_counters.last_no + 1 RETURNING last_no`, r.site.ID); err != nil {
		return Record{}, err
	}
	c.Number = no
	ref := fmt.Sprintf("card-%d", no)
	if fee && policy.FeeFen > 0 {
		b, err := r.billing.AddBillTx(ctx, tx, billing.BillInput{Unit: unitCode, Item: "card_fee", Period: ref, AmountFen: policy.FeeFen,
			Description: fmt.Sprintf("门禁卡 %d", no)})
		if err != nil {
			return Record{}, err
		}
		c.FeeBillID = &b.ID
	}
	if policy.DepositOn && policy.DepositFen > 0 && c.Replaces == nil && unitID != nil {
		b, err := r.billing.AddBillTx(ctx, tx, billing.BillInput{Unit: unitCode, Item: "card_deposit", Period: ref, AmountFen: policy.DepositFen,
			Description: fmt.Sprintf("门禁卡 %d 押金", no)})
		if err != nil {
			return Record{}, err
		}
		c.DepositBillID = &b.ID
	}
	now := r.now()
	id, err := tx.Insert(ctx, `INSERT INTO cards (site_id, number, person_id, unit_id, type, state, valid_from, valid_until, replaces,
		fee_bill_id, deposit_bill_id, note, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 'applied', ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		r.site.ID, no, c.PersonID, unitID, c.Type, c.ValidFrom, c.ValidUntil, c.Replaces, c.FeeBillID, c.DepositBillID, c.Note, now, now)
	if err != nil {
		return Record{}, err
	}
	for _, rt := range c.Rights {
		if _, err := tx.Exec(ctx, "INSERT INTO card_rights (card_id, zone, sched) VALUES (?, ?, ?)", id, rt.Zone, rt.Sched); err != nil {
			return Record{}, err
		}
	}
	out, err := r.card(ctx, tx, id)
	if err != nil {
		return Record{}, err
	}
	return out, r.event(ctx, tx, out, "apply", c.Note, nil)
}

// entry is a card's whitelist entry: valid from the start of its first day
// to the end of its last, site time.
func (r *Register) entry(c Record, sched string, blocked bool) (proto.Entry, error) {
	from, err1 := time.ParseInLocation(time.DateOnly, c.ValidFrom, r.loc)
	until, err2 := time.ParseInLocation(time.DateOnly, c.ValidUntil, r.loc)
	if err1 != nil || err2 != nil || c.UID == nil {
		return proto.Entry{}, fmt.Errorf("cards: card %d: validity or UID", c.Number)
	}
	return proto.Entry{Card: *c.UID, No: uint64(c.Number), From: from.Unix(), Until: until.AddDate(0, 0, 1).Unix(), Sched: sched, Blocked: blocked}, nil
}

// publish puts (or deletes) the card on the whitelist of each zone it
// opens, in tx.
func (r *Register) publish(ctx context.Context, tx *store.Tx, c Record, op string, blocked bool) error {
	for _, rt := range c.Rights {
		e, err := r.entry(c, rt.Sched, blocked)
		if err != nil {
			return err
		}
		o := proto.Op{Op: op, Entry: e}
		if op == "del" {
			o = proto.Op{Op: "del", Entry: proto.Entry{Card: e.Card}}
		}
		if _, err := r.fleet.Change(ctx, tx, rt.Zone, []proto.Op{o}); err != nil {
			return fmt.Errorf("cards: whitelist %s: %w", rt.Zone, err)
		}
	}
	tx.AfterCommit(r.fleet.Kick)
	return nil
}

// ErrNoEncoder is returned by Issue and Return without a desk encoder.
var ErrNoEncoder = fault.Invalid("encoder", "encoder_not_configured")

// Issue encodes an applied card on the blank card lying on the desk
// encoder, verifies it, registers its UID and sends it to every reader of
// its zones, in that order: if any step fails the card stays applied (not
// active) and the error says why; issuing again completes it.
func (r *Register) Issue(ctx context.Context, id int64) (Record, error) {
	c, err := r.Card(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if c.State != "applied" {
		return Record{}, fault.Conflict("card", "card_not_applied")
	}
	if r.station == nil {
		return Record{}, ErrNoEncoder
	}
	from, _ := time.ParseInLocation(time.DateOnly, c.ValidFrom, r.loc)
	until, _ := time.ParseInLocation(time.DateOnly, c.ValidUntil, r.loc)
	cred := Credential{SiteID: uint32(r.site.ID), Number: uint64(c.Number), Type: typeOf(c.Type), ValidFrom: from.UTC(), ValidUntil: until.AddDate(0, 0, 1).UTC()}
	var uid []byte
	err = r.station.Do(ctx, func(e *Encoder) error {
		var err error
		uid, err = e.Issue(ctx, cred, func(uid []byte) error {
			var n int
			if err := r.db.Get(ctx, &n, "SELECT COUNT(*) FROM cards WHERE site_id = ? AND uid = ? AND state IN ('active', 'blocked') AND id <> ?",
				r.site.ID, UID(uid).String(), id); err != nil {
				return err
			}
			if n > 0 {
				return fault.Conflict("card", "card_uid_in_use")
			}
			return nil
		})
		return err
	})
	if err != nil {
		return Record{}, encoderFault(err)
	}
	hexUID := strings.ToUpper(hex.EncodeToString(uid))
	err = r.db.Tx(ctx, func(tx *store.Tx) error {
		before := c
		a := auth.ActorFrom(ctx)
		var by *int64
		if a.Kind == "staff" {
			by = &a.ID
		}
		res, err := tx.Exec(ctx, `UPDATE cards SET uid = ?, state = 'active', issued_by = ?, issued_at = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND state = 'applied'`, hexUID, by, r.now(), r.now(), id)
		if store.IsUnique(err) {
			return fault.Conflict("card", "card_uid_in_use")
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.Conflict("card", "card_not_applied")
		}
		if c, err = r.card(ctx, tx, id); err != nil {
			return err
		}
		if err := r.publish(ctx, tx, c, "put", false); err != nil {
			return err
		}
		return r.event(ctx, tx, c, "issue", "UID "+hexUID, before)
	})
	return c, err
}

// encoderFault says what went wrong at the encoder in the clerk's terms.
func encoderFault(err error) error {
	if fe, ok := fault.As(err); ok {
		return fe
	}
	switch {
	case errors.Is(err, ErrNotConnected):
		return fault.Conflict("encoder", "encoder_not_connected")
	case errors.Is(err, ErrCardEncoded):
		return fault.Conflict("card", "card_not_blank")
	case errors.Is(err, ErrForeignCard):
		return fault.Conflict("card", "card_foreign")
	case errors.Is(err, devices.ErrNoCard):
		return fault.Conflict("card", "no_card_on_encoder")
	}
	return &fault.Error{Kind: fault.ErrConflict, Code: "encode_failed", Args: map[string]any{"reason": err.Error()}}
}

func typeOf(t string) Type {
	switch t {
	case "owner":
		return Owner
	case "family":
		return Family
	case "tenant":
		return Tenant
	case "staff":
		return Staff
	}
	return Temporary
}

// change moves a card from one of the states in from to state, publishes
// what that means to the readers, and records it.
func (r *Register) change(ctx context.Context, id int64, from []string, state, action, note string, publish func(tx *store.Tx, c Record) error) (Record, error) {
	note = strings.TrimSpace(note)
	if len([]rune(note)) > 200 {
		return Record{}, fault.Invalid("note", "note_too_long", "max", 200)
	}
	var c Record
	err := r.db.Tx(ctx, func(tx *store.Tx) error {
		before, err := r.card(ctx, tx, id)
		if err != nil {
			return err
		}
		ok := false
		for _, f := range from {
			ok = ok || before.State == f
		}
		if !ok {
			return fault.Conflict("card", "card_state", "state", before.State)
		}
		res, err := tx.Exec(ctx, "UPDATE cards SET state = ?, version = version + 1, updated_at = ? WHERE id = ? AND state = ?",
			state, r.now(), id, before.State)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.Conflict("card", "stale_version")
		}
		if c, err = r.card(ctx, tx, id); err != nil {
			return err
		}
		if publish != nil && c.UID != nil {
			if err := publish(tx, c); err != nil {
				return err
			}
		}
		return r.event(ctx, tx, c, action, note, before)
	})
	return c, err
}

// ReportLost (挂失) blocks a card at every reader of its zones at once.
func (r *Register) ReportLost(ctx context.Context, id int64, note string) (Record, error) {
	return r.change(ctx, id, []string{"active"}, "blocked", "lost", note, func(tx *store.Tx, c Record) error {
		return r.publish(ctx, tx, c, "put", true)
	})
}

// Unblock (解挂) lets a blocked card in again (the holder present).
func (r *Register) Unblock(ctx context.Context, id int64, note string) (Record, error) {
	return r.change(ctx, id, []string{"blocked"}, "active", "unblock", note, func(tx *store.Tx, c Record) error {
		return r.publish(ctx, tx, c, "put", false)
	})
}

// Cancel ends a card that is not at the desk (a resident who moved out
// without returning it): it is taken off every reader.
func (r *Register) Cancel(ctx context.Context, id int64, note string) (Record, error) {
	return r.change(ctx, id, []string{"applied", "active", "blocked"}, "cancelled", "cancel", note, func(tx *store.Tx, c Record) error {
		return r.publish(ctx, tx, c, "del", false)
	})
}

// Replace (补卡) makes a new card for a lost or damaged one: the old card
// stays blocked at the readers (it is marked replaced, or damaged when
// damaged is set), the new one is applied for with the same holder,
// rights and validity, and the card fee is charged (not for a card worn
// out naturally). The new card is then issued with Issue.
func (r *Register) Replace(ctx context.Context, id int64, damaged, fee bool, note string) (Record, error) {
	note = strings.TrimSpace(note)
	if len([]rune(note)) > 200 {
		return Record{}, fault.Invalid("note", "note_too_long", "max", 200)
	}
	if !damaged {
		fee = true // a replacement is always charged (SOP §1)
	}
	state, action := "replaced", "replace"
	if damaged {
		state, action = "damaged", "damaged"
	}
	policy, err := r.Policy(ctx)
	if err != nil {
		return Record{}, err
	}
	var nc Record
	err = r.db.Tx(ctx, func(tx *store.Tx) error {
		old, err := r.card(ctx, tx, id)
		if err != nil {
			return err
		}
		if old.State != "active" && old.State != "blocked" {
			return fault.Conflict("card", "card_state", "state", old.State)
		}
		unit := ""
		if old.Unit != nil {
			unit = *old.Unit
		}
		res, err := tx.Exec(ctx, "UPDATE cards SET state = ?, version = version + 1, updated_at = ? WHERE id = ? AND state = ?", state, r.now(), id, old.State)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.Conflict("card", "stale_version")
		}
		gone, err := r.card(ctx, tx, id)
		if err != nil {
			return err
		}
		if gone.UID != nil {
			if err := r.publish(ctx, tx, gone, "put", true); err != nil { // blocked for good
				return err
			}
		}
		if err := r.event(ctx, tx, gone, action, note, old); err != nil {
			return err
		}
		var unitID *int64
		if err := tx.Get(ctx, &unitID, "SELECT unit_id FROM cards WHERE id = ?", id); err != nil {
			return err
		}
		nc, err = r.createFor(ctx, tx, Record{PersonID: old.PersonID, Type: old.Type, ValidFrom: r.today(), ValidUntil: old.ValidUntil,
			Replaces: &old.ID, Note: note, Rights: old.Rights}, unitID, unit, fee && unitID != nil, policy)
		return err
	})
	return nc, err
}

// Return (退卡) takes a card back: the card on the encoder must be this
// one; it is wiped, taken off every reader and marked returned. A deposit
// is refunded through the books by the cashier (it needs a supervisor's
// approval there).
func (r *Register) Return(ctx context.Context, id int64, note string) (Record, error) {
	c, err := r.Card(ctx, id)
	if err != nil {
		return Record{}, err
	}
	if c.State != "active" && c.State != "blocked" {
		return Record{}, fault.Conflict("card", "card_state", "state", c.State)
	}
	if r.station == nil {
		return Record{}, ErrNoEncoder
	}
	err = r.station.Do(ctx, func(e *Encoder) error {
		on, err := e.Read(ctx)
		if err != nil {
			return err
		}
		if c.UID == nil || on.UID.String() != *c.UID {
			return fault.Conflict("card", "wrong_card_on_encoder", "uid", on.UID.String())
		}
		_, err = e.Wipe(ctx)
		return err
	})
	if err != nil {
		return Record{}, encoderFault(err)
	}
	return r.change(ctx, id, []string{"active", "blocked"}, "returned", "return", note, func(tx *store.Tx, c Record) error {
		return r.publish(ctx, tx, c, "del", false)
	})
}
