package mailroom

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"onecard/auth"
	"onecard/devices"
	"onecard/fault"
	"onecard/store"
)

// Door sizes, smallest first.
var Sizes = []string{"S", "M", "L"}

const sizeRank = "CASE d.size WHEN 'S' THEN 1 WHEN 'M' THEN 2 ELSE 3 END"

// Door states as the desk sees them.
const (
	DoorFree     = "free"     // empty, usable
	DoorAssigned = "assigned" // holds (or awaits) a waiting item
	DoorOpening  = "opening"  // an open command is queued or being sent
	DoorOpen     = "open"     // the sensor said open; watched until it closes
	DoorFlagged  = "flagged"  // out of use until staff clear it
)

// Why a door is flagged.
const (
	FlagNotOpened = "not_opened" // the board took the unlock, the door stayed latched
	FlagNoAnswer  = "no_answer"  // the board did not answer
	FlagLeftOpen  = "left_open"  // open longer than the alert time (cleared when it closes)
	FlagManual    = "manual"     // flagged by staff
)

// DoorInput configures one door of the bank.
type DoorInput struct {
	Number int    `json:"number"`
	Size   string `json:"size"`
}

// Door is a locker door with its state.
type Door struct {
	ID         int64      `db:"id" json:"-"`
	Number     int        `db:"number" json:"number"`
	Size       string     `db:"size" json:"size"`
	Flagged    bool       `db:"flagged" json:"flagged"`
	FlagReason string     `db:"flag_reason" json:"flag_reason,omitempty"`
	FlagNote   string     `db:"flag_note" json:"flag_note,omitempty"`
	FlaggedAt  *time.Time `db:"flagged_at" json:"flagged_at,omitempty"`
	// State is free, assigned, opening, open or flagged (an opening or open
	// door shows so even when flagged).
	State string `db:"-" json:"state"`
	// Item is the waiting item assigned to the door, if any.
	Item *Item `db:"-" json:"item,omitempty"`
	// Command is the open in progress, if any.
	Command *Command `db:"-" json:"command,omitempty"`
}

// Command is an open of a locker door, from the outbox.
type Command struct {
	ID      int64  `db:"id" json:"id"`
	Door    int    `db:"door" json:"door"`
	DoorID  int64  `db:"door_id" json:"-"`
	ItemID  *int64 `db:"item_id" json:"item_id,omitempty"`
	Purpose string `db:"purpose" json:"purpose"` // store, pickup, service
	// State is queued, sent, open, done or failed.
	State string `db:"state" json:"state"`
	// Reason says why a command failed: not_opened, no_answer,
	// port_failed, interrupted or error; Detail is the driver's message.
	Reason      string     `db:"reason" json:"reason,omitempty"`
	Detail      string     `db:"detail" json:"detail,omitempty"`
	Attempts    int        `db:"attempts" json:"attempts"`
	RequestedBy string     `db:"requested_by" json:"requested_by"`
	Source      string     `db:"source" json:"source,omitempty"`
	CreatedAt   time.Time  `db:"created_at" json:"created_at"`
	SentAt      *time.Time `db:"sent_at" json:"sent_at,omitempty"`
	OpenedAt    *time.Time `db:"opened_at" json:"opened_at,omitempty"`
	ClosedAt    *time.Time `db:"closed_at" json:"closed_at,omitempty"`
	UpdatedAt   time.Time  `db:"updated_at" json:"updated_at"`
}

const cmdCols = `c.id, d.number AS door, c.door_id, c.item_id, c.purpose, c.state, c.reason, c.detail, c.attempts, c.requested_by,
	c.source, c.created_at, c.sent_at, c.opened_at, c.closed_at, c.updated_at`
const cmdFrom = ` FROM mail_locker_commands c JOIN mail_doors d ON d.id = c.door_id`

// Command states.
const (
	CmdQueued = "queued"
	CmdSent   = "sent"
	CmdOpen   = "open"
	CmdDone   = "done"
	CmdFailed = "failed"
)

const activeCmd = "('queued', 'sent', 'open')"

// SetDoors configures doors of the bank: each number (1 to the bank's
// size) with its size. Doors not named are left as they are; nothing is
// removed (flag a door to keep it out of use).
func (s *Service) SetDoors(ctx context.Context, doors []DoorInput) error {
	if _, err := staff(ctx); err != nil {
		return err
	}
	return s.setDoors(ctx, doors)
}

