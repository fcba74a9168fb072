package estate

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// Service is the estate directory of one site.
type Service struct {
	db   *store.DB
	site Site
	loc  *time.Location
	now  func() time.Time
}

// Open ensures the site with code exists (creating it with name and time
// zone on first start) and returns its directory.
func Open(ctx context.Context, db *store.DB, code, name, tz string) (*Service, error) {
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("estate: time zone %q: %w", tz, err)
	}
	s := &Service{db: db, loc: loc, now: func() time.Time { return time.Now().UTC() }}
	err = db.Tx(ctx, func(tx *store.Tx) error {
		err := tx.Get(ctx, &s.site, "SELECT id, code, name, time_zone FROM sites WHERE code = ?", code)
		if err == nil {
			if s.site.TimeZone == tz {
				return nil
			}
			// The configured time zone wins, on the record.
			before := s.site
			s.site.TimeZone = tz
			if _, err := tx.Exec(ctx, "UPDATE sites SET time_zone = ? WHERE id = ?", tz, s.site.ID); err != nil {
				return err
			}
			return auth.Record(ctx, tx, auth.Entry{Action: "site.time_zone", Entity: "site", EntityID: s.site.ID, Before: before, After: s.site})
		}
		if !store.IsNoRows(err) {
			return err
		}
		id, err := tx.Insert(ctx, "INSERT INTO sites (code, name, time_zone, created_at) VALUES (?, ?, ?, ?) RETURNING id",
			code, name, tz, s.now())
		if err != nil {
			return err
		}
		s.site = Site{ID: id, Code: code, Name: name, TimeZone: tz}
		return auth.Record(ctx, tx, auth.Entry{Action: "site.create", Entity: "site", EntityID: id, After: s.site})
	})
	if err != nil {
		return nil, fmt.Errorf("estate: open site %s: %w", code, err)
	}
	return s, nil
}

// DB is the database the directory is kept in.
func (s *Service) DB() *store.DB { return s.db }

// Site returns the site this directory serves.
func (s *Service) Site() Site { return s.site }

// Today is the date at the site.
func (s *Service) Today() string { return s.now().In(s.loc).Format("2006-01-02") }

const unitCols = `u.id, u.code, b.number AS building, e.number AS entrance, u.floor, u.room, u.area_centi_m2,
	u.handover_date, u.version, u.created_at, u.updated_at`
const unitFrom = ` FROM units u JOIN entrances e ON e.id = u.entrance_id JOIN buildings b ON b.id = e.building_id`

// UnitInput creates or edits a unit. On edit the code cannot change and
// Version must be the one read.
type UnitInput struct {
	Code         string `json:"code"`
	Area         Area   `json:"area_m2"`
	HandoverDate string `json:"handover_date,omitempty"`
	Version      int    `json:"version,omitempty"`
}

func (in *UnitInput) normalize() (UnitCode, *string, error) {
	c, err := ParseUnitCode(in.Code)
	if err != nil {
		return c, nil, err
	}
	in.Code = c.String()
	if in.Area < 0 || in.Area > 100000_00 {
		return c, nil, fault.Invalid("area_m2", "area_invalid")
	}
	var hd *string
	if strings.TrimSpace(in.HandoverDate) != "" {
		d, err := ParseDate("handover_date", in.HandoverDate)
		if err != nil {
			return c, nil, err
		}
		hd = &d
	}
	return c, hd, nil
}

// CreateUnit adds a unit, and its building and entrance if they are new.
func (s *Service) CreateUnit(ctx context.Context, in UnitInput) (Unit, error) {
	var out Unit
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = s.createUnit(ctx, tx, in)
		return err
	})
	return out, err
}

