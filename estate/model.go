package estate

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"onecard/fault"
)

// Site is one estate.
type Site struct {
	ID       int64  `db:"id" json:"id"`
	Code     string `db:"code" json:"code"`
	Name     string `db:"name" json:"name"`
	TimeZone string `db:"time_zone" json:"time_zone"`
}

// Area is a floor area in hundredths of a square metre, so that it adds up
// exactly; it reads and writes as a decimal ("89.5").
type Area int64

// String formats the area in m² with at most two decimals.
func (a Area) String() string {
	s := fmt.Sprintf("%d.%02d", int64(a)/100, int64(a)%100)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return s
}

// MarshalJSON writes the area as a JSON number.
func (a Area) MarshalJSON() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalJSON reads a JSON number or string.
func (a *Area) UnmarshalJSON(b []byte) error {
	s := strings.Trim(string(b), `"`)
	v, err := ParseArea(s)
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// ParseArea reads "89", "89.5" or "89.50" exactly.
func ParseArea(s string) (Area, error) {
	s = strings.TrimSpace(norm.NFKC.String(s))
	if s == "" {
		return 0, nil
	}
	whole, frac, _ := strings.Cut(s, ".")
	if len(frac) > 2 || whole == "" || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" || len(whole) > 6 {
		return 0, fault.Invalid("area_m2", "area_invalid")
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	for len(frac) < 2 {
		frac += "0"
	}
	f, _ := strconv.ParseInt(frac, 10, 64)
	return Area(w*100 + f), nil
}

// Unit is one dwelling, coded building-entrance-room ("3-2-1801").
type Unit struct {
	ID           int64     `db:"id" json:"id"`
	Code         string    `db:"code" json:"code"`
	Building     int       `db:"building" json:"building"`
	Entrance     int       `db:"entrance" json:"entrance"`
	Floor        int       `db:"floor" json:"floor"`
	Room         string    `db:"room" json:"room"`
	Area         Area      `db:"area_centi_m2" json:"area_m2"`
	HandoverDate *string   `db:"handover_date" json:"handover_date"`
	Version      int       `db:"version" json:"version"`
	CreatedAt    time.Time `db:"created_at" json:"created_at"`
	UpdatedAt    time.Time `db:"updated_at" json:"updated_at"`
}

// UnitCode is a parsed unit code.
type UnitCode struct {
	Building, Entrance, Floor int
	Room                      string
}

// String formats the code canonically.
func (c UnitCode) String() string { return fmt.Sprintf("%d-%d-%s", c.Building, c.Entrance, c.Room) }

var unitCodeRE = regexp.MustCompile(`^(\d{1,3})-(\d{1,2})-(\d{3,5})$`)

// ParseUnitCode reads a code such as "3-2-1801"; full-width digits and
// dashes, as typed on a Chinese keyboard, are accepted.
func ParseUnitCode(s string) (UnitCode, error) {
	s = normalizeDashes(strings.TrimSpace(norm.NFKC.String(s)))
	m := unitCodeRE.FindStringSubmatch(s)
	if m == nil {
		return UnitCode{}, fault.Invalid("code", "unit_code_invalid", "code", s)
	}
	b, _ := strconv.Atoi(m[1])
	e, _ := strconv.Atoi(m[2])
	room := strings.TrimLeft(m[3], "0")
	r, _ := strconv.Atoi(room)
	floor := r / 100
	if b < 1 || e < 1 || floor < 1 || r%100 == 0 {
		return UnitCode{}, fault.Invalid("code", "unit_code_invalid", "code", s)
	}
	return UnitCode{Building: b, Entrance: e, Floor: floor, Room: room}, nil
}

func normalizeDashes(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case '－', '—', '–', '‐', '−', '_':
			return '-'
		}
		return r
	}, s)
}

// IDTypes are the identity documents recorded (by type and last four
// characters only).
var IDTypes = []string{"resident_id", "passport", "hk_macau_permit", "taiwan_permit", "foreign_residence", "other"}

// Person is a resident or owner.
type Person struct {
	ID        int64     `db:"id" json:"id"`
	Name      string    `db:"name" json:"name"`
	Phone     string    `db:"phone" json:"phone"`
	IDType    string    `db:"id_type" json:"id_type"`
	IDLast4   string    `db:"id_last4" json:"id_last4"`
	Version   int       `db:"version" json:"version"`
	CreatedAt time.Time `db:"created_at" json:"created_at"`
	UpdatedAt time.Time `db:"updated_at" json:"updated_at"`
}

// PersonInput creates or edits a person. Version must match on edit.
type PersonInput struct {
	Name    string `json:"name"`
	Phone   string `json:"phone"`
	IDType  string `json:"id_type"`
	IDLast4 string `json:"id_last4"`
	Version int    `json:"version,omitempty"`
}

var (
	mobileRE   = regexp.MustCompile(`^1[3-9]\d{9}$`)
	landlineRE = regexp.MustCompile(`^0\d{2,3}-?\d{7,8}$`)
	intlRE     = regexp.MustCompile(`^\+\d{7,15}$`)
	last4RE    = regexp.MustCompile(`^[0-9A-Z]{4}$`)
	residentRE = regexp.MustCompile(`^\d{3}[0-9X]$`)
)