// InitDoors configures a bank none of whose doors is configured yet: n
// doors, the first third small, the next medium, the last large (the
// desk changes them). onecard serve runs it at start, as the system.
func (s *Service) InitDoors(ctx context.Context, n int) error {
	doors, err := s.Doors(ctx)
	if err != nil || len(doors) > 0 {
		return err
	}
	in := make([]DoorInput, n)
	for i := range in {
		size := "S"
		switch {
		case i >= 2*n/3:
			size = "L"
		case i >= n/3:
			size = "M"
		}
		in[i] = DoorInput{Number: i + 1, Size: size}
	}
	return s.setDoors(auth.WithActor(ctx, auth.System), in)
}

func (s *Service) setDoors(ctx context.Context, doors []DoorInput) error {
	most := 256
	if s.locker != nil {
		most = s.locker.Doors()
	}
	if len(doors) == 0 {
		return fault.Invalid("doors", "doors_required")
	}
	seen := map[int]bool{}
	for _, d := range doors {
		if d.Number < 1 || d.Number > most || seen[d.Number] {
			return fault.Invalid("number", "door_number_invalid", "number", d.Number, "max", most)
		}
		seen[d.Number] = true
		if !slices.Contains(Sizes, d.Size) {
			return fault.Invalid("size", "door_size_invalid")
		}
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		for _, d := range doors {
			if _, err := tx.Exec(ctx, `INSERT INTO mail_doors (site_id, number, size, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (site_id, number) DO UPDATE SET size = excluded.size, updated_at = excluded.updated_at`,
				s.site.ID, d.Number, d.Size, now, now); err != nil {
				return fmt.Errorf("mailroom: door %d: %w", d.Number, err)
			}
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.doors", Entity: "site", EntityID: s.site.ID, After: doors})
	})
}

// Doors lists the bank's doors with their state, assigned item and
// command in progress, by number.
func (s *Service) Doors(ctx context.Context) ([]Door, error) {
	var doors []Door
	if err := s.db.Select(ctx, &doors, `SELECT id, number, size, flagged, flag_reason, flag_note, flagged_at FROM mail_doors
		WHERE site_id = ? ORDER BY number`, s.site.ID); err != nil {
		return nil, fmt.Errorf("mailroom: doors: %w", err)
	}
	items, err := s.items(ctx, s.db, "i.state = 'waiting' AND i.door_id IS NOT NULL")
	if err != nil {
		return nil, err
	}
	var cmds []Command
	if err := s.db.Select(ctx, &cmds, "SELECT "+cmdCols+cmdFrom+" WHERE c.site_id = ? AND c.state IN "+activeCmd, s.site.ID); err != nil {
		return nil, fmt.Errorf("mailroom: commands: %w", err)
	}
	for i := range doors {
		d := &doors[i]
		for j := range items {
			if items[j].Door != nil && *items[j].Door == d.Number {
				d.Item = &items[j]
			}
		}
		for j := range cmds {
			if cmds[j].DoorID == d.ID {
				d.Command = &cmds[j]
			}
		}
		switch {
		case d.Command != nil && d.Command.State == CmdOpen:
			d.State = DoorOpen
		case d.Command != nil:
			d.State = DoorOpening
		case d.Flagged:
			d.State = DoorFlagged
		case d.Item != nil:
			d.State = DoorAssigned
		default:
			d.State = DoorFree
		}
	}
	return doors, nil
}

// FlagDoor keeps a door out of use (a broken lock, a parcel forgotten in
// it) until UnflagDoor.
func (s *Service) FlagDoor(ctx context.Context, number int, note string) error {
	if _, err := staff(ctx); err != nil {
		return err
	}
	note, err := text("note", note, 200, fault.Invalid("note", "flag_note_required"))
	if err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		id, err := s.doorID(ctx, tx, number)
		if err != nil {
			return err
		}
		if err := s.flag(ctx, tx, id, FlagManual, note); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.door_flag", Entity: "mail_door", EntityID: id, After: map[string]any{"number": number, "note": note}})
	})
}

