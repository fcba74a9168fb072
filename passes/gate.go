package passes

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"onecard/auth"
	"onecard/fault"
	"onecard/passes/passcode"
	"onecard/store"
)

// Verdict is what a gate is told about a scanned code or a typed number.
type Verdict struct {
	OK bool `json:"ok"`
	// Reason, when not OK: malformed, forged, unknown, cancelled, used,
	// expired, not_yet_valid, wrong_gate (the fleet protocol's words).
	Reason string `json:"reason,omitempty"`
	// Pass is the pass, when the code is genuine or the number known.
	Pass *Pass `json:"pass,omitempty"`
	// Warnings for the guard (the unit's arrears, approved by whom).
	Warnings []string `json:"warnings,omitempty"`
}

// Check checks a scanned code or a typed pass number at gate, and records
// the check. It never consumes the pass. source is who checked: the
// guard's name, or "device:<id>" for a gate terminal.
func (s *Service) Check(ctx context.Context, text, gate, source string) (Verdict, error) {
	var v Verdict
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		v, err = s.checkTx(ctx, tx, text, gate, source)
		return err
	})
	return v, err
}

func (s *Service) checkTx(ctx context.Context, tx *store.Tx, text, gate, source string) (Verdict, error) {
	v, err := s.verdict(ctx, tx, text, gate)
	if err != nil {
		return v, err
	}
	return v, s.logCheck(ctx, tx, v.Pass, gate, source, "scan", v.OK, v.Reason)
}

// verdict decides, without recording anything.
func (s *Service) verdict(ctx context.Context, q store.Q, text, gate string) (Verdict, error) {
	text = strings.TrimSpace(text)
	now := s.now()
	var p Pass
	var err error
	if passcode.LooksLikeCode(text) {
		c, perr := passcode.Parse(text, s.keys)
		switch {
		case errors.Is(perr, passcode.ErrBadSignature), errors.Is(perr, passcode.ErrUnknownKey):
			return Verdict{Reason: "forged"}, nil
		case perr != nil:
			return Verdict{Reason: "malformed"}, nil
		}
		p, err = s.get(ctx, q, "p.number = ?", c.Pass)
		if fault.Code(err) == "pass_not_found" {
			return Verdict{Reason: "unknown"}, nil
		}
		if err == nil && p.Code != strings.ToUpper(text) {
			// Genuine signature, but not the code this pass was issued
			// with: refuse (only our key signs, so this is a bug or a
			// leaked key; the stored code is the truth).
			return Verdict{Reason: "forged", Pass: &p}, nil
		}
	} else {
		if text == "" || len(text) > 32 {
			return Verdict{Reason: "malformed"}, nil
		}
		p, err = s.get(ctx, q, "p.number = ?", text)
		if fault.Code(err) == "pass_not_found" {
			return Verdict{Reason: "unknown"}, nil
		}
	}
	if err != nil {
		return Verdict{}, err
	}
	v := Verdict{Pass: &p}
	if p.ArrearsFen > 0 {
		v.Warnings = append(v.Warnings, "arrears")
	}
	switch {
	case p.State == "cancelled":
		v.Reason = "cancelled"
	case p.State == "used":
		v.Reason = "used"
	case now.Before(p.ValidFrom):
		v.Reason = "not_yet_valid"
	case !now.Before(p.ValidUntil):
		v.Reason = "expired"
	case p.Gate != gate:
		v.Reason = "wrong_gate"
	default:
		v.OK = true
	}
	return v, nil
}

func (s *Service) logCheck(ctx context.Context, tx *store.Tx, p *Pass, gate, source, kind string, ok bool, reason string) error {
	var id *int64
	if p != nil {
		id = &p.ID
	}
	_, err := tx.Exec(ctx, "INSERT INTO pass_checks (site_id, pass_id, gate, source, kind, ok, reason, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
		s.site.ID, id, gate, trunc(source, 60), kind, ok, reason, s.now())
	return err
}

// Release is the guard's confirmation at the gate.
type Release struct {
	// Text is the scanned code or the typed pass number.
	Text string `json:"text"`
	Gate string `json:"gate"`
	// MoverID is the last digits of the mover's ID; Plate the vehicle's
	// plate as seen at the gate ("" if none).
	MoverID string `json:"mover_id_last4"`
	Plate   string `json:"plate"`
	// Offline: a gate terminal released it on its own check (reported
	// afterwards: the goods are gone; the server records and flags).
	Offline bool `json:"-"`
}

// Release consumes the pass at gate: exactly once, whoever confirms first
// (two guards, two gates, a replayed message); the others are told it was
// used.
func (s *Service) Release(ctx context.Context, r Release, source string) (Pass, error) {
	var p Pass
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		p, err = s.releaseTx(ctx, tx, r, source)
		return err
	})
	return p, err
}

