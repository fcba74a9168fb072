package mailroom_test

import (
	"context"
	"testing"
	"time"

	"onecard/mailroom"
	"onecard/store"
	"onecard/store/storetest"
)

func TestSettings(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		ctx := context.Background()
		st, err := r.m.Settings(ctx)
		if err != nil || st.ReminderDays != 3 || st.HoldDays != 7 || st.MovedOutHoldDays != 14 || st.ConsentHoldDays != 30 ||
			st.DoorOpenAlertSeconds != 120 || st.CodeAttempts != 5 || st.CodeLockMinutes != 15 || len(st.SignatureTypes) != 4 {
			t.Fatalf("defaults %+v %v", st, err)
		}
		for _, tc := range []struct {
			edit  func(*mailroom.Settings)
			field string
			code  string
		}{
			{func(s *mailroom.Settings) { s.ConsentHoldDays = 31 }, "consent_hold_days", "days_invalid"},
			{func(s *mailroom.Settings) { s.HoldDays = 0 }, "hold_days", "days_invalid"},
			{func(s *mailroom.Settings) { s.ReminderDays = 7 }, "reminder_days", "reminder_after_hold"},
			{func(s *mailroom.Settings) { s.SignatureTypes = []string{"box"} }, "signature_types", "item_type_invalid"},
			{func(s *mailroom.Settings) { s.DoorOpenAlertSeconds = 5 }, "door_open_alert_seconds", "door_alert_invalid"},
			{func(s *mailroom.Settings) { s.CodeAttempts = 0 }, "code_attempts", "code_attempts_invalid"},
			{func(s *mailroom.Settings) { s.CodeLockMinutes = 0 }, "code_lock_minutes", "code_lock_invalid"},
			{func(s *mailroom.Settings) { s.SignatureRetentionDays = 1 }, "signature_retention_days", "retention_invalid"},
		} {
			in := st
			tc.edit(&in)
			err := r.m.SaveSettings(r.clerk, in)
			wantCode(t, tc.code, err, tc.code)
			if e, _ := faultOf(err); e.Field != tc.field {
				t.Errorf("%s: field %q", tc.code, e.Field)
			}
		}
		wantCode(t, "kiosk", r.m.SaveSettings(r.kiosk, st), "operator_required")
		st.HoldDays, st.SignatureTypes = 10, []string{mailroom.Registered}
		if err := r.m.SaveSettings(r.clerk, st); err != nil {
			t.Fatal(err)
		}
		if got, _ := r.m.Settings(ctx); got.HoldDays != 10 || len(got.SignatureTypes) != 1 {
			t.Fatalf("saved %+v", got)
		}
		if r.audits(t, "mail.settings", r.m.Site().ID) != 1 {
			t.Fatal("no audit row")
		}
		// Hold periods apply to waiting items at once; express no longer
		// needs a signature for items registered from now on.
		it := r.register(t, parcel("SF1600000000001"))
		if it.HoldUntil != "2026-11-30" || it.NeedsSignature {
			t.Fatalf("item %+v", it)
		}
		found, err := r.m.Find(ctx, mailroom.Query{Unit: "1-1-101", State: mailroom.StateWaiting, Day: "2026-11-20"})
		if err != nil || len(found) != 1 || found[0].ID != it.ID {
			t.Fatalf("find %+v %v", found, err)
		}
		_, err = r.m.Find(ctx, mailroom.Query{State: "lost"})
		wantCode(t, "find state", err, "state_invalid")
	})
}

// Staff open a door for service: the command is watched like any other.
func TestOpenDoorForService(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBank(t, 16, 2*time.Second)
		r := newRoom(t, db, mailroom.Options{Locker: b.bank, LockerPoll: 10 * time.Millisecond})
		r.doors(t, 2, "L")
		_, err := r.m.OpenDoor(r.clerk, 2, "")
		wantCode(t, "no reason", err, "reason_required")
		_, err = r.m.OpenDoor(r.clerk, 9, "检查")
		wantCode(t, "no such door", err, "door_not_found")
		c, err := r.m.OpenDoor(r.clerk, 2, "检查门锁")
		if err != nil || c.Purpose != "service" || c.State != mailroom.CmdQueued {
			t.Fatal(c, err)
		}
		_, err = r.m.OpenDoor(r.clerk, 2, "again")
		wantCode(t, "twice", err, "door_busy")
		r.runLocker(t)
		waitFor(t, "open", func() bool { return r.command(t, c.ID).State == mailroom.CmdOpen })
		b.close(t, 2)
		waitFor(t, "done", func() bool { return r.command(t, c.ID).State == mailroom.CmdDone })
		cs, err := r.m.Commands(context.Background())
		if err != nil || len(cs) != 1 || cs[0].ClosedAt == nil {
			t.Fatalf("commands %+v %v", cs, err)
		}
		if r.audits(t, "mail.door_open", r.command(t, c.ID).DoorID) != 1 {
			t.Fatal("no audit row")
		}
	})
}
