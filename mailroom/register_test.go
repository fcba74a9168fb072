package mailroom_test

import (
	"context"
	"testing"
	"time"

	"onecard/mailroom"
	"onecard/store"
	"onecard/store/storetest"
)

func TestRegisterValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{}) // no locker
		for _, tc := range []struct {
			name  string
			edit  func(*mailroom.RegisterInput)
			field string
			code  string
		}{
			{"type", func(in *mailroom.RegisterInput) { in.Type = "box" }, "type", "item_type_invalid"},
			{"carrier", func(in *mailroom.RegisterInput) { in.Carrier = " " }, "carrier", "carrier_required"},
			{"tracking missing", func(in *mailroom.RegisterInput) { in.Tracking = "" }, "tracking", "tracking_required"},
			{"tracking bad", func(in *mailroom.RegisterInput) { in.Tracking = "SF 12" }, "tracking", "tracking_invalid"},
			{"unit missing", func(in *mailroom.RegisterInput) { in.Unit = "" }, "unit", "unit_required"},
			{"unit bad", func(in *mailroom.RegisterInput) { in.Unit = "x" }, "unit", "unit_code_invalid"},
			{"unit unknown", func(in *mailroom.RegisterInput) { in.Unit = "9-9-999" }, "unit", "unit_unknown"},
			{"person of another unit", func(in *mailroom.RegisterInput) { in.PersonID = r.li }, "person_id", "recipient_not_of_unit"},
			{"condition", func(in *mailroom.RegisterInput) { in.Condition = "wet" }, "condition", "condition_invalid"},
			{"damage note", func(in *mailroom.RegisterInput) { in.Condition = mailroom.ConditionDamaged; in.Countersigned = true },
				"damage_note", "damage_note_required"},
			{"countersigned", func(in *mailroom.RegisterInput) {
				in.Condition = mailroom.ConditionDamaged
				in.DamageNote = "角破损"
			},
				"countersigned", "countersign_required"},
			{"storage", func(in *mailroom.RegisterInput) { in.Storage = "floor" }, "storage", "storage_invalid"},
			{"slot", func(in *mailroom.RegisterInput) { in.Slot = "" }, "slot", "slot_required"},
			{"no locker", func(in *mailroom.RegisterInput) { in.Storage = mailroom.StorageLocker }, "storage", "locker_unavailable"},
		} {
			in := parcel("SF1000000000001")
			tc.edit(&in)
			_, err := r.m.Register(r.clerk, in)
			wantCode(t, tc.name, err, tc.code)
			if e, _ := faultOf(err); e.Field != tc.field {
				t.Errorf("%s: field %q, want %q", tc.name, e.Field, tc.field)
			}
		}
		// Nobody at a screen: refused.
		if _, err := r.m.Register(context.Background(), parcel("SF1000000000001")); err == nil {
			t.Fatal("registered without an actor")
		}
		var n int
		if err := db.Get(context.Background(), &n, "SELECT COUNT(*) FROM mail_items"); err != nil || n != 0 {
			t.Fatalf("items after refusals: %d %v", n, err)
		}
	})
}