// UnflagDoor puts a flagged door back in use (staff checked it).
func (s *Service) UnflagDoor(ctx context.Context, number int) error {
	if _, err := staff(ctx); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *store.Tx) error {
		id, err := s.doorID(ctx, tx, number)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE mail_doors SET flagged = ?, flag_reason = '', flag_note = '', flagged_at = NULL, updated_at = ? WHERE id = ?",
			false, s.now(), id); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.door_unflag", Entity: "mail_door", EntityID: id, After: map[string]any{"number": number}})
	})
}

func (s *Service) doorID(ctx context.Context, q store.Q, number int) (int64, error) {
	var id int64
	err := q.Get(ctx, &id, "SELECT id FROM mail_doors WHERE site_id = ? AND number = ?", s.site.ID, number)
	if store.IsNoRows(err) {
		return 0, fault.NotFound("door_not_found")
	}
	return id, err
}

func (s *Service) flag(ctx context.Context, q store.Q, doorID int64, reason, note string) error {
	_, err := q.Exec(ctx, "UPDATE mail_doors SET flagged = ?, flag_reason = ?, flag_note = ?, flagged_at = ?, updated_at = ? WHERE id = ?",
		true, reason, trunc(note, 300), s.now(), s.now(), doorID)
	return err
}

// queueOpen writes an open command to the outbox in tx. A door with a
// command under way already is door_busy (the unique index decides).
func (s *Service) queueOpen(ctx context.Context, tx *store.Tx, doorID int64, itemID *int64, purpose, source string) (int64, error) {
	now := s.now()
	id, err := tx.Insert(ctx, `INSERT INTO mail_locker_commands (site_id, door_id, item_id, purpose, state, requested_by, source, created_at, updated_at)
		VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?) RETURNING id`, s.site.ID, doorID, itemID, purpose, auth.ActorFrom(ctx).Name, source, now, now)
	if store.IsUnique(err) {
		return 0, fault.Conflict("door", "door_busy")
	}
	if err != nil {
		return 0, err
	}
	tx.AfterCommit(s.wake(&s.lockWake))
	return id, nil
}

func (s *Service) command(ctx context.Context, q store.Q, id int64) (Command, error) {
	var c Command
	err := q.Get(ctx, &c, "SELECT "+cmdCols+cmdFrom+" WHERE c.id = ? AND c.site_id = ?", id, s.site.ID)
	if store.IsNoRows(err) {
		return c, fault.NotFound("command_not_found")
	}
	return c, err
}

// PlaceInLocker assigns a waiting item the first free door of size or
// larger (smallest first, then by number) and queues the door's opening
// for the clerk. The item is in the locker once the door has closed on it
// (RunLocker sees that, issues the pickup code and sends it). A door is
// never given to two items: two clerks placing at once get two doors, or
// one of them door_none_free.
func (s *Service) PlaceInLocker(ctx context.Context, itemID int64, size string) (Command, error) {
	if _, err := staff(ctx); err != nil {
		return Command{}, err
	}
	if s.locker == nil {
		return Command{}, fault.Invalid("storage", "locker_unavailable")
	}
	rank := slices.Index(Sizes, size) + 1
	if rank == 0 {
		return Command{}, fault.Invalid("size", "door_size_invalid")
	}
	var out Command
	for try := 0; ; try++ {
		err := s.db.Tx(ctx, func(tx *store.Tx) error {
			it, err := s.waitingItem(ctx, tx, itemID)
			if err != nil {
				return err
			}
			if it.Door != nil {
				return fault.Conflict("item", "item_in_locker", "door", *it.Door)
			}
			if it.NeedsSignature {
				return fault.Invalid("storage", "locker_needs_signature")
			}
			var door struct {
				ID     int64 `db:"id"`
				Number int   `db:"number"`
			}
			err = tx.Get(ctx, &door, `SELECT d.id, d.number FROM mail_doors d WHERE d.site_id = ? AND d.flagged = ? AND `+sizeRank+` >= ?
				AND NOT EXISTS (SELECT 1 FROM mail_items i WHERE i.door_id = d.id AND i.state = 'waiting')
				AND NOT EXISTS (SELECT 1 FROM mail_locker_commands c WHERE c.door_id = d.id AND c.state IN `+activeCmd+`)
				ORDER BY `+sizeRank+`, d.number LIMIT 1`, s.site.ID, false, rank)
			if store.IsNoRows(err) {
				return fault.Invalid("size", "door_none_free", "size", size)
			}
			if err != nil {
				return err
			}
			now := s.now()
			// The unique index on waiting items' doors decides between two
			// clerks who picked the same door: the second fails here.
			res, err := tx.Exec(ctx, `UPDATE mail_items SET door_id = ?, storage = 'locker', slot = '', stored_at = NULL, attention = '', updated_at = ?
				WHERE id = ? AND state = 'waiting' AND door_id IS NULL`, door.ID, now, itemID)
			if store.IsUnique(err) {
				return errRetry
			}
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n != 1 {
				return fault.Conflict("item", "item_in_locker")
			}
			id, err := s.queueOpen(ctx, tx, door.ID, &itemID, "store", "")
			if fault.Code(err) == "door_busy" {
				return errRetry // taken meanwhile: another door
			}
			if err != nil {
				return err
			}
			if err := s.event(ctx, tx, itemID, "locker_assigned", fmt.Sprintf("door %d", door.Number)); err != nil {
				return err
			}
			if out, err = s.command(ctx, tx, id); err != nil {
				return err
			}
			return auth.Record(ctx, tx, auth.Entry{Action: "mail_item.place", Entity: "mail_item", EntityID: itemID,
				After: map[string]any{"door": door.Number, "command": id}})
		})
		if errors.Is(err, errRetry) && try < 20 {
			continue
		}
		if errors.Is(err, errRetry) {
			return Command{}, fault.Conflict("size", "door_busy")
		}
		return out, err
	}
}