func (s *Service) createUnit(ctx context.Context, tx *store.Tx, in UnitInput) (Unit, error) {
	c, hd, err := in.normalize()
	if err != nil {
		return Unit{}, err
	}
	entrance, err := s.entrance(ctx, tx, c.Building, c.Entrance)
	if err != nil {
		return Unit{}, err
	}
	now := s.now()
	id, err := tx.Insert(ctx, `INSERT INTO units (site_id, entrance_id, code, floor, room, area_centi_m2, handover_date, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, s.site.ID, entrance, in.Code, c.Floor, c.Room, in.Area, hd, now, now)
	if store.IsUnique(err) {
		return Unit{}, fault.Conflict("code", "unit_code_taken", "code", in.Code)
	}
	if err != nil {
		return Unit{}, fmt.Errorf("estate: create unit: %w", err)
	}
	var u Unit
	if err := tx.Get(ctx, &u, "SELECT "+unitCols+unitFrom+" WHERE u.id = ?", id); err != nil {
		return Unit{}, fmt.Errorf("estate: read unit: %w", err)
	}
	return u, auth.Record(ctx, tx, auth.Entry{Action: "unit.create", Entity: "unit", EntityID: id, After: u})
}

// entrance returns the id of a building's entrance, creating both as needed.
func (s *Service) entrance(ctx context.Context, tx *store.Tx, building, entrance int) (int64, error) {
	var bid int64
	err := tx.Get(ctx, &bid, "SELECT id FROM buildings WHERE site_id = ? AND number = ?", s.site.ID, building)
	if store.IsNoRows(err) {
		bid, err = tx.Insert(ctx, "INSERT INTO buildings (site_id, number, name) VALUES (?, ?, ?) RETURNING id",
			s.site.ID, building, fmt.Sprintf("%d号楼", building))
	}
	if err != nil {
		return 0, fmt.Errorf("estate: building %d: %w", building, err)
	}
	var eid int64
	err = tx.Get(ctx, &eid, "SELECT id FROM entrances WHERE building_id = ? AND number = ?", bid, entrance)
	if store.IsNoRows(err) {
		eid, err = tx.Insert(ctx, "INSERT INTO entrances (building_id, number) VALUES (?, ?) RETURNING id", bid, entrance)
	}
	if err != nil {
		return 0, fmt.Errorf("estate: entrance %d-%d: %w", building, entrance, err)
	}
	return eid, nil
}

// UpdateUnit edits a unit's area and handover date. A stale Version (the
// unit changed since it was read) is a conflict and changes nothing.
func (s *Service) UpdateUnit(ctx context.Context, code string, in UnitInput) (Unit, error) {
	in.Code = code
	_, hd, err := in.normalize()
	if err != nil {
		return Unit{}, err
	}
	var out Unit
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		before, err := s.unit(ctx, tx, in.Code)
		if err != nil {
			return err
		}
		if in.Version != before.Version {
			return fault.Conflict("version", "stale_version")
		}
		res, err := tx.Exec(ctx, `UPDATE units SET area_centi_m2 = ?, handover_date = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND version = ?`, in.Area, hd, s.now(), before.ID, in.Version)
		if err != nil {
			return fmt.Errorf("estate: update unit: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.Conflict("version", "stale_version")
		}
		if out, err = s.unit(ctx, tx, in.Code); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "unit.update", Entity: "unit", EntityID: before.ID, Before: before, After: out})
	})
	return out, err
}

func (s *Service) unit(ctx context.Context, q store.Q, code string) (Unit, error) {
	c, err := ParseUnitCode(code)
	if err != nil {
		return Unit{}, err
	}
	var u Unit
	err = q.Get(ctx, &u, "SELECT "+unitCols+unitFrom+" WHERE u.site_id = ? AND u.code = ?", s.site.ID, c.String())
	if store.IsNoRows(err) {
		return Unit{}, fault.NotFound("unit_not_found")
	}
	if err != nil {
		return Unit{}, fmt.Errorf("estate: unit %s: %w", code, err)
	}
	return u, nil
}

// UnitDetail is a unit with everyone who lives or lived there.
type UnitDetail struct {
	Unit
	Occupancies []Occupancy `json:"occupancies"`
}

// Unit returns a unit and its occupancies, current ones first.
func (s *Service) Unit(ctx context.Context, code string) (UnitDetail, error) {
	u, err := s.unit(ctx, s.db, code)
	if err != nil {
		return UnitDetail{}, err
	}
	occ, err := s.occupancies(ctx, s.db, "o.unit_id = ?", u.ID)
	if err != nil {
		return UnitDetail{}, err
	}
	return UnitDetail{Unit: u, Occupancies: occ}, nil
}

const occCols = `o.id, o.unit_id, u.code AS unit_code, o.person_id, p.name, p.phone, p.id_type, p.id_last4, o.role,
	o.moved_in_on, o.moved_out_on, o.confirmed_by, cp.name AS confirmed_name, o.lease_start, o.lease_end,
	o.consent_method, o.consent_note`
const occFrom = ` FROM occupancies o JOIN units u ON u.id = o.unit_id JOIN people p ON p.id = o.person_id
	LEFT JOIN people cp ON cp.id = o.confirmed_by`

func (s *Service) occupancies(ctx context.Context, q store.Q, where string, args ...any) ([]Occupancy, error) {
	out := []Occupancy{}
	err := q.Select(ctx, &out, "SELECT "+occCols+occFrom+" WHERE "+where+
		` ORDER BY CASE WHEN o.moved_out_on IS NULL THEN 0 ELSE 1 END,
		CASE o.role WHEN 'owner' THEN 0 WHEN 'family' THEN 1 ELSE 2 END, o.moved_in_on, o.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("estate: occupancies: %w", err)
	}
	return out, nil
}

