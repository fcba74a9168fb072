package mailroom_test

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"testing"
	"time"

	"onecard/mailroom"
	"onecard/store"
	"onecard/store/storetest"
)

const day = 24 * time.Hour

func ids(items []mailroom.Item) []int64 {
	var out []int64
	for _, it := range items {
		out = append(out, it.ID)
	}
	return out
}

func TestRemindersAndReturns(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		ctx := context.Background()
		std := r.register(t, parcel("SF9000000000001"))
		in := parcel("SF9000000000002")
		in.Unit, in.Recipient = "1-1-102", "李四"
		moved := r.register(t, in)
		consent := r.register(t, parcel("SF9000000000003"))
		if _, err := r.m.ConsentHold(r.clerk, consent.ID, "本人来电同意"); err != nil {
			t.Fatal(err)
		}
		collected := r.register(t, parcel("SF9000000000004"))
		if _, err := r.m.Collect(r.clerk, mailroom.CollectInput{ItemIDs: []int64{collected.ID}, CollectorKind: "recipient",
			CollectorName: "张三", SignaturePNG: signature(t)}); err != nil {
			t.Fatal(err)
		}
		reminders := func() int {
			t.Helper()
			var n int
			if err := db.Get(ctx, &n, "SELECT COUNT(*) FROM mail_notifications WHERE kind = 'reminder'"); err != nil {
				t.Fatal(err)
			}
			return n
		}
		// Day 2: nothing to remind.
		if got, err := r.m.Reminders(ctx, start.Add(2*day)); err != nil || len(got) != 0 {
			t.Fatalf("day 2: %v %v", ids(got), err)
		}
		// Day 3: the three waiting items, once each however often asked.
		for range 2 {
			got, err := r.m.Reminders(ctx, start.Add(3*day))
			if err != nil || len(got) != 3 || reminders() != 3 {
				t.Fatalf("day 3: %v %v, %d reminders", ids(got), err, reminders())
			}
		}
		// Day 4: once more each.
		if got, err := r.m.Reminders(ctx, start.Add(4*day)); err != nil || len(got) != 3 || reminders() != 6 {
			t.Fatalf("day 4: %v %v", ids(got), err)
		}
		rec := &recorder{}
		r.clock.Add(4 * day)
		if n, err := r.m.DeliverNotifications(ctx, rec); err != nil || n < 3 {
			t.Fatalf("delivered %d, %v", n, err)
		}
		var reminded int
		for _, m := range rec.messages() {
			if m.Kind == mailroom.KindReminder {
				reminded++
			}
		}
		if reminded != 6 {
			t.Fatalf("%d reminders sent", reminded)
		}
		due := func(at time.Duration) []int64 {
			t.Helper()
			got, err := r.m.DueForReturn(ctx, start.Add(at))
			if err != nil {
				t.Fatal(err)
			}
			return ids(got)
		}
		if got := due(6 * day); len(got) != 0 {
			t.Fatalf("day 6: %v", got)
		}
		if got := due(7 * day); len(got) != 1 || got[0] != std.ID {
			t.Fatalf("day 7: %v", got)
		}
		if got := due(13 * day); len(got) != 1 {
			t.Fatalf("day 13: %v", got)
		}
		if got := due(14 * day); len(got) != 2 || got[1] != moved.ID {
			t.Fatalf("day 14: %v", got)
		}
		if got := due(29 * day); len(got) != 2 {
			t.Fatalf("day 29: %v", got)
		}
		if got := due(30 * day); len(got) != 3 {
			t.Fatalf("day 30: %v", got)
		}
		_, err := r.m.ReturnToCourier(r.clerk, []int64{std.ID}, " ")
		wantCode(t, "return without a note", err, "return_note_required")
		_, err = r.m.ReturnToCourier(r.kiosk, []int64{std.ID}, "退回")
		wantCode(t, "return by a kiosk", err, "person_required")
		_, err = r.m.ReturnToCourier(r.clerk, []int64{std.ID, collected.ID}, "退回顺丰")
		wantCode(t, "return of a collected item", err, "item_not_waiting")
		if it := r.item(t, std.ID); it.State != mailroom.StateWaiting {
			t.Fatal("half a return committed")
		}
		back, err := r.m.ReturnToCourier(r.clerk, []int64{std.ID, moved.ID}, "超期退回顺丰，运单SF123")
		if err != nil || len(back) != 2 || back[0].State != mailroom.StateReturned || back[0].ReturnedAt == nil || back[0].HandedBy != "clerk1" {
			t.Fatalf("returned %+v %v", back, err)
		}
		if got := due(30 * day); len(got) != 1 || got[0] != consent.ID {
			t.Fatalf("due after the return: %v", got)
		}
		if r.audits(t, "mail_item.return", std.ID) != 1 {
			t.Fatal("no audit row")
		}
		r.clock.Add(time.Minute)
		if _, err := r.m.DeliverNotifications(ctx, rec); err != nil {
			t.Fatal(err)
		}
		var returned int
		for _, m := range rec.messages() {
			if m.Kind == mailroom.KindReturned {
				returned++
			}
		}
		if returned != 2 {
			t.Fatalf("%d return notices", returned)
		}
		// Returned items are reminded no more.
		if got, err := r.m.Reminders(ctx, start.Add(31*day)); err != nil || len(got) != 1 || got[0].ID != consent.ID {
			t.Fatalf("day 31: %v %v", ids(got), err)
		}
	})
}