// ErrRefused wraps a verdict's refusal of a release.
type ErrRefused struct{ Verdict Verdict }

func (e ErrRefused) Error() string { return "passes: refused: " + e.Verdict.Reason }

func (s *Service) releaseTx(ctx context.Context, tx *store.Tx, r Release, source string) (Pass, error) {
	r.MoverID = strings.ToUpper(strings.TrimSpace(r.MoverID))
	r.Plate = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(r.Plate), " ", ""))
	if !r.Offline {
		if !last4RE.MatchString(r.MoverID) {
			return Pass{}, fault.Invalid("mover_id_last4", "id_last4_invalid")
		}
		if r.Plate != "" && !plateRE.MatchString(r.Plate) {
			return Pass{}, fault.Invalid("plate", "plate_invalid")
		}
	}
	v, err := s.verdict(ctx, tx, r.Text, r.Gate)
	if err != nil {
		return Pass{}, err
	}
	if !v.OK && !(r.Offline && v.Pass != nil) {
		if err := s.logCheck(ctx, tx, v.Pass, r.Gate, source, "release", false, v.Reason); err != nil {
			return Pass{}, err
		}
		if v.Pass != nil && v.Reason == "used" {
			return *v.Pass, fault.Conflict("pass", "pass_used")
		}
		return Pass{}, ErrRefused{v}
	}
	p := *v.Pass
	res, err := tx.Exec(ctx, `UPDATE passes SET state = 'used', released_at = ?, released_gate = ?, released_by = ?, mover_id_last4 = ?,
		released_plate = ?, released_offline = ? WHERE id = ? AND state = 'issued'`,
		s.now(), r.Gate, trunc(source, 60), trunc(r.MoverID, 8), trunc(r.Plate, 16), r.Offline, p.ID)
	if err != nil {
		return p, err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		// Released (or cancelled) meanwhile, or reported by a terminal
		// that let the goods out on its own: recorded and flagged.
		if err := s.logCheck(ctx, tx, &p, r.Gate, source, "flag", false, "released_again"); err != nil {
			return p, err
		}
		if err := auth.Record(ctx, tx, auth.Entry{Action: "pass.flag", Entity: "pass", EntityID: p.ID,
			After: map[string]any{"flag": "released_again", "gate": r.Gate, "source": source, "state": p.State, "offline": r.Offline}}); err != nil {
			return p, err
		}
		if r.Offline {
			return p, nil // the terminal's report is recorded; nothing to tell it
		}
		return p, fault.Conflict("pass", "pass_used")
	}
	if !v.OK { // an offline release of a pass the server would have refused
		if err := s.logCheck(ctx, tx, &p, r.Gate, source, "flag", false, "offline_"+v.Reason); err != nil {
			return p, err
		}
	}
	if err := s.logCheck(ctx, tx, &p, r.Gate, source, "release", true, ""); err != nil {
		return p, err
	}
	p, err = s.get(ctx, tx, "p.id = ?", p.ID)
	if err != nil {
		return p, err
	}
	return p, auth.Record(ctx, tx, auth.Entry{Action: "pass.release", Entity: "pass", EntityID: p.ID,
		After: map[string]any{"gate": r.Gate, "mover_id_last4": r.MoverID, "plate": r.Plate, "offline": r.Offline}})
}

// Mismatch records that the goods did not match the pass: no release, the
// pass is cancelled, and the applicant goes back to the desk for a new one.
func (s *Service) Mismatch(ctx context.Context, text, gate, note, source string) (Pass, error) {
	var p Pass
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		var err error
		p, err = s.mismatchTx(ctx, tx, text, gate, note, source)
		return err
	})
	return p, err
}

func (s *Service) mismatchTx(ctx context.Context, tx *store.Tx, text, gate, note, source string) (Pass, error) {
	note = strings.TrimSpace(note)
	if utf8.RuneCountInString(note) > 200 {
		return Pass{}, fault.Invalid("note", "too_long", "max", 200)
	}
	v, err := s.verdict(ctx, tx, text, gate)
	if err != nil {
		return Pass{}, err
	}
	if v.Pass == nil {
		return Pass{}, ErrRefused{v}
	}
	if err := s.logCheck(ctx, tx, v.Pass, gate, source, "mismatch", false, ""); err != nil {
		return Pass{}, err
	}
	reason := "goods do not match at " + gate
	if note != "" {
		reason += ": " + note
	}
	return s.cancel(ctx, tx, v.Pass.ID, reason)
}

