package mailroom

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"image/png"
	"math/big"
	"regexp"
	"slices"
	"strings"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// hashCode hashes a pickup code with the site's salt. Six digits can be
// tried offline whatever the hash: what protects them is the online
// lockout, and that a code is used once.
func hashCode(salt, code string) string {
	h := sha256.Sum256([]byte("onecard/mailroom/" + salt + "/" + code))
	return hex.EncodeToString(h[:])
}

func newCode() string {
	n, err := rand.Int(rand.Reader, big.NewInt(1_000_000))
	if err != nil {
		panic(fmt.Sprint("mailroom: ", err))
	}
	return fmt.Sprintf("%06d", n.Int64())
}

// issueCode gives an item a new pickup code (revoking any other) and puts
// it on the item's queued arrival notice, or queues a code notice.
func (s *Service) issueCode(ctx context.Context, tx *store.Tx, itemID int64) error {
	st, err := s.Settings(ctx)
	if err != nil {
		return err
	}
	if err := s.revokeCode(ctx, tx, itemID); err != nil {
		return err
	}
	var code, h string
	for range 20 { // codes in use are few; a clash is rare
		code = newCode()
		h = hashCode(st.salt, code)
		var n int
		if err := tx.Get(ctx, &n, "SELECT COUNT(*) FROM mail_pickup_codes WHERE site_id = ? AND code_hash = ? AND state = 'active'", s.site.ID, h); err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	now := s.now()
	if _, err := tx.Exec(ctx, "INSERT INTO mail_pickup_codes (site_id, item_id, code_hash, state, created_at) VALUES (?, ?, ?, 'active', ?)",
		s.site.ID, itemID, h, now); err != nil {
		return fmt.Errorf("mailroom: pickup code: %w", err)
	}
	res, err := tx.Exec(ctx, "UPDATE mail_notifications SET secret = ?, next_at = ?, updated_at = ? WHERE item_id = ? AND kind = 'arrival' AND state = 'queued'",
		code, now, now, itemID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO mail_notifications (site_id, item_id, unit_id, kind, urgent, secret, state, next_at, created_at, updated_at)
			SELECT site_id, id, unit_id, 'code', ?, ?, 'queued', ?, ?, ? FROM mail_items WHERE id = ?`, true, code, now, now, now, itemID); err != nil {
			return fmt.Errorf("mailroom: queue code notice: %w", err)
		}
	}
	tx.AfterCommit(s.wake(&s.noteWake))
	return s.event(ctx, tx, itemID, "code_issued", "")
}

// revokeCode ends an item's active code and erases it from notices not
// yet sent.
func (s *Service) revokeCode(ctx context.Context, tx *store.Tx, itemID int64) error {
	if _, err := tx.Exec(ctx, "UPDATE mail_pickup_codes SET state = 'revoked' WHERE item_id = ? AND state = 'active'", itemID); err != nil {
		return err
	}
	// A code notice without its code says nothing: it goes; an arrival
	// notice goes without the code (or with the next one).
	if _, err := tx.Exec(ctx, "UPDATE mail_notifications SET state = 'cancelled', secret = NULL, updated_at = ? WHERE item_id = ? AND kind = 'code' AND state IN ('queued', 'failed')",
		s.now(), itemID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "UPDATE mail_notifications SET secret = NULL WHERE item_id = ? AND secret IS NOT NULL AND state <> 'sending'", itemID)
	return err
}

// ReissueCode gives a locker item a new pickup code and sends it (the
// resident lost the message); the old code stops working.
func (s *Service) ReissueCode(ctx context.Context, itemID int64) error {
	if _, err := staff(ctx); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		it, err := s.waitingItem(ctx, tx, itemID)
		if err != nil {
			return err
		}
		if !it.InLocker {
			return fault.Conflict("item", "item_not_in_locker")
		}
		if err := s.issueCode(ctx, tx, itemID); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail_item.code_reissue", Entity: "mail_item", EntityID: itemID})
	})
}

var codeRE = regexp.MustCompile(`^\d{6}$`)

// PickupByCode checks a pickup code entered at source (a kiosk's code)
// and returns the item it opens. The code is used up; the kiosk then has
// PickupWindow to OpenForPickup. Wrong codes are counted per source in the
// database: CodeAttempts of them lock the source for CodeLockMinutes
// (pickup_locked, with minutes). An item to be signed for is returned
// with CollectAt "desk" and cannot be opened here.
func (s *Service) PickupByCode(ctx context.Context, source, code string) ([]Item, error) {
	if _, err := operator(ctx); err != nil {
		return nil, err
	}
	source = strings.TrimSpace(source)
	if source == "" || len(source) > 60 {
		return nil, fault.Invalid("source", "source_required")
	}
	code = strings.TrimSpace(code)
	if !codeRE.MatchString(code) {
		return nil, fault.Invalid("code", "pickup_code_format")
	}
	st, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	var out []Item
	var locked *fault.Error
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		var until *time.Time
		if err := tx.Get(ctx, &until, "SELECT locked_until FROM mail_code_failures WHERE site_id = ? AND source = ?", s.site.ID, source); err != nil && !store.IsNoRows(err) {
			return err
		}
		if until != nil && until.After(now) {
			return lockedErr(until.Sub(now))
		}
		var row struct {
			ID     int64 `db:"id"`
			ItemID int64 `db:"item_id"`
		}
		err := tx.Get(ctx, &row, `SELECT c.id, c.item_id FROM mail_pickup_codes c JOIN mail_items i ON i.id = c.item_id
			WHERE c.site_id = ? AND c.code_hash = ? AND c.state = 'active' AND i.state = 'waiting'`, s.site.ID, hashCode(st.salt, code))
		if store.IsNoRows(err) {
			var failures int
			if err := tx.Get(ctx, &failures, `INSERT INTO mail_code_failures (site_id, source, failures, updated_at) VALUES (?, ?, 1, ?)
				ON CONFLICT (site_id, source) DO UPDATE SET failures = mail_code_failures.failures + 1, updated_at = excluded.updated_at
				RETURNING failures`, s.site.ID, source, now); err != nil {
				return err
			}
			if failures < st.CodeAttempts {
				return nil // committed: the failure counts
			}
			lock := time.Duration(st.CodeLockMinutes) * time.Minute
			if _, err := tx.Exec(ctx, "UPDATE mail_code_failures SET failures = 0, locked_until = ? WHERE site_id = ? AND source = ?",
				now.Add(lock), s.site.ID, source); err != nil {
				return err
			}
			locked = lockedErr(lock)
			s.log.Warn("mailroom: pickup codes locked", "source", source)
			return auth.Record(ctx, tx, auth.Entry{Action: "mail.pickup_locked", Entity: "pickup_source", EntityID: source})
		}
		if err != nil {
			return err
		}
		it, err := s.item(ctx, tx, row.ItemID)
		if err != nil {
			return err
		}
		out = []Item{it}
		if _, err := tx.Exec(ctx, "UPDATE mail_code_failures SET failures = 0, updated_at = ? WHERE site_id = ? AND source = ?", now, s.site.ID, source); err != nil {
			return err
		}
		if it.CollectAt != "locker" {
			return nil // to be signed for at the desk: the code stays
		}
		res, err := tx.Exec(ctx, "UPDATE mail_pickup_codes SET state = 'used', used_at = ?, used_by = ? WHERE id = ? AND state = 'active'", now, source, row.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			out = nil
			return fault.Invalid("code", "pickup_code_wrong")
		}
		if err := s.event(ctx, tx, it.ID, "code_used", source); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail_item.code_used", Entity: "mail_item", EntityID: it.ID, After: map[string]any{"source": source}})
	})
	switch {
	case err != nil:
		return nil, err
	case locked != nil:
		return nil, locked
	case out == nil:
		return nil, fault.Invalid("code", "pickup_code_wrong")
	}
	return out, nil
}

func lockedErr(d time.Duration) *fault.Error {
	return &fault.Error{Kind: fault.ErrLocked, Code: "pickup_locked", Args: map[string]any{"minutes": int((d + time.Minute - 1) / time.Minute)}}
}

// OpenForPickup queues the opening of a locker item's door for the
// resident at source, whose pickup code PickupByCode accepted within
// PickupWindow. The item is collected once the door has opened and closed
// again; a door that does not open leaves it waiting, marked for
// attention, and the kiosk may try again within the window.
func (s *Service) OpenForPickup(ctx context.Context, itemID int64, source string) (Command, error) {
	return s.openForPickup(ctx, itemID, source, "")
}

// OpenForOwner is OpenForPickup for a resident the kiosk at source has
// identified (their one-card, or the unit and its PIN) as living in unit:
// no code needed for the unit's own items; the item's code is used up.
func (s *Service) OpenForOwner(ctx context.Context, itemID int64, source, unit string) (Command, error) {
	if strings.TrimSpace(unit) == "" {
		return Command{}, fault.Invalid("unit", "unit_required")
	}
	return s.openForPickup(ctx, itemID, source, unit)
}

func (s *Service) openForPickup(ctx context.Context, itemID int64, source, unit string) (Command, error) {
	if _, err := operator(ctx); err != nil {
		return Command{}, err
	}
	if s.locker == nil {
		return Command{}, fault.Invalid("storage", "locker_unavailable")
	}
	source = strings.TrimSpace(source)
	var out Command
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		it, err := s.waitingItem(ctx, tx, itemID)
		if err != nil {
			return err
		}
		if it.CollectAt != "locker" {
			return fault.Forbidden("collect_at_desk")
		}
		if unit != "" {
			// Identified at the kiosk: the unit's own items only; the
			// code the resident was sent stops working.
			if it.Unit != unit {
				return fault.NotFound("item_not_found")
			}
			if _, err := tx.Exec(ctx, "UPDATE mail_pickup_codes SET state = 'used', used_at = ?, used_by = ? WHERE item_id = ? AND state = 'active'",
				s.now(), source, itemID); err != nil {
				return err
			}
		} else {
			var n int
			if err := tx.Get(ctx, &n, `SELECT COUNT(*) FROM mail_pickup_codes WHERE item_id = ? AND state = 'used' AND used_by = ? AND used_at > ?`,
				itemID, source, s.now().Add(-s.o.PickupWindow)); err != nil {
				return err
			}
			if n == 0 {
				return fault.Forbidden("pickup_code_required")
			}
		}
		var doorID int64
		if err := tx.Get(ctx, &doorID, "SELECT door_id FROM mail_items WHERE id = ?", itemID); err != nil {
			return err
		}
		id, err := s.queueOpen(ctx, tx, doorID, &itemID, "pickup", source)
		if err != nil {
			return err
		}
		if out, err = s.command(ctx, tx, id); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail_item.pickup_open", Entity: "mail_item", EntityID: itemID,
			After: map[string]any{"door": out.Door, "command": id, "source": source}})
	})
	return out, err
}

// Collector kinds at the desk (SOP §3: items to be signed for go to the
// recipient in person or a named agent; ordinary mail may go to the
// household).
const (
	CollectorRecipient = "recipient"
	CollectorHousehold = "household"
	CollectorAgent     = "agent"
)

// MaxSignature is the largest signature image taken (200 KB).
const MaxSignature = 200 << 10

var pngMagic = []byte("\x89PNG\r\n\x1a\n")

var last4RE = regexp.MustCompile(`^[0-9A-Z]{4}$`)

// CollectInput hands items over at the desk.
type CollectInput struct {
	ItemIDs []int64 `json:"item_ids"`
	// CollectorKind is recipient, household or agent; CollectorName who
	// took them; an agent also gives the last four characters of their ID.
	CollectorKind string `json:"collector_kind"`
	CollectorName string `json:"collector_name"`
	AgentIDLast4  string `json:"agent_id_last4,omitempty"`
	// SignaturePNG is the collector's signature from the desk's pad (PNG,
	// at most MaxSignature); required when an item needs a signature.
	SignaturePNG []byte `json:"-"`
}

// Collect hands waiting items of one unit over at the desk: who took them
// and when, the signature if any item needs one. An item in a locker door
// is taken out by staff (OpenDoor, or the service key); its door is free
// again.
func (s *Service) Collect(ctx context.Context, in CollectInput) ([]Item, error) {
	a, err := person(ctx)
	if err != nil {
		return nil, err
	}
	if len(in.ItemIDs) == 0 || len(in.ItemIDs) > 50 {
		return nil, fault.Invalid("item_ids", "items_required")
	}
	ids := slices.Clone(in.ItemIDs)
	slices.Sort(ids)
	if len(slices.Compact(ids)) != len(in.ItemIDs) {
		return nil, fault.Invalid("item_ids", "items_repeated")
	}
	if !slices.Contains([]string{CollectorRecipient, CollectorHousehold, CollectorAgent}, in.CollectorKind) {
		return nil, fault.Invalid("collector_kind", "collector_kind_invalid")
	}
	if in.CollectorName, err = text("collector_name", in.CollectorName, 40, fault.Invalid("collector_name", "collector_name_required")); err != nil {
		return nil, err
	}
	in.AgentIDLast4 = strings.ToUpper(strings.TrimSpace(in.AgentIDLast4))
	if in.CollectorKind == CollectorAgent {
		if !last4RE.MatchString(in.AgentIDLast4) {
			return nil, fault.Invalid("agent_id_last4", "id_last4_invalid")
		}
	} else {
		in.AgentIDLast4 = ""
	}
	if len(in.SignaturePNG) > 0 {
		if err := checkPNG(in.SignaturePNG); err != nil {
			return nil, err
		}
	}
	var out []Item
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		var items []Item
		for _, id := range in.ItemIDs {
			it, err := s.waitingItem(ctx, tx, id)
			if err != nil {
				return err
			}
			if len(items) > 0 && it.UnitID != items[0].UnitID {
				return fault.Invalid("item_ids", "items_mixed_units")
			}
			if it.NeedsSignature && in.CollectorKind == CollectorHousehold {
				return fault.Invalid("collector_kind", "signature_by_recipient")
			}
			if it.NeedsSignature && len(in.SignaturePNG) == 0 {
				return fault.Invalid("signature", "signature_required")
			}
			var busy int
			if err := tx.Get(ctx, &busy, "SELECT COUNT(*) FROM mail_locker_commands WHERE item_id = ? AND state IN "+activeCmd, id); err != nil {
				return err
			}
			if busy > 0 {
				return fault.Conflict("item", "door_busy")
			}
			items = append(items, it)
		}
		now := s.now()
		var sigID *int64
		if len(in.SignaturePNG) > 0 {
			sum := sha256.Sum256(in.SignaturePNG)
			id, err := tx.Insert(ctx, "INSERT INTO mail_signatures (site_id, png_base64, sha256, created_at) VALUES (?, ?, ?, ?) RETURNING id",
				s.site.ID, base64.StdEncoding.EncodeToString(in.SignaturePNG), hex.EncodeToString(sum[:]), now)
			if err != nil {
				return fmt.Errorf("mailroom: signature: %w", err)
			}
			sigID = &id
		}
		for _, before := range items {
			res, err := tx.Exec(ctx, `UPDATE mail_items SET state = 'collected', collected_at = ?, collector_kind = ?, collector_name = ?,
				agent_id_last4 = ?, signature_id = ?, collected_via = 'desk', handed_by = ?, attention = '', updated_at = ? WHERE id = ? AND state = 'waiting'`,
				now, in.CollectorKind, in.CollectorName, in.AgentIDLast4, sigID, a.Name, now, before.ID)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fault.Conflict("item", "item_not_waiting")
			}
			if err := s.revokeCode(ctx, tx, before.ID); err != nil {
				return err
			}
			if err := s.cancelNotices(ctx, tx, before.ID); err != nil {
				return err
			}
			if err := s.event(ctx, tx, before.ID, "collected", fmt.Sprintf("desk, %s %s", in.CollectorKind, in.CollectorName)); err != nil {
				return err
			}
			after, err := s.item(ctx, tx, before.ID)
			if err != nil {
				return err
			}
			out = append(out, after)
			if err := auth.Record(ctx, tx, auth.Entry{Action: "mail_item.collect", Entity: "mail_item", EntityID: before.ID, Before: before, After: after}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// checkPNG accepts a PNG image of at most MaxSignature bytes.
func checkPNG(b []byte) error {
	if len(b) > MaxSignature {
		return fault.Invalid("signature", "signature_too_large", "max_kb", MaxSignature>>10)
	}
	if !bytes.HasPrefix(b, pngMagic) {
		return fault.Invalid("signature", "signature_not_png")
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(b))
	if err != nil || cfg.Width < 1 || cfg.Height < 1 || cfg.Width > 4000 || cfg.Height > 4000 {
		return fault.Invalid("signature", "signature_not_png")
	}
	return nil
}

// Signature returns the signature an item was collected with (PNG), for
// the desk to show; signature_not_found when there is none or it was
// purged after the retention period.
func (s *Service) Signature(ctx context.Context, itemID int64) ([]byte, error) {
	var b64 string
	err := s.db.Get(ctx, &b64, `SELECT g.png_base64 FROM mail_items i JOIN mail_signatures g ON g.id = i.signature_id
		WHERE i.id = ? AND i.site_id = ?`, itemID, s.site.ID)
	if store.IsNoRows(err) || (err == nil && b64 == "") {
		return nil, fault.NotFound("signature_not_found")
	}
	if err != nil {
		return nil, err
	}
	return base64.StdEncoding.DecodeString(b64)
}

// PurgeSignatures blanks the images of signatures older than the
// retention period (the rows and their hashes stay) and returns how many
// it blanked. Run it daily.
func (s *Service) PurgeSignatures(ctx context.Context, now time.Time) (int, error) {
	st, err := s.Settings(ctx)
	if err != nil {
		return 0, err
	}
	var n int64
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE mail_signatures SET png_base64 = '', purged_at = ? WHERE site_id = ? AND purged_at IS NULL AND created_at < ?",
			now.UTC(), s.site.ID, now.UTC().AddDate(0, 0, -st.SignatureRetentionDays))
		if err != nil {
			return err
		}
		if n, _ = res.RowsAffected(); n == 0 {
			return nil
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.signatures_purge", Entity: "site", EntityID: s.site.ID, After: map[string]any{"count": n}})
	})
	return int(n), err
}
