// Package passes issues move-out gate passes at the desk and checks them at
// the gates (SOP §2): who may apply and on whose authority, the unit's
// arrears (a warning a supervisor approves, never a refusal by itself),
// the goods and the plate, a window (the day of issue by default) and a
// gate; a pass number and a QR code signed with the site's Ed25519 pass key
// (passes/passcode), so a gate terminal holding only the public key checks
// it offline. At the gate a pass is checked (never consumed by a scan),
// then released once — two releases of one pass can never both count — or
// cancelled when the goods do not match. The duty log keeps refusals and
// the shift leader's exceptions. Records: by day and state, the weekly
// reconciliation, an XLSX export, and a purge after the retention period
// that keeps the audit trail.
//
// The package owns the tables passes, pass_counters, pass_checks and
// duty_log.
package passes

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	"onecard/fault"
	"onecard/passes/passcode"
	"onecard/store"
)

// Deps are what the passes service needs.
type Deps struct {
	DB      *store.DB
	Estate  *estate.Service
	Billing *billing.Service
	// Key signs passes; OldKeys are retired public keys whose passes are
	// still honoured (a key rotated within the retention period).
	Key     ed25519.PrivateKey
	OldKeys []ed25519.PublicKey
	// Gates are the zone codes of the gates goods may leave by (the
	// default is "gate").
	Gates []string
	// Retention is how long records are kept (default a year).
	Retention time.Duration
	Log       *slog.Logger
}

// Service is the gate passes of one site.
type Service struct {
	db        *store.DB
	es        *estate.Service
	bill      *billing.Service
	site      estate.Site
	loc       *time.Location
	key       ed25519.PrivateKey
	keys      *passcode.Keyring
	pubs      []ed25519.PublicKey
	gates     []string
	retention time.Duration
	now       func() time.Time
	log       *slog.Logger
}

// Open returns the passes service.
func Open(d Deps) (*Service, error) {
	if len(d.Key) != ed25519.PrivateKeySize {
		return nil, errors.New("passes: no pass key")
	}
	site := d.Estate.Site()
	loc, err := time.LoadLocation(site.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("passes: time zone %q: %w", site.TimeZone, err)
	}
	pubs := append([]ed25519.PublicKey{d.Key.Public().(ed25519.PublicKey)}, d.OldKeys...)
	keys, err := passcode.NewKeyring(pubs...)
	if err != nil {
		return nil, fmt.Errorf("passes: keys: %w", err)
	}
	if len(d.Gates) == 0 {
		d.Gates = []string{"gate"}
	}
	if d.Retention <= 0 {
		d.Retention = 365 * 24 * time.Hour
	}
	if d.Log == nil {
		d.Log = slog.Default()
	}
	return &Service{db: d.DB, es: d.Estate, bill: d.Billing, site: site, loc: loc, key: d.Key, keys: keys, pubs: pubs,
		gates: d.Gates, retention: d.Retention, now: func() time.Time { return time.Now().UTC() }, log: d.Log}, nil
}

// SetClock replaces the clock (tests).
func (s *Service) SetClock(now func() time.Time) { s.now = now }

// Gates are the gates goods may leave by.
func (s *Service) Gates() []string { return s.gates }

// PublicKeys are the site's pass public keys, base64 of the 32 bytes, as
// gate terminals receive them (fleet configuration).
func (s *Service) PublicKeys() []string {
	out := make([]string, len(s.pubs))
	for i, p := range s.pubs {
		out[i] = base64.StdEncoding.EncodeToString(p)
	}
	return out
}

// Item is goods on a pass.
type Item struct {
	Name string `json:"name"`
	Qty  int    `json:"qty"`
}

// CommonItems are offered on the desk's form (anything else is typed).
var CommonItems = []string{"沙发", "床", "床垫", "衣柜", "餐桌", "椅子", "冰箱", "洗衣机", "电视", "空调", "电脑", "保险柜", "纸箱", "钢琴"}

