// Package mailroom handles the estate's mail and parcels (SOP §3): items
// registered at the desk, stored on a shelf or in the parcel-locker bank,
// residents notified, picked up at the kiosk with a one-time code or at
// the desk against a signature, reminded, returned to the courier after
// the hold period; outgoing mail; the daily register. It owns the mail_*
// tables (migrations/0012_mailroom.sql) and depends on the locker bank
// only through devices.Locker. docs/mailroom.md is the operator's and the
// screen-builder's guide, with every error code.
//
// # Setting up
//
//	m, err := mailroom.Open(ctx, db, site, mailroom.Options{Locker: bank}) // Locker nil: no locker storage
//	go m.RunLocker(ctx)                        // only where the bank's serial port is
//	go m.RunNotifier(ctx, &mailroom.WebhookNotifier{URL: u, Secret: k}) // or ConsoleNotifier{}
//	m.SetDoors(ctx, []mailroom.DoorInput{{Number: 1, Size: "S"}, …})  // once, and when the bank changes
//
// A daily job calls Reminders(ctx, now), and PurgeSignatures(ctx, now);
// the desk calls DueForReturn(ctx, now) and ReturnToCourier.
//
// # Who acts
//
// Every method that changes something takes the actor from ctx
// (auth.ActorFrom) and writes an audit row in the same transaction.
// Desk methods need a staff member or an API token (operator_required);
// Collect and ReturnToCourier need a staff member (person_required);
// PickupByCode and OpenForPickup accept a kiosk too. Reminders and the
// workers run as the system.
//
// # The desk
//
//	Register(ctx, RegisterInput) (Item, error)             one item, one short transaction; its arrival notice is queued with it
//	RegisterBatch(ctx, []RegisterInput) []BatchResult       each in its own transaction
//	Item(ctx, id) (Item, error); Find(ctx, Query) ([]Item, error); Waiting(ctx, unit) ([]Item, error)
//	Shelve(ctx, id, slot) (Item, error); ConsentHold(ctx, id, note) (Item, error)
//	PlaceInLocker(ctx, itemID, size) (Command, error)       a free door of size or larger; the door opens for the clerk
//	Doors(ctx) ([]Door, error)                               free / assigned / opening / open / flagged, with item and command
//	FlagDoor(ctx, n, note); UnflagDoor(ctx, n); OpenDoor(ctx, n, reason) (Command, error)
//	Command(ctx, id); Commands(ctx); RetryCommand(ctx, id) (Command, error)
//	ReissueCode(ctx, itemID) error                           a new pickup code, sent to the resident
//	Collect(ctx, CollectInput) ([]Item, error)               hand over at the desk, signature when needed
//	Signature(ctx, itemID) ([]byte, error)                   the PNG it was signed with
//	Reminders(ctx, now); DueForReturn(ctx, now); ReturnToCourier(ctx, ids, note)
//	RegisterOutgoing(ctx, OutgoingInput) (Outgoing, error); OutgoingOn(ctx, day)
//	WaitingByAge(ctx, now); DailyRegister(ctx, day); DailyRegisterXLSX(ctx, day, w); History(ctx, tracking)
//	Notifications(ctx); RetryNotification(ctx, id); Settings(ctx); SaveSettings(ctx, Settings)
//
// # The kiosk
//
// Once an owner is identified (card or PIN), Waiting(ctx, unit) lists the
// unit's items; Item.CollectAt says "locker" (the pickup code opens it
// here) or "desk" (signed for, or on a shelf: 请到前台领取). With a pickup
// code instead:
//
//	items, err := m.PickupByCode(ctx, kioskCode, code) // uses the code up; 5 wrong codes lock the kiosk 15 min (pickup_locked)
//	cmd, err := m.OpenForPickup(ctx, items[0].ID, kioskCode) // within 10 min of the code
//	… poll m.Command(ctx, cmd.ID): queued → sent → open (请取件后关好柜门) → done; failed: Reason says why
//
// The item is collected when the door closes again after opening. Items
// to be signed for (Settings.SignatureTypes: registered, parcel, express,
// remittance by default, as the SOP says) never go into the locker and
// are never released at the kiosk.
//
// # The locker
//
// PlaceInLocker and OpenForPickup write an open command to the outbox in
// their transaction. RunLocker sends each once (marked sent before the
// board is told; an interrupted one is failed, for the desk to retry),
// then watches the door: a placed item is stored, and gets its code, when
// the door closes; a door open longer than Settings.DoorOpenAlertSeconds
// is flagged left_open until it closes. A door that does not open
// (not_opened) or whose board does not answer (no_answer) fails the
// command and flags the door; a placement's door is freed for another.
// A unique index on the waiting items' doors guarantees that two clerks
// placing at once never share a door.
//
// # Notifications
//
// Every registration queues an arrival notice in its transaction: express
// and important items at once, ordinary letters and newspapers an hour
// later, grouped per unit. A locker item's notice waits for its door to
// close, so as to carry the door and the code (the code is kept in the
// outbox only until sent; the pickup code itself only as a salted hash).
// RunNotifier calls the Notifier once per notice, retrying with backoff;
// an error wrapping ErrGiveUp, or MaxAttempts, fails it for the desk.
package mailroom