// UnitSummary is a unit with its current residents, as search lists it.
type UnitSummary struct {
	Unit
	Residents []Occupancy `json:"residents"`
}

// Query asks for units. Q matches a unit code (prefix, "3-2" finds the
// whole entrance), a resident's name (part) or phone (part). Only current
// residents are matched by name or phone.
type Query struct {
	Q        string
	Building int
	Limit    int
	Offset   int
}

// Search lists units matching q, by code, with their current residents.
func (s *Service) Search(ctx context.Context, q Query) ([]UnitSummary, int, error) {
	if q.Limit <= 0 || q.Limit > 200 {
		q.Limit = 50
	}
	if q.Offset < 0 {
		q.Offset = 0
	}
	where := []string{"u.site_id = ?"}
	args := []any{s.site.ID}
	if q.Building > 0 {
		where = append(where, "b.number = ?")
		args = append(args, q.Building)
	}
	text := normalizeDashes(strings.TrimSpace(norm.NFKC.String(q.Q)))
	if text != "" {
		if len([]rune(text)) > 50 {
			return nil, 0, fault.Invalid("q", "query_too_long")
		}
		if strings.Trim(text, "0123456789-") == "" && strings.Contains(text, "-") {
			if c, err := ParseUnitCode(text); err == nil {
				text = c.String() // "03-2-1801" finds 3-2-1801
			}
			// A unit code or its start: "3-2-1801", "3-2", "3-".
			prefix := strings.TrimSuffix(store.Like(text), "%")[1:]
			if !strings.HasSuffix(text, "-") && strings.Count(text, "-") < 2 {
				prefix += "-"
			}
			where = append(where, "(u.code = ? OR u.code LIKE ? ESCAPE '\\')")
			args = append(args, text, prefix+"%")
		} else {
			like := store.Like(text)
			phone := store.Like(strings.ReplaceAll(text, " ", ""))
			where = append(where, `(u.id IN (SELECT o.unit_id FROM occupancies o JOIN people p ON p.id = o.person_id
				WHERE o.moved_out_on IS NULL AND (p.name LIKE ? ESCAPE '\' OR p.phone LIKE ? ESCAPE '\'))
				OR u.room = ?)`)
			args = append(args, like, phone, text)
		}
	}
	w := " WHERE " + strings.Join(where, " AND ")
	var total int
	if err := s.db.Get(ctx, &total, "SELECT COUNT(*)"+unitFrom+w, args...); err != nil {
		return nil, 0, fmt.Errorf("estate: count units: %w", err)
	}
	var units []Unit
	err := s.db.Select(ctx, &units, "SELECT "+unitCols+unitFrom+w+
		fmt.Sprintf(" ORDER BY b.number, e.number, u.floor, u.room LIMIT %d OFFSET %d", q.Limit, q.Offset), args...)
	if err != nil {
		return nil, 0, fmt.Errorf("estate: search units: %w", err)
	}
	out := make([]UnitSummary, len(units))
	if len(units) == 0 {
		return out, total, nil
	}
	ids := make([]any, len(units))
	idx := map[int64]int{}
	for i, u := range units {
		out[i] = UnitSummary{Unit: u, Residents: []Occupancy{}}
		ids[i] = u.ID
		idx[u.ID] = i
	}
	occ, err := s.occupancies(ctx, s.db, "o.moved_out_on IS NULL AND o.unit_id IN (?"+strings.Repeat(", ?", len(ids)-1)+")", ids...)
	if err != nil {
		return nil, 0, err
	}
	for _, o := range occ {
		i := idx[o.UnitID]
		out[i].Residents = append(out[i].Residents, o)
	}
	return out, total, nil
}

