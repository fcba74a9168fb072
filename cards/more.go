package cards

import (
	"context"
	"fmt"
	"strings"
	"time"

	"onecard/estate"
	"onecard/fault"
	"onecard/fleet/proto"
	"onecard/store"
)

// WorkHours is the schedule of contractors' cards: Monday to Saturday,
// 08:00 to 18:00, site time. The fleet's site configuration defines it
// (WorkHoursSegments).
const WorkHours = "workhours"

// WorkHoursSegments defines WorkHours for the fleet.
var WorkHoursSegments = []proto.Segment{{Days: "123456", From: "08:00", To: "18:00"}}

// OtherInput is a card for someone who does not live here: a contractor
// (type temporary, e.g. a renovation worker at a unit: that unit's
// building, during working hours, until an end date) or a member of staff
// (type staff: every zone given, at all hours, until an end date).
type OtherInput struct {
	Type   string             `json:"type"` // temporary or staff
	Person estate.PersonInput `json:"person"`
	Unit   string             `json:"unit"`   // temporary: the unit worked on
	Zones  []string           `json:"zones"`  // staff: the zones opened
	Groups []string           `json:"groups"` // access groups added
	Until  string             `json:"until"`  // last valid day
	Note   string             `json:"note"`
}

// MaxTemporaryDays is the longest a contractor's card may run.
const MaxTemporaryDays = 366

// ApplyOther records an application for a contractor's or staff card.
// A contractor's card needs an end date within a year and a handed-over
// unit; it opens that unit's building during working hours. No fee is
// charged (contractors' cards are the estate's).
func (r *Register) ApplyOther(ctx context.Context, in OtherInput) (Record, error) {
	in.Note = strings.TrimSpace(in.Note)
	today := r.today()
	until, err := time.ParseInLocation(time.DateOnly, strings.TrimSpace(in.Until), r.loc)
	switch {
	case err != nil:
		return Record{}, fault.Invalid("until", "end_date_required")
	case until.Format(time.DateOnly) < today:
		return Record{}, fault.Invalid("until", "end_date_past")
	case len([]rune(in.Note)) > 200:
		return Record{}, fault.Invalid("note", "note_too_long", "max", 200)
	}
	var rights []Right
	var unitID *int64
	var unitCode string
	switch in.Type {
	case "temporary":
		if until.Sub(r.now().In(r.loc)) > MaxTemporaryDays*24*time.Hour {
			return Record{}, fault.Invalid("until", "end_date_too_far")
		}
		unit, err := r.estate.Unit(ctx, in.Unit)
		if err != nil {
			return Record{}, err
		}
		if unit.HandoverDate == nil || *unit.HandoverDate > today {
			return Record{}, fault.Invalid("unit", "unit_not_handed_over")
		}
		unitID, unitCode = &unit.ID, unit.Code
		rights = []Right{{fmt.Sprintf("b%d", unit.Building), WorkHours}}
	case "staff":
		if len(in.Zones) == 0 && len(in.Groups) == 0 {
			return Record{}, fault.Invalid("zones", "zones_required")
		}
		for _, z := range in.Zones {
			if z = strings.TrimSpace(z); !proto.ValidID(z) {
				return Record{}, fault.Invalid("zones", "rights_invalid", "right", z)
			}
			rights = append(rights, Right{z, "always"})
		}
	default:
		return Record{}, fault.Invalid("type", "card_type_invalid")
	}
	if rights, err = r.withGroups(ctx, rights, in.Groups); err != nil {
		return Record{}, err
	}
	p, err := r.estate.FindOrCreatePerson(ctx, in.Person)
	if err != nil {
		return Record{}, err
	}
	var c Record
	err = r.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		c, err = r.createFor(ctx, tx, Record{PersonID: p.ID, Type: in.Type, ValidFrom: today, ValidUntil: until.Format(time.DateOnly),
			Note: in.Note, Rights: rights}, unitID, unitCode, false, Policy{})
		return err
	})
	return c, err
}