// Applicant roles and the owner's consent (for a tenant or an agent).
var (
	Roles    = []string{"owner", "tenant", "agent"}
	Consents = []string{"owner_present", "signed_authorisation", "phone"}
)

// Pass is a move-out gate pass.
type Pass struct {
	ID             int64      `db:"id" json:"id"`
	Number         string     `db:"number" json:"number"`
	Unit           string     `db:"unit_code" json:"unit"`
	Role           string     `db:"applicant_role" json:"applicant_role"`
	Applicant      string     `db:"applicant_name" json:"applicant_name"`
	ApplicantID    string     `db:"applicant_id_last4" json:"applicant_id_last4,omitempty"`
	Consent        string     `db:"consent" json:"consent,omitempty"`
	ConsentNote    string     `db:"consent_note" json:"consent_note,omitempty"`
	ItemsJSON      string     `db:"items" json:"-"`
	Items          []Item     `db:"-" json:"items"`
	Plate          string     `db:"plate" json:"plate,omitempty"`
	Gate           string     `db:"gate" json:"gate"`
	ValidFrom      time.Time  `db:"valid_from" json:"valid_from"`
	ValidUntil     time.Time  `db:"valid_until" json:"valid_until"`
	ArrearsFen     int64      `db:"arrears_fen" json:"arrears_fen"`
	ApprovedBy     string     `db:"approved_by" json:"approved_by,omitempty"`
	ApprovalReason string     `db:"approval_reason" json:"approval_reason,omitempty"`
	Code           string     `db:"code" json:"code"`
	State          string     `db:"state" json:"state"`
	IssuedBy       string     `db:"issued_by" json:"issued_by"`
	IssuedAt       time.Time  `db:"issued_at" json:"issued_at"`
	ReleasedAt     *time.Time `db:"released_at" json:"released_at,omitempty"`
	ReleasedGate   string     `db:"released_gate" json:"released_gate,omitempty"`
	ReleasedBy     string     `db:"released_by" json:"released_by,omitempty"`
	MoverID        string     `db:"mover_id_last4" json:"mover_id_last4,omitempty"`
	ReleasedPlate  string     `db:"released_plate" json:"released_plate,omitempty"`
	Offline        bool       `db:"released_offline" json:"released_offline,omitempty"`
	CancelledAt    *time.Time `db:"cancelled_at" json:"cancelled_at,omitempty"`
	CancelReason   string     `db:"cancel_reason" json:"cancel_reason,omitempty"`
	FollowedUpAt   *time.Time `db:"followed_up_at" json:"followed_up_at,omitempty"`
	FollowUpNote   string     `db:"follow_up_note" json:"follow_up_note,omitempty"`
}

// ItemsText is the goods on one line: "沙发 ×1, 冰箱 ×1".
func (p Pass) ItemsText() string {
	parts := make([]string, len(p.Items))
	for i, it := range p.Items {
		parts[i] = fmt.Sprintf("%s ×%d", it.Name, it.Qty)
	}
	return strings.Join(parts, ", ")
}

const passCols = `p.id, p.number, u.code AS unit_code, p.applicant_role, p.applicant_name, p.applicant_id_last4, p.consent, p.consent_note,
	p.items, p.plate, p.gate, p.valid_from, p.valid_until, p.arrears_fen, p.approved_by, p.approval_reason, p.code, p.state,
	p.issued_by, p.issued_at, p.released_at, p.released_gate, p.released_by, p.mover_id_last4, p.released_plate, p.released_offline,
	p.cancelled_at, p.cancel_reason, p.followed_up_at, p.follow_up_note`
const passFrom = ` FROM passes p JOIN units u ON u.id = p.unit_id`

func (p *Pass) fill() {
	p.Items = []Item{}
	_ = json.Unmarshal([]byte(p.ItemsJSON), &p.Items)
	p.ValidFrom, p.ValidUntil, p.IssuedAt = p.ValidFrom.UTC(), p.ValidUntil.UTC(), p.IssuedAt.UTC()
}