// Person returns one person.
func (s *Service) Person(ctx context.Context, id int64) (Person, []Occupancy, error) {
	p, err := s.person(ctx, s.db, id)
	if err != nil {
		return p, nil, err
	}
	occ, err := s.occupancies(ctx, s.db, "o.person_id = ?", id)
	return p, occ, err
}

const personCols = "id, name, phone, id_type, id_last4, version, created_at, updated_at"

func (s *Service) person(ctx context.Context, q store.Q, id int64) (Person, error) {
	var p Person
	err := q.Get(ctx, &p, "SELECT "+personCols+" FROM people WHERE site_id = ? AND id = ?", s.site.ID, id)
	if store.IsNoRows(err) {
		return p, fault.NotFound("person_not_found")
	}
	if err != nil {
		return p, fmt.Errorf("estate: person %d: %w", id, err)
	}
	return p, nil
}

func (s *Service) createPerson(ctx context.Context, tx *store.Tx, in PersonInput) (Person, error) {
	if err := in.Normalize(); err != nil {
		return Person{}, err
	}
	now := s.now()
	id, err := tx.Insert(ctx, `INSERT INTO people (site_id, name, phone, id_type, id_last4, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, s.site.ID, in.Name, in.Phone, in.IDType, in.IDLast4, now, now)
	if err != nil {
		return Person{}, fmt.Errorf("estate: create person: %w", err)
	}
	p, err := s.person(ctx, tx, id)
	if err != nil {
		return p, err
	}
	return p, auth.Record(ctx, tx, auth.Entry{Action: "person.create", Entity: "person", EntityID: id, After: p})
}

// UpdatePerson edits a person's details. A stale Version is a conflict.
func (s *Service) UpdatePerson(ctx context.Context, id int64, in PersonInput) (Person, error) {
	if err := in.Normalize(); err != nil {
		return Person{}, err
	}
	var out Person
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		before, err := s.person(ctx, tx, id)
		if err != nil {
			return err
		}
		if before.Version != in.Version {
			return fault.Conflict("version", "stale_version")
		}
		res, err := tx.Exec(ctx, `UPDATE people SET name = ?, phone = ?, id_type = ?, id_last4 = ?, version = version + 1, updated_at = ?
			WHERE id = ? AND version = ?`, in.Name, in.Phone, in.IDType, in.IDLast4, s.now(), id, in.Version)
		if err != nil {
			return fmt.Errorf("estate: update person: %w", err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.Conflict("version", "stale_version")
		}
		if out, err = s.person(ctx, tx, id); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "person.update", Entity: "person", EntityID: id, Before: before, After: out})
	})
	return out, err
}

// MoveIn registers someone in a unit, checking the procedure's rules: a
// family member is confirmed by a current owner of the unit; a tenant has
// a lease that ends after it starts and the owner's consent on record.
func (s *Service) MoveIn(ctx context.Context, unitCode string, in MoveIn) (Occupancy, error) {
	var out Occupancy
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		out, err = s.moveIn(ctx, tx, unitCode, in)
		return err
	})
	return out, err
}

func (s *Service) moveIn(ctx context.Context, tx *store.Tx, unitCode string, in MoveIn) (Occupancy, error) {
	u, err := s.unit(ctx, tx, unitCode)
	if err != nil {
		return Occupancy{}, err
	}
	if !slices.Contains([]string{Owner, Family, Tenant}, in.Role) {
		return Occupancy{}, fault.Invalid("role", "occupancy_role_invalid")
	}
	movedIn := s.Today()
	if strings.TrimSpace(in.MovedInOn) != "" {
		if movedIn, err = ParseDate("moved_in_on", in.MovedInOn); err != nil {
			return Occupancy{}, err
		}
	}
	var confirmedBy *int64
	var leaseStart, leaseEnd, consent *string
	var consentBy *int64
	var consentAt *time.Time
	switch in.Role {
	case Family:
		if in.ConfirmedBy == 0 {
			return Occupancy{}, fault.Invalid("confirmed_by", "family_needs_owner")
		}
		if err := s.isCurrentOwner(ctx, tx, u.ID, in.ConfirmedBy); err != nil {
			return Occupancy{}, err
		}
		confirmedBy = &in.ConfirmedBy
	case Tenant:
		ls, le, errs := checkTenancy(in.LeaseStart, in.LeaseEnd, in.ConsentMethod, in.ConsentNote)
		if len(errs) > 0 {
			return Occupancy{}, errs[0]
		}
		leaseStart, leaseEnd, consent = &ls, &le, &in.ConsentMethod
		if a := auth.ActorFrom(ctx); a.Kind == "staff" {
			consentBy = &a.ID
		}
		now := s.now()
		consentAt = &now
	}
	in.ConsentNote = strings.TrimSpace(in.ConsentNote)
	if in.Role != Tenant {
		in.ConsentNote = "" // a consent note belongs to a tenancy
	}
	if err := checkNote(in.ConsentNote); err != nil {
		return Occupancy{}, err
	}
	var personID int64
	switch {
	case in.PersonID != 0 && in.Person != nil:
		return Occupancy{}, fault.Invalid("person", "person_or_person_id")
	case in.PersonID != 0:
		if _, err := s.person(ctx, tx, in.PersonID); err != nil {
			return Occupancy{}, err
		}
		personID = in.PersonID
		var n int
		if err := tx.Get(ctx, &n, "SELECT COUNT(*) FROM occupancies WHERE unit_id = ? AND person_id = ? AND moved_out_on IS NULL",
			u.ID, personID); err != nil {
			return Occupancy{}, err
		}
		if n > 0 {
			return Occupancy{}, fault.Conflict("person_id", "already_resident")
		}
	case in.Person != nil:
		p, err := s.findOrCreatePerson(ctx, tx, *in.Person)
		if err != nil {
			return Occupancy{}, err
		}
		personID = p.ID
		var n int
		if err := tx.Get(ctx, &n, "SELECT COUNT(*) FROM occupancies WHERE unit_id = ? AND person_id = ? AND moved_out_on IS NULL",
			u.ID, personID); err != nil {
			return Occupancy{}, err
		}
		if n > 0 {
			return Occupancy{}, fault.Conflict("person", "already_resident")
		}
	default:
		return Occupancy{}, fault.Invalid("person", "person_required")
	}
	now := s.now()
	id, err := tx.Insert(ctx, `INSERT INTO occupancies (unit_id, person_id, role, moved_in_on, confirmed_by, lease_start, lease_end,
		consent_method, consent_note, consent_recorded_by, consent_recorded_at, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		u.ID, personID, in.Role, movedIn, confirmedBy, leaseStart, leaseEnd, consent, in.ConsentNote,
		consentBy, consentAt, now, now)
	if err != nil {
		return Occupancy{}, fmt.Errorf("estate: move in: %w", err)
	}
	o, err := s.occupancy(ctx, tx, id)
	if err != nil {
		return o, err
	}
	return o, auth.Record(ctx, tx, auth.Entry{Action: "occupancy.move_in", Entity: "occupancy", EntityID: id, After: o})
}

// maxNoteRunes caps a consent note.
const maxNoteRunes = 500

// checkTenancy checks a tenant's lease and the owner's consent, returning
// every problem (the desk shows the first, an import all of them) and the
// lease dates in canonical form.
func checkTenancy(leaseStart, leaseEnd, consentMethod, note string) (string, string, []*fault.Error) {
	var errs []*fault.Error
	ls, err1 := ParseDate("lease_start", leaseStart)
	if err1 != nil {
		errs = append(errs, err1.(*fault.Error))
	}
	le, err2 := ParseDate("lease_end", leaseEnd)
	if err2 != nil {
		errs = append(errs, err2.(*fault.Error))
	}
	if err1 == nil && err2 == nil && le <= ls {
		errs = append(errs, fault.Invalid("lease_end", "lease_end_before_start"))
	}
	if !slices.Contains(ConsentMethods, consentMethod) {
		errs = append(errs, fault.Invalid("consent_method", "tenant_needs_consent"))
	} else if consentMethod == "phone" && strings.TrimSpace(note) == "" {
		// A phone consent is only a record if it says who was called when.
		errs = append(errs, fault.Invalid("consent_note", "phone_consent_needs_note"))
	}
	return ls, le, errs
}

// checkNote checks a consent note's length and characters.
func checkNote(note string) error {
	if utf8.RuneCountInString(note) > maxNoteRunes {
		return fault.Invalid("consent_note", "too_long", "max", maxNoteRunes)
	}
	if strings.IndexFunc(note, func(r rune) bool { return unicode.IsControl(r) && r != '\n' && r != '\t' }) >= 0 {
		return fault.Invalid("consent_note", "note_invalid")
	}
	return nil
}

// FindOrCreatePerson records someone who does not live here (a contractor,
// a member of staff), or finds them if already recorded.
func (s *Service) FindOrCreatePerson(ctx context.Context, in PersonInput) (Person, error) {
	var p Person
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		p, err = s.findOrCreatePerson(ctx, tx, in)
		return err
	})
	return p, err
}