// NormalizePhone strips spaces and separators from a phone number; an
// empty result means the input was not a phone number.
func NormalizePhone(s string) string {
	s = norm.NFKC.String(strings.TrimSpace(s))
	s = strings.NewReplacer(" ", "", "(", "", ")", "").Replace(s)
	cn := strings.HasPrefix(s, "+86") || strings.HasPrefix(s, "0086")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "+86"), "0086")
	s = strings.TrimPrefix(s, "-")
	if cn && len(s) > 0 && s[0] != '0' && !mobileRE.MatchString(strings.ReplaceAll(s, "-", "")) {
		s = "0" + s // +86 10 12345678 is the Beijing landline 010-12345678
	}
	switch {
	case mobileRE.MatchString(strings.ReplaceAll(s, "-", "")):
		return strings.ReplaceAll(s, "-", "")
	case landlineRE.MatchString(s):
		return s
	case intlRE.MatchString(strings.ReplaceAll(s, "-", "")):
		return strings.ReplaceAll(s, "-", "")
	}
	return ""
}

// Normalize cleans the input and checks every field.
func (in *PersonInput) Normalize() error {
	in.Name = strings.Join(strings.Fields(norm.NFC.String(in.Name)), " ")
	if in.Name == "" {
		return fault.Invalid("name", "name_required")
	}
	if utf8.RuneCountInString(in.Name) > 50 {
		return fault.Invalid("name", "too_long", "max", 50)
	}
	for _, r := range in.Name {
		if unicode.IsControl(r) {
			return fault.Invalid("name", "name_invalid")
		}
	}
	if strings.TrimSpace(in.Phone) == "" {
		return fault.Invalid("phone", "phone_required")
	}
	p := NormalizePhone(in.Phone)
	if p == "" {
		return fault.Invalid("phone", "phone_invalid")
	}
	in.Phone = p
	in.IDType = strings.TrimSpace(in.IDType)
	if !slices.Contains(IDTypes, in.IDType) {
		return fault.Invalid("id_type", "id_type_invalid")
	}
	in.IDLast4 = strings.ToUpper(strings.TrimSpace(norm.NFKC.String(in.IDLast4)))
	if !last4RE.MatchString(in.IDLast4) || (in.IDType == "resident_id" && !residentRE.MatchString(in.IDLast4)) {
		return fault.Invalid("id_last4", "id_last4_invalid")
	}
	return nil
}

// Roles of an occupancy.
const (
	Owner  = "owner"
	Family = "family"
	Tenant = "tenant"
)

// ConsentMethods are how an owner's consent to a tenant was given.
var ConsentMethods = []string{"written", "in_person", "phone"}

// Occupancy ties a person to a unit from move-in to move-out.
type Occupancy struct {
	ID            int64   `db:"id" json:"id"`
	UnitID        int64   `db:"unit_id" json:"unit_id"`
	UnitCode      string  `db:"unit_code" json:"unit_code"`
	PersonID      int64   `db:"person_id" json:"person_id"`
	Name          string  `db:"name" json:"name"`
	Phone         string  `db:"phone" json:"phone"`
	IDType        string  `db:"id_type" json:"id_type"`
	IDLast4       string  `db:"id_last4" json:"id_last4"`
	Role          string  `db:"role" json:"role"`
	MovedInOn     string  `db:"moved_in_on" json:"moved_in_on"`
	MovedOutOn    *string `db:"moved_out_on" json:"moved_out_on"`
	ConfirmedBy   *int64  `db:"confirmed_by" json:"confirmed_by,omitempty"`
	ConfirmedName *string `db:"confirmed_name" json:"confirmed_by_name,omitempty"`
	LeaseStart    *string `db:"lease_start" json:"lease_start,omitempty"`
	LeaseEnd      *string `db:"lease_end" json:"lease_end,omitempty"`
	ConsentMethod *string `db:"consent_method" json:"consent_method,omitempty"`
	ConsentNote   string  `db:"consent_note" json:"consent_note,omitempty"`
}

// Current reports whether the person still lives there.
func (o Occupancy) Current() bool { return o.MovedOutOn == nil }

// MoveIn registers a person in a unit. Either PersonID names someone
// already in the directory or Person describes someone new.
type MoveIn struct {
	PersonID      int64        `json:"person_id,omitempty"`
	Person        *PersonInput `json:"person,omitempty"`
	Role          string       `json:"role"`
	MovedInOn     string       `json:"moved_in_on"`
	ConfirmedBy   int64        `json:"confirmed_by,omitempty"`
	LeaseStart    string       `json:"lease_start,omitempty"`
	LeaseEnd      string       `json:"lease_end,omitempty"`
	ConsentMethod string       `json:"consent_method,omitempty"`
	ConsentNote   string       `json:"consent_note,omitempty"`
}

// ParseDate checks a YYYY-MM-DD date (full-width digits accepted, and
// 2026/3/5 as estates often write it) and returns it canonically.
func ParseDate(field, s string) (string, error) {
	s = strings.TrimSpace(norm.NFKC.String(s))
	for _, layout := range []string{"2006-01-02", "2006/1/2", "2006-1-2", "2006.1.2"} {
		if t, err := time.Parse(layout, s); err == nil {
			if t.Year() < 1900 || t.Year() > 2200 {
				break
			}
			return t.Format("2006-01-02"), nil
		}
	}
	return "", fault.Invalid(field, "date_invalid", "value", s)
}