// OpenDoor queues the opening of a door for staff (to take an item out
// for the desk or the courier, to check a flagged door). Nothing changes
// for the items; the command is watched until the door closes.
func (s *Service) OpenDoor(ctx context.Context, number int, reason string) (Command, error) {
	if _, err := staff(ctx); err != nil {
		return Command{}, err
	}
	if s.locker == nil {
		return Command{}, fault.Invalid("storage", "locker_unavailable")
	}
	reason, err := text("reason", reason, 200, fault.Invalid("reason", "reason_required"))
	if err != nil {
		return Command{}, err
	}
	var out Command
	err = s.db.Tx(ctx, func(tx *store.Tx) error {
		doorID, err := s.doorID(ctx, tx, number)
		if err != nil {
			return err
		}
		id, err := s.queueOpen(ctx, tx, doorID, nil, "service", "")
		if err != nil {
			return err
		}
		if out, err = s.command(ctx, tx, id); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.door_open", Entity: "mail_door", EntityID: doorID,
			After: map[string]any{"number": number, "reason": reason, "command": id}})
	})
	return out, err
}

// RetryCommand queues a failed command again (the desk, once the door or
// the board is seen to). A failed placement whose door was freed cannot
// be retried: place the item again.
func (s *Service) RetryCommand(ctx context.Context, id int64) (Command, error) {
	if _, err := staff(ctx); err != nil {
		return Command{}, err
	}
	var out Command
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		c, err := s.command(ctx, tx, id)
		if err != nil {
			return err
		}
		if c.State != CmdFailed {
			return fault.Conflict("command", "command_not_failed")
		}
		if c.ItemID != nil {
			it, err := s.waitingItem(ctx, tx, *c.ItemID)
			if err != nil {
				return err
			}
			if it.Door == nil || *it.Door != c.Door {
				return fault.Conflict("command", "command_not_retryable")
			}
		}
		_, err = tx.Exec(ctx, "UPDATE mail_locker_commands SET state = 'queued', reason = '', detail = '', updated_at = ? WHERE id = ? AND state = 'failed'", s.now(), id)
		if store.IsUnique(err) {
			return fault.Conflict("door", "door_busy")
		}
		if err != nil {
			return err
		}
		tx.AfterCommit(s.wake(&s.lockWake))
		if out, err = s.command(ctx, tx, id); err != nil {
			return err
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.command_retry", Entity: "mail_locker_command", EntityID: id, Before: c, After: out})
	})
	return out, err
}

// Command returns one locker command (the desk and the kiosk follow an
// open with it).
func (s *Service) Command(ctx context.Context, id int64) (Command, error) {
	return s.command(ctx, s.db, id)
}