// IssueInput is the desk's application form.
type IssueInput struct {
	Unit string `json:"unit"`
	// Role: owner or tenant (OccupancyID names them among the unit's
	// current occupants), or agent (Name and IDLast4 from the owner's
	// written authorisation).
	Role        string `json:"applicant_role"`
	OccupancyID int64  `json:"occupancy_id"`
	Name        string `json:"applicant_name"`
	IDLast4     string `json:"applicant_id_last4"`
	// Consent of the owner, for a tenant or an agent: owner_present,
	// signed_authorisation (an agent needs this one) or phone; Note says
	// which document, or the number called and when.
	Consent     string `json:"consent"`
	ConsentNote string `json:"consent_note"`
	Items       []Item `json:"items"`
	Plate       string `json:"plate"`
	Gate        string `json:"gate"`
	// Date (YYYY-MM-DD, site time; default today) and an optional window
	// within it (HH:MM; default the whole day).
	Date string `json:"date"`
	From string `json:"from"`
	To   string `json:"to"`
	// ApprovalReason: why a unit in arrears may move out (with the
	// supervisor's approval).
	ApprovalReason string `json:"approval_reason"`
}

var (
	last4RE = regexp.MustCompile(`^[0-9Xx]{4}$`)
	hhmmRE  = regexp.MustCompile(`^([01][0-9]|2[0-3]):[0-5][0-9]$`)
	plateRE = regexp.MustCompile(`^[\p{Han}A-Z][A-Z0-9\p{Han}]{4,8}$`)
)

// ErrArrears: the unit has overdue fees: the pass needs a supervisor's
// approval and a reason (Issue's approver).
var ErrArrears = fault.Conflict("approval", "pass_needs_approval")

// Arrears is what the unit owes overdue, shown before issuing.
func (s *Service) Arrears(ctx context.Context, unit string) (int64, error) {
	if s.bill == nil {
		return 0, nil
	}
	a, err := s.bill.Account(ctx, unit)
	if err != nil {
		return 0, err
	}
	return a.OverdueFen, nil
}