// findOrCreatePerson reuses the person with the same name, phone and ID
// (someone who owns a second unit, say) rather than making a duplicate.
func (s *Service) findOrCreatePerson(ctx context.Context, tx *store.Tx, in PersonInput) (Person, error) {
	if err := in.Normalize(); err != nil {
		return Person{}, err
	}
	var p Person
	err := tx.Get(ctx, &p, "SELECT "+personCols+` FROM people WHERE site_id = ? AND name = ? AND phone = ? AND id_type = ? AND id_last4 = ?
		ORDER BY id LIMIT 1`, s.site.ID, in.Name, in.Phone, in.IDType, in.IDLast4)
	if err == nil {
		return p, nil
	}
	if !store.IsNoRows(err) {
		return Person{}, fmt.Errorf("estate: find person: %w", err)
	}
	return s.createPerson(ctx, tx, in)
}

func (s *Service) isCurrentOwner(ctx context.Context, q store.Q, unitID, personID int64) error {
	var n int
	if err := q.Get(ctx, &n, "SELECT COUNT(*) FROM occupancies WHERE unit_id = ? AND person_id = ? AND role = 'owner' AND moved_out_on IS NULL",
		unitID, personID); err != nil {
		return fmt.Errorf("estate: check owner: %w", err)
	}
	if n == 0 {
		return fault.Invalid("confirmed_by", "confirmer_not_owner")
	}
	return nil
}