// Commands lists the commands in progress or failed, and the last few
// done, oldest first.
func (s *Service) Commands(ctx context.Context) ([]Command, error) {
	out := []Command{}
	err := s.db.Select(ctx, &out, "SELECT "+cmdCols+cmdFrom+` WHERE c.site_id = ? AND (c.state <> 'done'
		OR c.id > (SELECT COALESCE(MAX(id), 0) - 20 FROM mail_locker_commands)) ORDER BY c.id`, s.site.ID)
	return out, err
}

// RunLocker delivers queued locker commands to the Locker, oldest first,
// one at a time, and watches the doors it opened until ctx ends. A command
// is marked sent (committed) before the board is told, so one found sent
// at start was interrupted: the door may or may not have opened, so it is
// marked failed for the desk to look at and retry, never repeated by
// itself. An open door is watched: once its sensor says closed, the
// command is done (a placed item is stored and gets its pickup code, a
// picked-up item is collected); one open longer than the alert time is
// flagged. A door that does not open, or whose board does not answer,
// fails the command with the reason and flags the door; a placement's
// door is then freed so the clerk can pick another.
func (s *Service) RunLocker(ctx context.Context) error {
	if s.locker == nil {
		return errors.New("mailroom: no locker bank")
	}
	s.interrupted(ctx)
	wake, done := s.subscribe(&s.lockWake)
	defer done()
	t := time.NewTicker(s.o.LockerPoll)
	defer t.Stop()
	for {
		for ctx.Err() == nil && s.sendOne(ctx) {
		}
		if ctx.Err() == nil {
			s.watch(ctx)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
	}
}

// interrupted fails the commands left sent by a worker that stopped.
func (s *Service) interrupted(ctx context.Context) {
	var ids []int64
	if err := s.db.Select(ctx, &ids, "SELECT id FROM mail_locker_commands WHERE site_id = ? AND state = 'sent'", s.site.ID); err != nil {
		s.log.Error("mailroom: locker commands", "err", err)
		return
	}
	for _, id := range ids {
		s.failCommand(ctx, id, "interrupted", "the server stopped while the door was being opened: check the door, then retry", "", false)
	}
}

// sendOne sends the oldest queued command; false when there was none (or
// the database failed).
func (s *Service) sendOne(ctx context.Context) bool {
	var c Command
	err := s.db.Get(ctx, &c, "SELECT "+cmdCols+cmdFrom+" WHERE c.site_id = ? AND c.state = 'queued' ORDER BY c.id LIMIT 1", s.site.ID)
	if err != nil {
		if !store.IsNoRows(err) && ctx.Err() == nil {
			s.log.Error("mailroom: locker queue", "err", err)
		}
		return false
	}
	now := s.now()
	res, err := s.db.Exec(ctx, "UPDATE mail_locker_commands SET state = 'sent', attempts = attempts + 1, sent_at = ?, updated_at = ? WHERE id = ? AND state = 'queued'",
		now, now, c.ID)
	if err != nil {
		return false
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return true // taken meanwhile
	}
	oerr := s.locker.Open(ctx, c.Door)
	bg := context.WithoutCancel(ctx)
	switch {
	case oerr == nil:
		s.opened(bg, c)
	case ctx.Err() != nil:
		s.failCommand(bg, c.ID, "interrupted", "stopped while the door was being opened: check the door, then retry", "", false)
	case errors.Is(oerr, devices.ErrDoorNotOpened):
		s.log.Warn("mailroom: door did not open", "door", c.Door, "err", oerr)
		s.failCommand(bg, c.ID, "not_opened", oerr.Error(), FlagNotOpened, true)
	case errors.Is(oerr, devices.ErrTimeout):
		s.log.Warn("mailroom: locker board did not answer", "door", c.Door, "err", oerr)
		s.failCommand(bg, c.ID, "no_answer", oerr.Error(), FlagNoAnswer, true)
	case errors.Is(oerr, devices.ErrPortFailed):
		s.log.Error("mailroom: locker port failed", "door", c.Door, "err", oerr)
		s.failCommand(bg, c.ID, "port_failed", oerr.Error(), "", true)
	default:
		s.log.Error("mailroom: locker open", "door", c.Door, "err", oerr)
		s.failCommand(bg, c.ID, "error", oerr.Error(), "", true)
	}
	return true
}

// opened records that a command's door opened.
func (s *Service) opened(ctx context.Context, c Command) {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		if _, err := tx.Exec(ctx, "UPDATE mail_locker_commands SET state = 'open', opened_at = ?, updated_at = ? WHERE id = ?", now, now, c.ID); err != nil {
			return err
		}
		if c.ItemID != nil {
			if _, err := tx.Exec(ctx, "UPDATE mail_items SET attention = '', updated_at = ? WHERE id = ?", now, *c.ItemID); err != nil {
				return err
			}
			if err := s.event(ctx, tx, *c.ItemID, "door_opened", fmt.Sprintf("door %d (%s)", c.Door, c.Purpose)); err != nil {
				return err
			}
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.door_opened", Entity: "mail_locker_command", EntityID: c.ID,
			After: map[string]any{"door": c.Door, "purpose": c.Purpose}})
	})
	if err != nil {
		s.log.Error("mailroom: door opened", "command", c.ID, "err", err)
	}
}

