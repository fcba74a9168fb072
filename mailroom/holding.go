package mailroom

import (
	"context"
	"fmt"
	"slices"
	"time"

	"onecard/auth"
	"onecard/fault"
	"onecard/store"
)

// Reminders returns the waiting items not collected ReminderDays or more
// after they came, as of now, and queues a reminder for each: once per
// item and day, however often it is called (run it daily, or from the
// desk). Items already due for return are included (the desk returns
// them; until then the resident is still reminded).
func (s *Service) Reminders(ctx context.Context, now time.Time) ([]Item, error) {
	st, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	today := s.day(now)
	items, err := s.items(ctx, s.db, "i.state = 'waiting' AND i.registered_on <= ? ORDER BY i.registered_at, i.id", addDays(today, -st.ReminderDays))
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return items, nil
	}
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		queued := 0
		for _, it := range items {
			res, err := tx.Exec(ctx, `INSERT INTO mail_notifications (site_id, item_id, unit_id, kind, urgent, reminder_day, state, next_at, created_at, updated_at)
				VALUES (?, ?, ?, 'reminder', ?, ?, 'queued', ?, ?, ?) ON CONFLICT (item_id, kind, reminder_day) DO NOTHING`,
				s.site.ID, it.ID, it.UnitID, false, today, now.UTC(), now.UTC(), now.UTC())
			if err != nil {
				return fmt.Errorf("mailroom: reminder: %w", err)
			}
			if n, _ := res.RowsAffected(); n == 1 {
				queued++
				if err := s.event(ctx, tx, it.ID, "reminder_queued", today); err != nil {
					return err
				}
			}
		}
		if queued == 0 {
			return nil
		}
		tx.AfterCommit(s.wake(&s.noteWake))
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.reminders", Entity: "site", EntityID: s.site.ID,
			After: map[string]any{"day": today, "queued": queued}})
	})
	if err != nil {
		return nil, err
	}
	return items, nil
}

// DueForReturn lists the waiting items whose hold period is over as of
// now (HoldUntil today or earlier), oldest first.
func (s *Service) DueForReturn(ctx context.Context, now time.Time) ([]Item, error) {
	st, err := s.Settings(ctx)
	if err != nil {
		return nil, err
	}
	// The shortest hold bounds the query; each item's own hold decides.
	shortest := min(st.HoldDays, st.MovedOutHoldDays, st.ConsentHoldDays)
	today := s.day(now)
	items, err := s.items(ctx, s.db, "i.state = 'waiting' AND i.registered_on <= ? ORDER BY i.registered_at, i.id", addDays(today, -shortest))
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(items, func(it Item) bool { return it.HoldUntil > today }), nil
}

// ReturnToCourier records waiting items as returned to the courier or the
// post, with a note (which courier took them, the waybill), frees their
// doors, ends their pickup codes and tells the residents. Items still
// within their hold period may be returned too (a refused parcel): the
// note says why.
func (s *Service) ReturnToCourier(ctx context.Context, ids []int64, note string) ([]Item, error) {
	a, err := person(ctx)
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 || len(ids) > 200 {
		return nil, fault.Invalid("item_ids", "items_required")
	}
	note, err = text("note", note, 200, fault.Invalid("note", "return_note_required"))
	if err != nil {
		return nil, err
	}
	var out []Item
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		for _, id := range ids {
			after, err := s.changeWaiting(ctx, tx, id, "mail_item.return", "returned", note, func(before Item) error {
				var busy int
				if err := tx.Get(ctx, &busy, "SELECT COUNT(*) FROM mail_locker_commands WHERE item_id = ? AND state IN "+activeCmd, id); err != nil {
					return err
				}
				if busy > 0 {
					return fault.Conflict("item", "door_busy")
				}
				if _, err := tx.Exec(ctx, `UPDATE mail_items SET state = 'returned', returned_at = ?, return_note = ?, handed_by = ?, attention = '', updated_at = ?
					WHERE id = ? AND state = 'waiting'`, now, note, a.Name, now, id); err != nil {
					return err
				}
				if err := s.revokeCode(ctx, tx, id); err != nil {
					return err
				}
				if err := s.cancelNotices(ctx, tx, id); err != nil {
					return err
				}
				_, err := tx.Exec(ctx, `INSERT INTO mail_notifications (site_id, item_id, unit_id, kind, urgent, state, next_at, created_at, updated_at)
					VALUES (?, ?, ?, 'returned', ?, 'queued', ?, ?, ?) ON CONFLICT (item_id, kind, reminder_day) DO NOTHING`,
					s.site.ID, id, before.UnitID, false, now, now, now)
				return err
			})
			if err != nil {
				return err
			}
			out = append(out, after)
		}
		tx.AfterCommit(s.wake(&s.noteWake))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
