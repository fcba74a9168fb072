package mailroom_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"onecard/mailroom"
	"onecard/store"
	"onecard/store/storetest"
)

// The whole locker round over the real driver and the simulator: the
// clerk places a parcel, the door pops open, the clerk shuts it: stored,
// and the code goes out. The resident keys the code in at the kiosk: the
// door opens, they shut it: collected. A door left open is flagged until
// it closes.
func TestLockerRoundOverPTY(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBank(t, 48, 2*time.Second)
		r := newRoom(t, db, mailroom.Options{Locker: b.bank, LockerPoll: 20 * time.Millisecond})
		r.kioskParcels(t)
		r.doors(t, 4, "S")
		if err := r.m.SetDoors(r.clerk, []mailroom.DoorInput{{Number: 20, Size: "M"}}); err != nil {
			t.Fatal(err)
		}
		r.runLocker(t)
		ctx := context.Background()

		it := r.register(t, lockerParcel("SF1300000000001"))
		c, err := r.m.PlaceInLocker(r.clerk, it.ID, "M")
		if err != nil || c.Door != 20 {
			t.Fatalf("place: %+v %v", c, err)
		}
		waitFor(t, "door 20 open", func() bool { return r.command(t, c.ID).State == mailroom.CmdOpen })
		if !b.open(20) || b.unlocks(20) != 1 {
			t.Fatalf("door 20 in the simulator: %+v", b.sim.State().Doors[19])
		}
		ds, _ := r.m.Doors(ctx)
		if d := ds[4]; d.Number != 20 || d.State != mailroom.DoorOpen || d.Item == nil || d.Item.ID != it.ID {
			t.Fatalf("door 20 on the desk: %+v", d)
		}
		// The clerk takes a while: the door is flagged as left open.
		r.clock.Add(2*time.Minute + time.Second)
		waitFor(t, "door 20 flagged left open", func() bool {
			ds, _ := r.m.Doors(ctx)
			return ds[4].Flagged && ds[4].FlagReason == mailroom.FlagLeftOpen
		})
		if r.item(t, it.ID).InLocker {
			t.Fatal("stored while the door is open")
		}
		if err := b.sim.Close(20); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "stored", func() bool { return r.item(t, it.ID).InLocker })
		ds, _ = r.m.Doors(ctx)
		if d := ds[4]; d.State != mailroom.DoorAssigned || d.Flagged {
			t.Fatalf("door 20 after closing: %+v", d)
		}
		rec := &recorder{}
		if _, err := r.m.DeliverNotifications(ctx, rec); err != nil {
			t.Fatal(err)
		}
		code := rec.codeFor(it.Number)
		if code == "" || rec.messages()[0].Items[0].Door != 20 {
			t.Fatalf("notice %+v", rec.messages())
		}

		// At the kiosk.
		got, err := r.m.PickupByCode(r.kiosk, "lobby-1", code)
		if err != nil || len(got) != 1 || got[0].ID != it.ID {
			t.Fatalf("code: %+v %v", got, err)
		}
		c, err = r.m.OpenForPickup(r.kiosk, it.ID, "lobby-1")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "door 20 open for pickup", func() bool { return r.command(t, c.ID).State == mailroom.CmdOpen })
		if !b.open(20) || b.unlocks(20) != 2 || r.item(t, it.ID).State != mailroom.StateWaiting {
			t.Fatal("door not open, or collected before it closed")
		}
		b.sim.Close(20)
		waitFor(t, "collected", func() bool { return r.item(t, it.ID).State == mailroom.StateCollected })
		ds, _ = r.m.Doors(ctx)
		if ds[4].State != mailroom.DoorFree {
			t.Fatalf("door 20 after the pickup: %+v", ds[4])
		}
		hist, err := r.m.History(ctx, "SF1300000000001")
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range hist {
			kinds = append(kinds, e.Kind)
		}
		want := []string{"registered", "locker_assigned", "door_opened", "stored", "code_issued", "notified", "code_used", "door_opened", "collected"}
		if !slices.Equal(kinds, want) {
			t.Fatalf("history %v\nwant    %v", kinds, want)
		}
	})
}