// Issue issues a pass after the procedure's checks, signs its code, queues
// it on the desk printer (printer: "" for the desk's) and records it. A
// unit with arrears needs approver: a supervisor (or admin) who approved
// with their own password (auth.Approve), and a reason.
func (s *Service) Issue(ctx context.Context, in IssueInput, approver *auth.Actor) (Pass, error) {
	op := auth.ActorFrom(ctx)
	if op.Kind != "staff" {
		return Pass{}, fault.Forbidden("staff_only")
	}
	u, err := s.es.Unit(ctx, strings.TrimSpace(in.Unit))
	if err != nil {
		return Pass{}, err
	}
	in.Name, in.IDLast4 = strings.TrimSpace(in.Name), strings.ToUpper(strings.TrimSpace(in.IDLast4))
	in.Consent, in.ConsentNote = strings.TrimSpace(in.Consent), strings.TrimSpace(in.ConsentNote)
	if err := s.checkApplicant(&in, u); err != nil {
		return Pass{}, err
	}
	items, err := cleanItems(in.Items)
	if err != nil {
		return Pass{}, err
	}
	plate := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(in.Plate), " ", ""))
	if plate != "" && !plateRE.MatchString(plate) {
		return Pass{}, fault.Invalid("plate", "plate_invalid")
	}
	if !slices.Contains(s.gates, in.Gate) {
		return Pass{}, fault.Invalid("gate", "gate_unknown")
	}
	from, until, err := s.window(in.Date, in.From, in.To)
	if err != nil {
		return Pass{}, err
	}
	arrears, err := s.Arrears(ctx, u.Code)
	if err != nil {
		return Pass{}, err
	}
	var approvedBy, reason string
	if arrears > 0 {
		reason = strings.TrimSpace(in.ApprovalReason)
		switch {
		case approver == nil:
			return Pass{}, ErrArrears
		case approver.Role != auth.Supervisor && approver.Role != auth.Admin:
			return Pass{}, fault.Forbidden("approval_role")
		case reason == "" || utf8.RuneCountInString(reason) > 200:
			return Pass{}, fault.Invalid("approval_reason", "approval_reason_required")
		}
		approvedBy = approver.Name
	}
	itemsJSON, _ := json.Marshal(items)
	now := s.now()
	var p Pass
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		year := now.In(s.loc).Year()
		var no int64
		if err := tx.Get(ctx, &no, `INSERT INTO pass_counters (site_id, year, last_no) VALUES (?, ?, 1)
			ON CONFLICT (site_id, year) DO UPDATE SET last_no = pass_counters.last_no + 1 RETURNING last_no`, s.site.ID, year); err != nil {
			return err
		}
		number := fmt.Sprintf("%d-%06d", year, no)
		code, err := passcode.Sign(s.key, passcode.Claims{Pass: number, Gate: in.Gate, NotBefore: from, NotAfter: until})
		if err != nil {
			return fmt.Errorf("passes: sign %s: %w", number, err)
		}
		id, err := tx.Insert(ctx, `INSERT INTO passes (site_id, number, unit_id, applicant_role, applicant_name, applicant_id_last4,
			consent, consent_note, items, plate, gate, valid_from, valid_until, arrears_fen, approved_by, approval_reason, code, state,
			issued_by, issued_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'issued', ?, ?) RETURNING id`,
			s.site.ID, number, u.ID, in.Role, in.Name, in.IDLast4, in.Consent, in.ConsentNote, string(itemsJSON), plate, in.Gate,
			from, until, arrears, approvedBy, reason, code, op.Name, now)
		if err != nil {
			return err
		}
		if p, err = s.get(ctx, tx, "p.id = ?", id); err != nil {
			return err
		}
		if s.bill != nil {
			if err := s.bill.QueuePrintTx(ctx, tx, "", "gate_pass", s.printout(p)); err != nil {
				return err
			}
		}
		if approver != nil && arrears > 0 {
			if err := auth.Record(ctx, tx, auth.Entry{Action: "pass.approve_arrears", Entity: "pass", EntityID: id,
				After: map[string]any{"approver": approver.Name, "arrears_fen": arrears, "reason": reason}}); err != nil {
				return err
			}
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "pass.issue", Entity: "pass", EntityID: id, After: p})
	})
	return p, err
}

// checkApplicant applies SOP §2's "who may apply".
func (s *Service) checkApplicant(in *IssueInput, u estate.UnitDetail) error {
	today := s.now().In(s.loc).Format(time.DateOnly)
	occupant := func(role string) (estate.Occupancy, bool) {
		for _, o := range u.Occupancies {
			if o.ID == in.OccupancyID && o.Current() && o.Role == role {
				return o, true
			}
		}
		return estate.Occupancy{}, false
	}
	switch in.Role {
	case "owner":
		o, ok := occupant("owner")
		if !ok {
			return fault.Invalid("occupancy_id", "pass_not_owner")
		}
		in.Name, in.IDLast4, in.Consent, in.ConsentNote = o.Name, o.IDLast4, "", ""
		return nil
	case "tenant":
		o, ok := occupant("tenant")
		if !ok {
			return fault.Invalid("occupancy_id", "pass_not_tenant")
		}
		if o.LeaseEnd != nil && *o.LeaseEnd < today {
			return fault.Invalid("occupancy_id", "lease_ended")
		}
		in.Name, in.IDLast4 = o.Name, o.IDLast4
	case "agent":
		if in.Name == "" || utf8.RuneCountInString(in.Name) > 40 {
			return fault.Invalid("applicant_name", "name_required")
		}
		if !last4RE.MatchString(in.IDLast4) {
			return fault.Invalid("applicant_id_last4", "id_last4_invalid")
		}
		if in.Consent != "signed_authorisation" {
			return fault.Invalid("consent", "pass_agent_needs_authorisation")
		}
	default:
		return fault.Invalid("applicant_role", "pass_role_invalid")
	}
	switch {
	case !slices.Contains(Consents, in.Consent):
		return fault.Invalid("consent", "pass_consent_required")
	case in.Consent == "phone" && in.ConsentNote == "":
		return fault.Invalid("consent_note", "pass_phone_note_required")
	case in.Consent == "signed_authorisation" && in.ConsentNote == "":
		return fault.Invalid("consent_note", "pass_authorisation_note_required")
	case utf8.RuneCountInString(in.ConsentNote) > 200:
		return fault.Invalid("consent_note", "too_long", "max", 200)
	}
	return nil
}