func (s *Service) occupancy(ctx context.Context, q store.Q, id int64) (Occupancy, error) {
	occ, err := s.occupancies(ctx, q, "o.id = ? AND u.site_id = ?", id, s.site.ID)
	if err != nil {
		return Occupancy{}, err
	}
	if len(occ) == 0 {
		return Occupancy{}, fault.NotFound("occupancy_not_found")
	}
	return occ[0], nil
}

// Occupancy returns one occupancy.
func (s *Service) Occupancy(ctx context.Context, id int64) (Occupancy, error) {
	return s.occupancy(ctx, s.db, id)
}

// MoveOut ends an occupancy on date (today if empty). The row stays.
func (s *Service) MoveOut(ctx context.Context, occupancyID int64, date string) (Occupancy, error) {
	var out Occupancy
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		before, err := s.occupancy(ctx, tx, occupancyID)
		if err != nil {
			return err
		}
		if !before.Current() {
			return fault.Conflict("id", "already_moved_out")
		}
		d := s.Today()
		if strings.TrimSpace(date) != "" {
			if d, err = ParseDate("moved_out_on", date); err != nil {
				return err
			}
		}
		if d < before.MovedInOn {
			return fault.Invalid("moved_out_on", "move_out_before_move_in")
		}
		if _, err := tx.Exec(ctx, "UPDATE occupancies SET moved_out_on = ?, updated_at = ? WHERE id = ? AND moved_out_on IS NULL",
			d, s.now(), occupancyID); err != nil {
			return fmt.Errorf("estate: move out: %w", err)
		}
		if out, err = s.occupancy(ctx, tx, occupancyID); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "occupancy.move_out", Entity: "occupancy", EntityID: occupancyID, Before: before, After: out})
	})
	return out, err
}