func signature(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 40, 12))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCollect(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		ctx := context.Background()
		reg := mailroom.RegisterInput{Type: mailroom.Registered, Carrier: "中国邮政", Tracking: "RR123456789CN", Unit: "1-1-101",
			Recipient: "张三", Condition: "ok", Storage: "shelf", Slot: "R-1"}
		registered := r.register(t, reg)
		letter := r.register(t, mailroom.RegisterInput{Type: mailroom.Letter, Carrier: "中国邮政", Unit: "1-1-101", Condition: "ok", Storage: "shelf", Slot: "L"})
		other := r.register(t, mailroom.RegisterInput{Type: mailroom.Letter, Carrier: "中国邮政", Unit: "2-1-201", Condition: "ok", Storage: "shelf", Slot: "L"})
		sig := signature(t)
		big := append(append([]byte(nil), sig...), make([]byte, mailroom.MaxSignature)...)
		ok := mailroom.CollectInput{ItemIDs: []int64{registered.ID, letter.ID}, CollectorKind: "agent", CollectorName: "王五",
			AgentIDLast4: "123x", SignaturePNG: sig}
		for _, tc := range []struct {
			name string
			ctx  context.Context
			edit func(*mailroom.CollectInput)
			code string
		}{
			{"no actor", ctx, func(in *mailroom.CollectInput) {}, "operator_required"},
			{"kiosk", r.kiosk, func(in *mailroom.CollectInput) {}, "person_required"},
			{"no items", r.clerk, func(in *mailroom.CollectInput) { in.ItemIDs = nil }, "items_required"},
			{"repeated", r.clerk, func(in *mailroom.CollectInput) { in.ItemIDs = []int64{letter.ID, letter.ID} }, "items_repeated"},
			{"kind", r.clerk, func(in *mailroom.CollectInput) { in.CollectorKind = "friend" }, "collector_kind_invalid"},
			{"name", r.clerk, func(in *mailroom.CollectInput) { in.CollectorName = "" }, "collector_name_required"},
			{"agent id", r.clerk, func(in *mailroom.CollectInput) { in.AgentIDLast4 = "12" }, "id_last4_invalid"},
			{"no signature", r.clerk, func(in *mailroom.CollectInput) { in.SignaturePNG = nil }, "signature_required"},
			{"not png", r.clerk, func(in *mailroom.CollectInput) { in.SignaturePNG = []byte("GIF89a........") }, "signature_not_png"},
			{"png header only", r.clerk, func(in *mailroom.CollectInput) { in.SignaturePNG = sig[:12] }, "signature_not_png"},
			{"too large", r.clerk, func(in *mailroom.CollectInput) { in.SignaturePNG = big }, "signature_too_large"},
			{"household", r.clerk, func(in *mailroom.CollectInput) { in.CollectorKind = "household" }, "signature_by_recipient"},
			{"mixed units", r.clerk, func(in *mailroom.CollectInput) { in.ItemIDs = []int64{letter.ID, other.ID} }, "items_mixed_units"},
			{"unknown item", r.clerk, func(in *mailroom.CollectInput) { in.ItemIDs = []int64{999999} }, "item_not_found"},
		} {
			in := ok
			tc.edit(&in)
			_, err := r.m.Collect(tc.ctx, in)
			wantCode(t, tc.name, err, tc.code)
		}
		if w, _ := r.m.Waiting(ctx, "1-1-101"); len(w) != 2 {
			t.Fatalf("collected by a refused call: %d waiting", len(w))
		}
		got, err := r.m.Collect(r.clerk, ok)
		if err != nil || len(got) != 2 {
			t.Fatal(got, err)
		}
		for _, it := range got {
			if it.State != mailroom.StateCollected || it.CollectedAt == nil || it.CollectorName != "王五" || it.AgentIDLast4 != "123X" ||
				it.HandedBy != "clerk1" || it.CollectedVia != "desk" || it.SignatureID == nil {
				t.Fatalf("collected %+v", it)
			}
			if r.audits(t, "mail_item.collect", it.ID) != 1 {
				t.Fatal("no audit row")
			}
		}
		if b, err := r.m.Signature(ctx, registered.ID); err != nil || !bytes.Equal(b, sig) {
			t.Fatalf("signature back: %d bytes, %v", len(b), err)
		}
		_, err = r.m.Collect(r.clerk, ok)
		wantCode(t, "twice", err, "item_not_waiting")
		// Household members take ordinary mail without signing.
		if _, err := r.m.Collect(r.clerk, mailroom.CollectInput{ItemIDs: []int64{other.ID}, CollectorKind: "household", CollectorName: "王六"}); err != nil {
			t.Fatal(err)
		}
		// Signatures are blanked after the retention period.
		if n, err := r.m.PurgeSignatures(ctx, start.Add(364*day)); err != nil || n != 0 {
			t.Fatal(n, err)
		}
		if n, err := r.m.PurgeSignatures(ctx, start.Add(366*day)); err != nil || n != 1 {
			t.Fatal(n, err)
		}
		_, err = r.m.Signature(ctx, registered.ID)
		wantCode(t, "purged", err, "signature_not_found")
	})
}