func TestRegister(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		// Full-width and lower-case, as a Chinese input method types it.
		in := parcel("ｓｆ1000000000001")
		it := r.register(t, in)
		if it.Number != "20261120-001" || it.Tracking == nil || *it.Tracking != "SF1000000000001" || it.Unit != "1-1-101" ||
			it.PersonID == nil || *it.PersonID != r.zhang || it.Hold != mailroom.HoldStandard || !it.NeedsSignature ||
			it.HoldUntil != "2026-11-27" || it.CollectAt != "desk" || it.TypeName != "快递" {
			t.Fatalf("registered %+v", it)
		}
		if got := r.item(t, it.ID); got.Number != it.Number || got.Slot != "A-1" || got.RegisteredBy != "clerk1" {
			t.Fatalf("read back %+v", got)
		}
		if r.audits(t, "mail_item.register", it.ID) != 1 {
			t.Fatal("no audit row")
		}
		// The arrival notice was queued with it, due at once (express).
		ns, err := r.m.Notifications(context.Background())
		if err != nil || len(ns) != 1 || ns[0].Kind != mailroom.KindArrival || !ns[0].Urgent || ns[0].State != "queued" || !ns[0].NextAt.Equal(start) {
			t.Fatalf("notifications %+v %v", ns, err)
		}
		// The same tracking number again, while the first waits.
		_, err = r.m.Register(r.clerk, parcel("SF1000000000001"))
		wantCode(t, "duplicate", err, "tracking_duplicate")

		// A letter needs no tracking number; it is notified later, with
		// the unit's other post. Numbers go on.
		letter := mailroom.RegisterInput{Type: mailroom.Letter, Carrier: "中国邮政", Unit: "1-1-101", Condition: "ok", Storage: "shelf", Slot: "L"}
		l := r.register(t, letter)
		if l.Number != "20261120-002" || l.Tracking != nil || l.NeedsSignature {
			t.Fatalf("letter %+v", l)
		}
		// For a resident who moved out: held 14 days.
		in = parcel("SF1000000000002")
		in.Unit, in.Recipient = "1-1-102", "李四"
		moved := r.register(t, in)
		if moved.Hold != mailroom.HoldMovedOut || moved.HoldUntil != "2026-12-04" || moved.PersonID == nil || *moved.PersonID != r.li {
			t.Fatalf("moved-out recipient: %+v", moved)
		}
		// A unit whose only resident moved out, recipient not named.
		in = parcel("SF1000000000003")
		in.Unit, in.Recipient = "1-1-102", ""
		if it := r.register(t, in); it.Hold != mailroom.HoldMovedOut {
			t.Fatalf("unit moved out: %+v", it)
		}
		// A unit nobody was ever registered in: the standard hold.
		in = parcel("SF1000000000004")
		in.Unit, in.Recipient = "2-1-201", "王五"
		if it := r.register(t, in); it.Hold != mailroom.HoldStandard || it.PersonID != nil {
			t.Fatalf("unknown recipient: %+v", it)
		}
		// Damaged, noted and countersigned.
		in = parcel("SF1000000000005")
		in.Condition, in.DamageNote, in.Countersigned = mailroom.ConditionDamaged, "外箱压扁", true
		if it := r.register(t, in); it.Condition != "damaged" || it.DamageNote != "外箱压扁" || !it.Countersigned {
			t.Fatalf("damaged: %+v", it)
		}
		w, err := r.m.Waiting(context.Background(), "1-1-101")
		if err != nil || len(w) != 3 || w[0].ID != it.ID {
			t.Fatalf("waiting: %d %v", len(w), err)
		}
		// A new day starts a new sequence.
		r.clock.Add(20 * time.Hour)
		if it := r.register(t, parcel("SF1000000000006")); it.Number != "20261121-001" {
			t.Fatalf("next day: %s", it.Number)
		}
		// RegisterBatch: one bad item does not stop the others.
		res := r.m.RegisterBatch(r.clerk, []mailroom.RegisterInput{parcel("SF1000000000007"), parcel("SF1000000000007"), parcel("SF1000000000008")})
		if res[0].Err != nil || res[2].Err != nil || res[1].Err == nil || res[2].Item.Number != "20261121-003" {
			t.Fatalf("batch: %+v", res)
		}
	})
}

// A tracking number may come back once the first item is gone (returned,
// then delivered again).
func TestTrackingAgainAfterReturn(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		it := r.register(t, parcel("SF1000000000001"))
		if _, err := r.m.ReturnToCourier(r.clerk, []int64{it.ID}, "拒收，退回顺丰"); err != nil {
			t.Fatal(err)
		}
		again := r.register(t, parcel("SF1000000000001"))
		if again.ID == it.ID {
			t.Fatal("same item")
		}
	})
}

func TestShelveAndConsentHold(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		it := r.register(t, parcel("SF1000000000001"))
		_, err := r.m.ConsentHold(r.clerk, it.ID, " ")
		wantCode(t, "consent without a note", err, "consent_note_required")
		got, err := r.m.ConsentHold(r.clerk, it.ID, "张三电话同意延长保管")
		if err != nil || got.Hold != mailroom.HoldConsent || got.HoldUntil != "2026-12-20" {
			t.Fatalf("consent hold: %+v %v", got, err)
		}
		got, err = r.m.Shelve(r.clerk, it.ID, "B-2")
		if err != nil || got.Slot != "B-2" || got.Storage != mailroom.StorageShelf {
			t.Fatalf("shelve: %+v %v", got, err)
		}
		if r.audits(t, "mail_item.consent_hold", it.ID) != 1 || r.audits(t, "mail_item.shelve", it.ID) != 1 {
			t.Fatal("audit rows missing")
		}
	})
}