// Stats counts what the directory holds, for the desk's front page.
type Stats struct {
	Buildings int `db:"buildings" json:"buildings"`
	Units     int `db:"units" json:"units"`
	Residents int `db:"residents" json:"residents"`
	Tenants   int `db:"tenants" json:"tenants"`
}

// Stats counts buildings, units and current residents.
func (s *Service) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	err := s.db.Get(ctx, &st, `SELECT
		(SELECT COUNT(*) FROM buildings WHERE site_id = ?) AS buildings,
		(SELECT COUNT(*) FROM units WHERE site_id = ?) AS units,
		(SELECT COUNT(DISTINCT o.person_id) FROM occupancies o JOIN units u ON u.id = o.unit_id WHERE u.site_id = ? AND o.moved_out_on IS NULL) AS residents,
		(SELECT COUNT(DISTINCT o.person_id) FROM occupancies o JOIN units u ON u.id = o.unit_id WHERE u.site_id = ? AND o.moved_out_on IS NULL AND o.role = 'tenant') AS tenants`,
		s.site.ID, s.site.ID, s.site.ID, s.site.ID)
	if err != nil {
		return st, fmt.Errorf("estate: stats: %w", err)
	}
	return st, nil
}

// IsEmpty reports whether the site has no units yet (the demo seeds once).
func (s *Service) IsEmpty(ctx context.Context) (bool, error) {
	var n int
	if err := s.db.Get(ctx, &n, "SELECT COUNT(*) FROM units WHERE site_id = ?", s.site.ID); err != nil {
		return false, fmt.Errorf("estate: count units: %w", err)
	}
	return n == 0, nil
}
