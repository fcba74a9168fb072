package mailroom

import (
	"context"
	"fmt"
	"slices"
	"time"

	"onecard/auth"
	"onecard/devices/scanner"
	"onecard/estate"
	"onecard/fault"
	"onecard/store"
)

// Methods of outgoing mail.
var Methods = []string{Letter, Registered, Parcel, Express}

// OutgoingInput is mail a resident hands in at the desk to send (SOP §3:
// unit, sender, addressee, method).
type OutgoingInput struct {
	Unit      string `json:"unit"`
	Sender    string `json:"sender"`
	Addressee string `json:"addressee"`
	// Method is letter, registered, parcel or express.
	Method string `json:"method"`
	// Tracking is the waybill number, when there is one already.
	Tracking string `json:"tracking,omitempty"`
}

// Outgoing is a piece of outgoing mail.
type Outgoing struct {
	ID           int64     `db:"id" json:"id"`
	Unit         string    `db:"unit" json:"unit"`
	Sender       string    `db:"sender" json:"sender"`
	Addressee    string    `db:"addressee" json:"addressee"`
	Method       string    `db:"method" json:"method"`
	Tracking     *string   `db:"tracking" json:"tracking,omitempty"`
	RegisteredOn string    `db:"registered_on" json:"registered_on"`
	RegisteredAt time.Time `db:"registered_at" json:"registered_at"`
	RegisteredBy string    `db:"registered_by" json:"registered_by"`
}

// RegisterOutgoing records outgoing mail.
func (s *Service) RegisterOutgoing(ctx context.Context, in OutgoingInput) (Outgoing, error) {
	a, err := staff(ctx)
	if err != nil {
		return Outgoing{}, err
	}
	if in.Sender, err = text("sender", in.Sender, 40, fault.Invalid("sender", "sender_required")); err != nil {
		return Outgoing{}, err
	}
	if in.Addressee, err = text("addressee", in.Addressee, 200, fault.Invalid("addressee", "addressee_required")); err != nil {
		return Outgoing{}, err
	}
	if !slices.Contains(Methods, in.Method) {
		return Outgoing{}, fault.Invalid("method", "mail_method_invalid")
	}
	var tracking *string
	if t := scanner.Normalize(in.Tracking); t != "" {
		if scanner.ValidTracking(t) != nil {
			return Outgoing{}, fault.Invalid("tracking", "tracking_invalid")
		}
		tracking = &t
	}
	var out Outgoing
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		u, err := s.unit(ctx, tx, in.Unit)
		if err != nil {
			return err
		}
		now := s.now()
		id, err := tx.Insert(ctx, `INSERT INTO mail_outgoing (site_id, unit_id, sender, addressee, method, tracking, registered_on, registered_at, registered_by)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, s.site.ID, u.id, in.Sender, in.Addressee, in.Method, tracking, s.day(now), now, a.Name)
		if err != nil {
			return fmt.Errorf("mailroom: outgoing: %w", err)
		}
		out = Outgoing{ID: id, Unit: u.code, Sender: in.Sender, Addressee: in.Addressee, Method: in.Method, Tracking: tracking,
			RegisteredOn: s.day(now), RegisteredAt: now, RegisteredBy: a.Name}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail_outgoing.register", Entity: "mail_outgoing", EntityID: id, After: out})
	})
	return out, err
}

// OutgoingOn lists the outgoing mail registered on a day, in order.
func (s *Service) OutgoingOn(ctx context.Context, day string) ([]Outgoing, error) {
	day, err := estate.ParseDate("day", day)
	if err != nil {
		return nil, err
	}
	out := []Outgoing{}
	err = s.db.Select(ctx, &out, `SELECT o.id, u.code AS unit, o.sender, o.addressee, o.method, o.tracking, o.registered_on, o.registered_at,
		o.registered_by FROM mail_outgoing o JOIN units u ON u.id = o.unit_id WHERE o.site_id = ? AND o.registered_on = ? ORDER BY o.id`, s.site.ID, day)
	return out, err
}
