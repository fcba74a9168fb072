package mailroom_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"onecard/mailroom"
	"onecard/store"
	"onecard/store/storetest"
)

func TestDailyRegisterXLSX(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		ctx := context.Background()
		a := r.register(t, parcel("SF1100000000001"))
		in := parcel("SF1100000000002")
		in.Condition, in.DamageNote, in.Countersigned = mailroom.ConditionDamaged, "外箱破损", true
		b := r.register(t, in)
		r.clock.Add(2 * time.Hour)
		if _, err := r.m.Collect(r.clerk, mailroom.CollectInput{ItemIDs: []int64{a.ID}, CollectorKind: "recipient", CollectorName: "张三",
			SignaturePNG: signature(t)}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.m.RegisterOutgoing(r.clerk, mailroom.OutgoingInput{Unit: "1-1-101", Sender: "张三", Addressee: "北京市海淀区 李雷",
			Method: mailroom.Express, Tracking: "yt1234567890"}); err != nil {
			t.Fatal(err)
		}
		// The next day's item is not in this day's register.
		r.clock.Add(day)
		r.register(t, parcel("SF1100000000003"))

		rows, err := r.m.DailyRegister(ctx, "2026-11-20")
		if err != nil || len(rows) != 2 {
			t.Fatalf("register: %+v %v", rows, err)
		}
		if rows[0].CollectedBy != "本人 张三" || rows[0].CollectedAt != "2026-11-20 12:00" || rows[0].Storage != "货架 A-1" ||
			rows[1].Condition != "破损：外箱破损（快递员已签字）" || rows[1].State != "待领取" || rows[1].Number != b.Number {
			t.Fatalf("rows %+v", rows)
		}
		var buf bytes.Buffer
		if err := r.m.DailyRegisterXLSX(ctx, "2026-11-20", &buf); err != nil {
			t.Fatal(err)
		}
		f, err := excelize.OpenReader(&buf)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		got, err := f.GetRows("收件登记")
		if err != nil || len(got) != 3 {
			t.Fatalf("sheet rows %v %v", got, err)
		}
		want := []string{"2026-11-20", a.Number, "快递", "顺丰", "SF1100000000001", "1-1-101", "张三", "完好", "货架 A-1", "已领取",
			"本人 张三", "2026-11-20 12:00", "clerk1"}
		if len(got[1]) != len(want) {
			t.Fatalf("row %v", got[1])
		}
		for i := range want {
			if got[1][i] != want[i] {
				t.Errorf("column %s: %q, want %q", got[0][i], got[1][i], want[i])
			}
		}
		out, err := f.GetRows("寄件登记")
		if err != nil || len(out) != 2 || out[1][1] != "1-1-101" || out[1][4] != "快递" || out[1][5] != "YT1234567890" {
			t.Fatalf("outgoing sheet %v %v", out, err)
		}
		_, err = r.m.DailyRegister(ctx, "yesterday")
		wantCode(t, "bad day", err, "date_invalid")
	})
}

func TestWaitingByAgeAndHistory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		ctx := context.Background()
		r.register(t, parcel("SF1200000000001"))
		r.clock.Add(5 * day)
		r.register(t, parcel("SF1200000000002"))
		letter := mailroom.RegisterInput{Type: mailroom.Letter, Carrier: "中国邮政", Unit: "1-1-101", Condition: "ok", Storage: "shelf", Slot: "L"}
		r.register(t, letter)
		bs, err := r.m.WaitingByAge(ctx, start.Add(5*day))
		if err != nil {
			t.Fatal(err)
		}
		counts := map[string]int{}
		for _, b := range bs {
			counts[b.Label] = b.Count
		}
		if counts["0–1"] != 2 || counts["4–7"] != 1 || counts["2–3"] != 0 || bs[0].ByType[mailroom.Letter] != 1 {
			t.Fatalf("buckets %+v", bs)
		}
		_, err = r.m.History(ctx, "SF9999999999")
		wantCode(t, "unknown tracking", err, "tracking_unknown")
		_, err = r.m.History(ctx, "??")
		wantCode(t, "bad tracking", err, "tracking_invalid")
		// An item only registered has one event.
		ev, err := r.m.History(ctx, "SF1200000000001")
		if err != nil || len(ev) != 1 || ev[0].Kind != "registered" || ev[0].Actor != "clerk1" {
			t.Fatalf("history %+v %v", ev, err)
		}
	})
}

func TestOutgoingValidation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		good := mailroom.OutgoingInput{Unit: "1-1-101", Sender: "张三", Addressee: "上海市 韩梅梅", Method: mailroom.Letter}
		for _, tc := range []struct {
			edit func(*mailroom.OutgoingInput)
			code string
		}{
			{func(in *mailroom.OutgoingInput) { in.Sender = "" }, "sender_required"},
			{func(in *mailroom.OutgoingInput) { in.Addressee = "" }, "addressee_required"},
			{func(in *mailroom.OutgoingInput) { in.Method = "pigeon" }, "mail_method_invalid"},
			{func(in *mailroom.OutgoingInput) { in.Tracking = "x" }, "tracking_invalid"},
			{func(in *mailroom.OutgoingInput) { in.Unit = "9-9-909" }, "unit_unknown"},
		} {
			in := good
			tc.edit(&in)
			_, err := r.m.RegisterOutgoing(r.clerk, in)
			wantCode(t, tc.code, err, tc.code)
		}
		o, err := r.m.RegisterOutgoing(r.clerk, good)
		if err != nil || o.Tracking != nil || o.RegisteredOn != "2026-11-20" {
			t.Fatal(o, err)
		}
		if r.audits(t, "mail_outgoing.register", o.ID) != 1 {
			t.Fatal("no audit row")
		}
	})
}

// An item's own events, tracking number or not; another item's are not
// among them.
func TestItemEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		r := newRoom(t, db, mailroom.Options{})
		ctx := context.Background()
		letter := r.register(t, mailroom.RegisterInput{Type: mailroom.Letter, Carrier: "中国邮政", Unit: "1-1-101",
			Condition: mailroom.ConditionOK, Storage: mailroom.StorageShelf, Slot: "B-2"})
		other := r.register(t, parcel("SF1400000000001"))
		if _, err := r.m.Shelve(r.clerk, letter.ID, "C-1"); err != nil {
			t.Fatal(err)
		}
		ev, err := r.m.Events(ctx, letter.ID)
		if err != nil || len(ev) != 2 || ev[0].Kind != "registered" || ev[1].Kind != "shelved" || ev[1].Detail != "C-1" ||
			ev[0].ItemNumber != letter.Number || ev[1].Actor != "clerk1" {
			t.Fatalf("events of the letter: %+v %v", ev, err)
		}
		if ev, err := r.m.Events(ctx, other.ID); err != nil || len(ev) != 1 {
			t.Fatalf("events of the parcel: %+v %v", ev, err)
		}
		if ev, err := r.m.Events(ctx, 999999); err != nil || len(ev) != 0 {
			t.Fatalf("events of no item: %+v %v", ev, err)
		}
	})
}