// GateEvent is a gate terminal's report (fleet events pass_scan,
// pass_release, pass_mismatch), handled in the transaction that stores it.
type GateEvent struct {
	Device  string
	Seq     int64
	Kind    string
	Gate    string
	Data    string
	Mover   string
	Plate   string
	Offline bool
}

// OnGateEvent handles a gate terminal's event inside tx (exactly once, with
// the event): a scan is checked and its verdict returned for the terminal
// (send it after the commit); a release consumes the pass (or records a
// second release and flags it); a mismatch cancels it. Refusals are
// outcomes, recorded; only a database failure is an error.
func (s *Service) OnGateEvent(ctx context.Context, tx *store.Tx, e GateEvent) (*Verdict, error) {
	source := "device:" + e.Device
	ctx = auth.WithActor(ctx, auth.Actor{Kind: "system", Name: source, Role: auth.Guard})
	switch e.Kind {
	case "pass_scan":
		v, err := s.checkTx(ctx, tx, e.Data, e.Gate, source)
		return &v, err
	case "pass_release":
		_, err := s.releaseTx(ctx, tx, Release{Text: e.Data, Gate: e.Gate, MoverID: e.Mover, Plate: e.Plate, Offline: e.Offline}, source)
		return nil, outcome(err)
	case "pass_mismatch":
		_, err := s.mismatchTx(ctx, tx, e.Data, e.Gate, "", source)
		return nil, outcome(err)
	}
	return nil, nil
}

// outcome keeps a database failure and drops a refusal (already recorded).
func outcome(err error) error {
	var refused ErrRefused
	if err == nil || errors.As(err, &refused) {
		return nil
	}
	if _, ok := fault.As(err); ok {
		return nil
	}
	return err
}

// DutyEntry is a line of the gate's duty log: goods refused without a
// pass, or let through as the shift leader's exception.
type DutyEntry struct {
	ID     int64     `db:"id" json:"id"`
	Gate   string    `db:"gate" json:"gate"`
	Kind   string    `db:"kind" json:"kind"`
	Unit   string    `db:"unit" json:"unit,omitempty"`
	Plate  string    `db:"plate" json:"plate,omitempty"`
	Leader string    `db:"leader" json:"leader,omitempty"`
	Note   string    `db:"note" json:"note"`
	By     string    `db:"by_name" json:"by"`
	At     time.Time `db:"at" json:"at"`
}

// LogDuty writes a duty log line: kind refusal or exception (which names
// the shift leader who decided).
func (s *Service) LogDuty(ctx context.Context, d DutyEntry) (DutyEntry, error) {
	d.Note, d.Leader, d.Unit = strings.TrimSpace(d.Note), strings.TrimSpace(d.Leader), strings.TrimSpace(d.Unit)
	d.Plate = strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(d.Plate), " ", ""))
	switch {
	case !slicesContains(s.gates, d.Gate):
		return d, fault.Invalid("gate", "gate_unknown")
	case d.Kind != "refusal" && d.Kind != "exception":
		return d, fault.Invalid("kind", "duty_kind_invalid")
	case d.Note == "" || utf8.RuneCountInString(d.Note) > 500:
		return d, fault.Invalid("note", "note_required")
	case d.Kind == "exception" && (d.Leader == "" || utf8.RuneCountInString(d.Leader) > 40):
		return d, fault.Invalid("leader", "duty_leader_required")
	case utf8.RuneCountInString(d.Unit) > 20 || len(d.Plate) > 16:
		return d, fault.Invalid("unit", "too_long", "max", 20)
	}
	d.By, d.At = auth.ActorFrom(ctx).Name, s.now()
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		id, err := tx.Insert(ctx, `INSERT INTO duty_log (site_id, gate, kind, unit, plate, leader, note, by_name, at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, s.site.ID, d.Gate, d.Kind, d.Unit, d.Plate, d.Leader, d.Note, d.By, d.At)
		if err != nil {
			return err
		}
		d.ID = id
		return auth.Record(ctx, tx, auth.Entry{Action: "duty_log." + d.Kind, Entity: "duty_log", EntityID: id, After: d})
	})
	return d, err
}

// DutyLog lists a day's duty log (site time), newest first.
func (s *Service) DutyLog(ctx context.Context, day string) ([]DutyEntry, error) {
	from, to, err := s.dayRange(day)
	if err != nil {
		return nil, err
	}
	out := []DutyEntry{}
	err = s.db.Select(ctx, &out, "SELECT id, gate, kind, unit, plate, leader, note, by_name, at FROM duty_log WHERE site_id = ? AND at >= ? AND at < ? ORDER BY id DESC",
		s.site.ID, from, to)
	return out, err
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