// Expiring lists the cards in use whose validity ends within days, soonest
// first (for reminders: the readers stop them by themselves).
func (r *Register) Expiring(ctx context.Context, days int) ([]Record, error) {
	if days < 1 || days > 366 {
		days = 30
	}
	until := r.now().In(r.loc).AddDate(0, 0, days).Format(time.DateOnly)
	out := []Record{}
	err := r.db.Select(ctx, &out, "SELECT "+cardCols+cardFrom+` WHERE c.site_id = ? AND c.state IN ('active', 'blocked')
		AND c.valid_until <= ? ORDER BY c.valid_until, c.number`, r.site.ID, until)
	return out, err
}

// UnitCount is one unit's cards, counted for the reconciliation.
type UnitCount struct {
	Unit     string `db:"unit" json:"unit"`
	Issued   int    `db:"issued" json:"issued"`
	Active   int    `db:"active" json:"active"`
	Blocked  int    `db:"blocked" json:"blocked"`
	Returned int    `db:"returned" json:"returned"`
	Other    int    `db:"other" json:"other"` // replaced, damaged, cancelled
}

// Reconciliation is the quarterly reconciliation (SOP §1): cards issued,
// active and returned per unit, and the cards still in use of people who
// no longer live where their card says.
type Reconciliation struct {
	Units   []UnitCount `json:"units"`
	Leavers []Record    `json:"leavers"`
}

// Reconcile counts the register.
func (r *Register) Reconcile(ctx context.Context) (Reconciliation, error) {
	out := Reconciliation{Units: []UnitCount{}, Leavers: []Record{}}
	err := r.db.Select(ctx, &out.Units, `SELECT u.code AS unit, SUM(CASE WHEN c.issued_at IS NOT NULL THEN 1 ELSE 0 END) AS issued,
		SUM(CASE WHEN c.state = 'active' THEN 1 ELSE 0 END) AS active, SUM(CASE WHEN c.state = 'blocked' THEN 1 ELSE 0 END) AS blocked,
		SUM(CASE WHEN c.state = 'returned' THEN 1 ELSE 0 END) AS returned,
		SUM(CASE WHEN c.state IN ('replaced', 'damaged', 'cancelled') THEN 1 ELSE 0 END) AS other
		FROM cards c JOIN units u ON u.id = c.unit_id WHERE c.site_id = ? GROUP BY u.code ORDER BY u.code`, r.site.ID)
	if err != nil {
		return out, err
	}
	err = r.db.Select(ctx, &out.Leavers, "SELECT "+cardCols+cardFrom+` WHERE c.site_id = ? AND c.state IN ('applied', 'active', 'blocked')
		AND c.type IN ('owner', 'family', 'tenant') AND NOT EXISTS (SELECT 1 FROM occupancies o WHERE o.unit_id = c.unit_id
		AND o.person_id = c.person_id AND o.moved_out_on IS NULL) ORDER BY u.code, c.number`, r.site.ID)
	return out, err
}

// PersonCards lists a person's cards in use (for the move-out: each is
// returned or cancelled).
func (r *Register) PersonCards(ctx context.Context, personID int64) ([]Record, error) {
	out := []Record{}
	err := r.db.Select(ctx, &out, "SELECT "+cardCols+cardFrom+` WHERE c.site_id = ? AND c.person_id = ?
		AND c.state IN ('applied', 'active', 'blocked') ORDER BY c.number`, r.site.ID, personID)
	return out, err
}

// ByUID returns the card in use (active or blocked) with a UID, as a
// reader reads it ("04A23B1C").
func (r *Register) ByUID(ctx context.Context, uid string) (Record, error) {
	var c Record
	err := r.db.Get(ctx, &c, "SELECT "+cardCols+cardFrom+" WHERE c.site_id = ? AND c.uid = ? AND c.state IN ('active', 'blocked')",
		r.site.ID, strings.ToUpper(strings.TrimSpace(uid)))
	if store.IsNoRows(err) {
		return c, fault.NotFound("card_not_found")
	}
	return c, err
}