// failCommand marks a command failed with reason; flagReason (if any)
// flags its door. A placement whose door did not open (free true) frees
// the door so the clerk can place the item in another; a pickup's item
// stays waiting in its door, marked for attention.
func (s *Service) failCommand(ctx context.Context, id int64, reason, detail, flagReason string, free bool) {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		c, err := s.command(ctx, tx, id)
		if err != nil {
			return err
		}
		now := s.now()
		if _, err := tx.Exec(ctx, "UPDATE mail_locker_commands SET state = 'failed', reason = ?, detail = ?, updated_at = ? WHERE id = ?",
			reason, trunc(detail, 300), now, id); err != nil {
			return err
		}
		if flagReason != "" {
			if err := s.flag(ctx, tx, c.DoorID, flagReason, detail); err != nil {
				return err
			}
		}
		if c.ItemID != nil {
			// What staff should do, as a code the screens put in words:
			// purpose:reason:door (see Item.Attention).
			kind := c.Purpose
			if kind == "store" && !free {
				kind = "service" // the door keeps the item: check it, retry
			}
			attention := fmt.Sprintf("%s:%s:%d", kind, reason, c.Door)
			if c.Purpose == "store" && free {
				_, err = tx.Exec(ctx, "UPDATE mail_items SET door_id = NULL, attention = ?, updated_at = ? WHERE id = ? AND state = 'waiting' AND door_id = ?",
					attention, now, *c.ItemID, c.DoorID)
			} else {
				_, err = tx.Exec(ctx, "UPDATE mail_items SET attention = ?, updated_at = ? WHERE id = ? AND state = 'waiting'", attention, now, *c.ItemID)
			}
			if err != nil {
				return err
			}
			if err := s.event(ctx, tx, *c.ItemID, "door_failed", fmt.Sprintf("door %d (%s): %s", c.Door, c.Purpose, reason)); err != nil {
				return err
			}
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.command_failed", Entity: "mail_locker_command", EntityID: id,
			After: map[string]any{"door": c.Door, "purpose": c.Purpose, "reason": reason, "detail": detail}})
	})
	if err != nil {
		s.log.Error("mailroom: command failed", "command", id, "err", err)
	}
}

// watch reads the doors of open commands: a closed one completes its
// command, one open too long is flagged.
func (s *Service) watch(ctx context.Context) {
	var open []Command
	if err := s.db.Select(ctx, &open, "SELECT "+cmdCols+cmdFrom+" WHERE c.site_id = ? AND c.state = 'open' ORDER BY c.id", s.site.ID); err != nil {
		if ctx.Err() == nil {
			s.log.Error("mailroom: open doors", "err", err)
		}
		return
	}
	if len(open) == 0 {
		return
	}
	states, err := s.locker.Status(ctx)
	if err != nil {
		// Silent boards' doors read unknown; the others are still good.
		s.log.Warn("mailroom: locker status", "err", err)
	}
	st, serr := s.Settings(ctx)
	if serr != nil {
		return
	}
	alert := time.Duration(st.DoorOpenAlertSeconds) * time.Second
	for _, c := range open {
		state := devices.DoorUnknown
		if c.Door >= 1 && c.Door <= len(states) {
			state = states[c.Door-1]
		}
		switch {
		case state == devices.DoorClosed:
			s.closed(context.WithoutCancel(ctx), c)
		case c.OpenedAt != nil && s.now().Sub(*c.OpenedAt) > alert:
			s.leftOpen(context.WithoutCancel(ctx), c, state)
		}
	}
}