// A jammed door: the placement fails with not_opened, the door is flagged
// and freed, the next placement takes another door. A jammed door at
// pickup leaves the item waiting, marked; freed, the desk retries and the
// resident takes it.
func TestStuckDoorOverPTY(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBank(t, 48, 2*time.Second)
		r := newRoom(t, db, mailroom.Options{Locker: b.bank, LockerPoll: 20 * time.Millisecond})
		r.kioskParcels(t)
		r.doors(t, 3, "S")
		r.runLocker(t)
		b.sim.Stick(1, true)
		it := r.register(t, lockerParcel("SF1400000000001"))
		c, err := r.m.PlaceInLocker(r.clerk, it.ID, "S")
		if err != nil || c.Door != 1 {
			t.Fatal(c, err)
		}
		waitFor(t, "the placement to fail", func() bool { return r.command(t, c.ID).State == mailroom.CmdFailed })
		if c := r.command(t, c.ID); c.Reason != "not_opened" || b.unlocks(1) != 1 || b.open(1) {
			t.Fatalf("stuck door: %+v, sim %+v", c, b.sim.State().Doors[0])
		}
		if got := r.item(t, it.ID); got.Door != nil || got.Attention == "" {
			t.Fatalf("item %+v", got)
		}
		c, err = r.m.PlaceInLocker(r.clerk, it.ID, "S")
		if err != nil || c.Door != 2 {
			t.Fatalf("second placement: %+v %v", c, err)
		}
		waitFor(t, "door 2 open", func() bool { return r.command(t, c.ID).State == mailroom.CmdOpen })
		b.sim.Close(2)
		waitFor(t, "stored", func() bool { return r.item(t, it.ID).InLocker })
		rec := &recorder{}
		r.m.DeliverNotifications(context.Background(), rec)
		code := rec.codeFor(it.Number)

		b.sim.Stick(2, true)
		if _, err := r.m.PickupByCode(r.kiosk, "lobby-1", code); err != nil {
			t.Fatal(err)
		}
		c, err = r.m.OpenForPickup(r.kiosk, it.ID, "lobby-1")
		if err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the pickup to fail", func() bool { return r.command(t, c.ID).State == mailroom.CmdFailed })
		got := r.item(t, it.ID)
		if got.State != mailroom.StateWaiting || got.Door == nil || *got.Door != 2 || got.Attention == "" {
			t.Fatalf("item after a stuck pickup: %+v", got)
		}
		ds, _ := r.m.Doors(context.Background())
		if ds[1].State != mailroom.DoorFlagged || ds[1].FlagReason != mailroom.FlagNotOpened || ds[1].Item == nil {
			t.Fatalf("door 2: %+v", ds[1])
		}
		// Staff free the door and retry.
		b.sim.Stick(2, false)
		if err := r.m.UnflagDoor(r.clerk, 2); err != nil {
			t.Fatal(err)
		}
		if _, err := r.m.RetryCommand(r.clerk, c.ID); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "door 2 open at last", func() bool { return r.command(t, c.ID).State == mailroom.CmdOpen })
		b.sim.Close(2)
		waitFor(t, "collected", func() bool { return r.item(t, it.ID).State == mailroom.StateCollected })
	})
}

// A board without power: the open gets no answer (no_answer), nothing
// opens, the door is flagged and freed; a door on another board works.
func TestSilentBoardOverPTY(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		b := newBank(t, 48, 150*time.Millisecond) // no answer is coming anyway
		r := newRoom(t, db, mailroom.Options{Locker: b.bank, LockerPoll: 20 * time.Millisecond})
		r.kioskParcels(t)
		if err := r.m.SetDoors(r.clerk, []mailroom.DoorInput{{Number: 1, Size: "S"}, {Number: 17, Size: "S"}}); err != nil {
			t.Fatal(err)
		}
		r.runLocker(t)
		b.sim.SetSilent(0, true)
		it := r.register(t, lockerParcel("SF1500000000001"))
		c, err := r.m.PlaceInLocker(r.clerk, it.ID, "S")
		if err != nil || c.Door != 1 {
			t.Fatal(c, err)
		}
		waitFor(t, "no answer", func() bool { return r.command(t, c.ID).State == mailroom.CmdFailed })
		if c := r.command(t, c.ID); c.Reason != "no_answer" || b.open(1) || b.unlocks(1) != 0 {
			t.Fatalf("silent board: %+v", c)
		}
		ds, _ := r.m.Doors(context.Background())
		if ds[0].FlagReason != mailroom.FlagNoAnswer || ds[0].Item != nil {
			t.Fatalf("door 1: %+v", ds[0])
		}
		c, err = r.m.PlaceInLocker(r.clerk, it.ID, "S")
		if err != nil || c.Door != 17 {
			t.Fatalf("placed again: %+v %v", c, err)
		}
		waitFor(t, "door 17 open", func() bool { return r.command(t, c.ID).State == mailroom.CmdOpen })
		// While board 0 is still silent, the watcher reads board 1.
		b.sim.Close(17)
		waitFor(t, "stored", func() bool { return r.item(t, it.ID).InLocker })
	})
}