func cleanItems(in []Item) ([]Item, error) {
	var out []Item
	for _, it := range in {
		it.Name = strings.TrimSpace(it.Name)
		if it.Name == "" && it.Qty == 0 {
			continue // an empty row of the form
		}
		switch {
		case it.Name == "" || utf8.RuneCountInString(it.Name) > 40:
			return nil, fault.Invalid("items", "pass_item_name_invalid")
		case it.Qty < 1 || it.Qty > 999:
			return nil, fault.Invalid("items", "pass_item_qty_invalid", "item", it.Name)
		}
		out = append(out, it)
	}
	switch {
	case len(out) == 0:
		return nil, fault.Invalid("items", "pass_items_required")
	case len(out) > 30:
		return nil, fault.Invalid("items", "pass_items_too_many")
	}
	return out, nil
}

// window is the pass's validity: date (default today) from..to, site
// time, whole minutes; never in the past.
func (s *Service) window(date, from, to string) (time.Time, time.Time, error) {
	now := s.now().In(s.loc)
	if date = strings.TrimSpace(date); date == "" {
		date = now.Format(time.DateOnly)
	}
	day, err := time.ParseInLocation(time.DateOnly, date, s.loc)
	if err != nil {
		return time.Time{}, time.Time{}, fault.Invalid("date", "date_invalid")
	}
	if day.Before(time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, s.loc)) {
		return time.Time{}, time.Time{}, fault.Invalid("date", "pass_date_past")
	}
	if day.After(now.AddDate(0, 0, 30)) {
		return time.Time{}, time.Time{}, fault.Invalid("date", "pass_date_too_far")
	}
	at := func(hhmm string, def time.Time) (time.Time, error) {
		if hhmm = strings.TrimSpace(hhmm); hhmm == "" {
			return def, nil
		}
		if !hhmmRE.MatchString(hhmm) {
			return time.Time{}, fault.Invalid("window", "time_invalid")
		}
		t, _ := time.ParseInLocation("2006-01-02 15:04", date+" "+hhmm, s.loc)
		return t, nil
	}
	start, err := at(from, day)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	end, err := at(to, day.AddDate(0, 0, 1))
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	if !end.After(start) {
		return time.Time{}, time.Time{}, fault.Invalid("window", "pass_window_invalid")
	}
	if !end.After(now) {
		return time.Time{}, time.Time{}, fault.Invalid("window", "pass_date_past")
	}
	return start.UTC(), end.UTC(), nil
}

// printout is the pass as the desk printer prints it.
func (s *Service) printout(p Pass) []billing.Line {
	local := func(t time.Time) string { return t.In(s.loc).Format("2006-01-02 15:04") }
	lines := []billing.Line{
		{Text: s.site.Name, Align: "center", Bold: true},
		{Text: "物品放行条", Align: "center", Big: true},
		{Text: "No. " + p.Number, Align: "center"},
		{Rule: true},
		{Text: "房号: " + p.Unit},
		{Text: "申请人: " + p.Applicant + " (" + roleName(p.Role) + ")"},
	}
	for _, it := range p.Items {
		lines = append(lines, billing.Line{Text: fmt.Sprintf("  %s × %d", it.Name, it.Qty)})
	}
	if p.Plate != "" {
		lines = append(lines, billing.Line{Text: "车牌: " + p.Plate})
	}
	lines = append(lines,
		billing.Line{Text: "出口: " + p.Gate},
		billing.Line{Text: "有效: " + local(p.ValidFrom) + " 至 " + local(p.ValidUntil), Bold: true})
	if p.ArrearsFen > 0 {
		lines = append(lines, billing.Line{Text: "欠费 ¥" + billing.Yuan(p.ArrearsFen) + "，已由 " + p.ApprovedBy + " 批准放行"})
	}
	return append(lines,
		billing.Line{Text: "经办: " + p.IssuedBy + "  " + local(p.IssuedAt)},
		billing.Line{Rule: true},
		billing.Line{QR: p.Code, Align: "center"},
		billing.Line{Text: "业主签字: ________  门岗签字: ________", Align: "left"},
		billing.Line{Text: "放行时间: ____________", Align: "left"},
		billing.Line{Cut: true})
}