// leftOpen flags a door open too long, once.
func (s *Service) leftOpen(ctx context.Context, c Command, state devices.DoorState) {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		res, err := tx.Exec(ctx, "UPDATE mail_doors SET flagged = ?, flag_reason = ?, flag_note = ?, flagged_at = ?, updated_at = ? WHERE id = ? AND flagged = ?",
			true, FlagLeftOpen, fmt.Sprintf("open since %s (sensor: %s)", c.OpenedAt.In(s.loc).Format("15:04:05"), state), s.now(), s.now(), c.DoorID, false)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return nil // already flagged
		}
		s.log.Warn("mailroom: locker door left open", "door", c.Door, "command", c.ID)
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.door_left_open", Entity: "mail_door", EntityID: c.DoorID,
			After: map[string]any{"door": c.Door, "command": c.ID}})
	})
	if err != nil {
		s.log.Error("mailroom: flag door", "door", c.Door, "err", err)
	}
}

// closed completes a command whose door closed again.
func (s *Service) closed(ctx context.Context, c Command) {
	err := s.db.Tx(ctx, func(tx *store.Tx) error {
		now := s.now()
		res, err := tx.Exec(ctx, "UPDATE mail_locker_commands SET state = 'done', closed_at = ?, updated_at = ? WHERE id = ? AND state = 'open'", now, now, c.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		// The left-open alert was about this opening: it is over.
		if _, err := tx.Exec(ctx, "UPDATE mail_doors SET flagged = ?, flag_reason = '', flag_note = '', flagged_at = NULL, updated_at = ? WHERE id = ? AND flag_reason = ?",
			false, now, c.DoorID, FlagLeftOpen); err != nil {
			return err
		}
		after := map[string]any{"door": c.Door, "purpose": c.Purpose}
		if c.ItemID != nil {
			switch c.Purpose {
			case "store":
				if err := s.stored(ctx, tx, *c.ItemID, c); err != nil {
					return err
				}
			case "pickup":
				res, err := tx.Exec(ctx, `UPDATE mail_items SET state = 'collected', collected_at = ?, collector_kind = 'code', collector_name = ?,
					collected_via = 'locker', attention = '', updated_at = ? WHERE id = ? AND state = 'waiting'`, now, c.Source, now, *c.ItemID)
				if err != nil {
					return err
				}
				if n, _ := res.RowsAffected(); n == 1 {
					if err := s.cancelNotices(ctx, tx, *c.ItemID); err != nil {
						return err
					}
					if err := s.event(ctx, tx, *c.ItemID, "collected", fmt.Sprintf("locker door %d, code at %s", c.Door, c.Source)); err != nil {
						return err
					}
					after["collected"] = *c.ItemID
				}
			}
		}
		return auth.Record(ctx, tx, auth.Entry{Action: "mail.door_closed", Entity: "mail_locker_command", EntityID: c.ID, After: after})
	})
	if err != nil {
		s.log.Error("mailroom: door closed", "command", c.ID, "err", err)
	}
}

// stored records a placed item behind its closed door and issues its
// pickup code: the arrival notice still queued carries it, or a code
// notice does.
func (s *Service) stored(ctx context.Context, tx *store.Tx, itemID int64, c Command) error {
	now := s.now()
	res, err := tx.Exec(ctx, "UPDATE mail_items SET stored_at = ?, attention = '', updated_at = ? WHERE id = ? AND state = 'waiting' AND door_id = ?",
		now, now, itemID, c.DoorID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n != 1 {
		return nil // collected or moved meanwhile
	}
	if err := s.event(ctx, tx, itemID, "stored", fmt.Sprintf("locker door %d", c.Door)); err != nil {
		return err
	}
	return s.issueCode(ctx, tx, itemID)
}

// cancelNotices drops an item's notices not yet sent (it was collected or
// returned) and erases any code they carried.
func (s *Service) cancelNotices(ctx context.Context, tx *store.Tx, itemID int64) error {
	_, err := tx.Exec(ctx, `UPDATE mail_notifications SET state = 'cancelled', secret = NULL, updated_at = ? WHERE item_id = ? AND state IN ('queued', 'failed')
		AND kind <> 'returned'`, s.now(), itemID)
	return err
}

// doorLabel is a door for a resident's message.
func doorLabel(n int) string { return fmt.Sprintf("%d号柜门", n) }