func roleName(r string) string {
	switch r {
	case "owner":
		return "业主"
	case "tenant":
		return "租户"
	}
	return "代理人"
}

func (s *Service) get(ctx context.Context, q store.Q, where string, args ...any) (Pass, error) {
	var p Pass
	err := q.Get(ctx, &p, "SELECT "+passCols+passFrom+" WHERE p.site_id = ? AND "+where, append([]any{s.site.ID}, args...)...)
	if store.IsNoRows(err) {
		return p, fault.NotFound("pass_not_found")
	}
	p.fill()
	return p, err
}

// Pass returns a pass by id.
func (s *Service) Pass(ctx context.Context, id int64) (Pass, error) {
	return s.get(ctx, s.db, "p.id = ?", id)
}

// ByNumber returns a pass by its number.
func (s *Service) ByNumber(ctx context.Context, number string) (Pass, error) {
	return s.get(ctx, s.db, "p.number = ?", strings.TrimSpace(number))
}

// Reprint queues the pass on the desk printer again.
func (s *Service) Reprint(ctx context.Context, id int64) error {
	if s.bill == nil {
		return fault.Conflict("printer", "no_printer")
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		p, err := s.get(ctx, tx, "p.id = ?", id)
		if err != nil {
			return err
		}
		if err := s.bill.QueuePrintTx(ctx, tx, "", "gate_pass", s.printout(p)); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "pass.reprint", Entity: "pass", EntityID: id})
	})
}

// Cancel cancels an unused pass at the desk (issued in error, the move
// called off).
func (s *Service) Cancel(ctx context.Context, id int64, reason string) (Pass, error) {
	reason = strings.TrimSpace(reason)
	if reason == "" || utf8.RuneCountInString(reason) > 200 {
		return Pass{}, fault.Invalid("reason", "reason_required")
	}
	var p Pass
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		if p, err = s.cancel(ctx, tx, id, reason); err != nil {
			return err
		}
		return nil
	})
	return p, err
}

func (s *Service) cancel(ctx context.Context, tx *store.Tx, id int64, reason string) (Pass, error) {
	res, err := tx.Exec(ctx, "UPDATE passes SET state = 'cancelled', cancelled_at = ?, cancel_reason = ? WHERE id = ? AND site_id = ? AND state = 'issued'",
		s.now(), reason, id, s.site.ID)
	if err != nil {
		return Pass{}, err
	}
	p, err := s.get(ctx, tx, "p.id = ?", id)
	if err != nil {
		return p, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return p, fault.Conflict("pass", "pass_not_open", "state", p.State)
	}
	return p, auth.Record(ctx, tx, auth.Entry{Action: "pass.cancel", Entity: "pass", EntityID: id, After: map[string]any{"reason": reason}})
}

// FollowUp records what came of an unused pass (weekly reconciliation).
func (s *Service) FollowUp(ctx context.Context, id int64, note string) error {
	note = strings.TrimSpace(note)
	if note == "" || utf8.RuneCountInString(note) > 200 {
		return fault.Invalid("note", "note_required")
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE passes SET followed_up_at = ?, follow_up_note = ? WHERE id = ? AND site_id = ?", s.now(), note, id, s.site.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return fault.NotFound("pass_not_found")
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "pass.follow_up", Entity: "pass", EntityID: id, After: map[string]any{"note": note}})
	})
}
