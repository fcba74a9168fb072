package cards_test

import (
	"context"
	"testing"
	"time"

	"onecard/auth"
	"onecard/billing"
	"onecard/cards"
	"onecard/estate"
	"onecard/fault"
	pn532sim "onecard/firmware-sim/pn532"
	"onecard/fleet"
	"onecard/store"
	"onecard/store/storetest"
)

// desk is a register with an estate, books, a fleet (recording changes,
// no broker) and the simulated encoder, on 2026-11-20 at the site.
type desk struct {
	reg   *cards.Register
	es    *estate.Service
	bk    *billing.Service
	rig   *rig
	clerk context.Context
	uids  byte
}

func newDesk(t *testing.T, db *store.DB) *desk {
	t.Helper()
	ctx := context.Background()
	es, err := estate.Open(ctx, db, "t1", "测试", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	as := auth.New(db, auth.DefaultPolicy)
	st, err := as.CreateStaff(ctx, auth.NewStaff{Username: "clerk1", Role: auth.Clerk, Password: "clerk1-password-1"})
	if err != nil {
		t.Fatal(err)
	}
	clerk := auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: st.ID, Name: "clerk1", Role: auth.Clerk})
	bk, err := billing.Open(ctx, db, es.Site(), billing.Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bk.SaveFeeItem(clerk, billing.FeeItem{Code: "card_fee", Name: "工本费", Kind: "one_off", PriceFen: 2000}); err != nil {
		t.Fatal(err)
	}
	fl, err := fleet.New(db, es.Site().ID, "t1", fleet.Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, 0, 0)
	station := cards.NewStation("sim")
	station.Attach(r.enc, "PN532")
	reg, err := cards.OpenRegister(ctx, cards.RegisterDeps{DB: db, Estate: es, Billing: bk, Fleet: fl, Station: station, Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	reg.SetClock(func() time.Time { return time.Date(2026, 11, 20, 2, 0, 0, 0, time.UTC) })
	return &desk{reg: reg, es: es, bk: bk, rig: r, clerk: clerk}
}

// issue issues c on a new blank card.
func (d *desk) issue(t *testing.T, c cards.Record) cards.Record {
	t.Helper()
	d.uids++
	d.rig.sim.Remove()
	d.rig.sim.Place(pn532sim.NewCard([]byte{0x04, 0x50, 0x60, d.uids}))
	out, err := d.reg.Issue(d.clerk, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (d *desk) moveIn(t *testing.T, unit string, in estate.MoveIn) estate.Occupancy {
	t.Helper()
	o, err := d.es.MoveIn(d.clerk, unit, in)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestApplyChecksAndFees(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		d := newDesk(t, db)
		ctx := d.clerk
		d.es.CreateUnit(ctx, estate.UnitInput{Code: "1-1-101", Area: 9000, HandoverDate: "2020-01-01"})
		d.es.CreateUnit(ctx, estate.UnitInput{Code: "2-1-101", Area: 9000}) // not handed over
		owner := d.moveIn(t, "1-1-101", estate.MoveIn{Role: estate.Owner, MovedInOn: "2020-02-01",
			Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}})
		tenant := d.moveIn(t, "1-1-101", estate.MoveIn{Role: estate.Tenant, MovedInOn: "2026-01-01", LeaseStart: "2026-01-01", LeaseEnd: "2027-03-31",
			ConsentMethod: "written", Person: &estate.PersonInput{Name: "刘洋", Phone: "13900139000", IDType: "passport", IDLast4: "9876"}})
		if err := d.reg.SavePolicy(ctx, cards.Policy{FreePerHousehold: 1, MaxPerHousehold: 2, FeeFen: 2000, OwnerMonths: 24}); err != nil {
			t.Fatal(err)
		}
		if _, err := d.reg.Apply(ctx, cards.ApplyInput{Unit: "2-1-101", PersonID: owner.PersonID}); fault.Code(err) != "unit_not_handed_over" {
			t.Fatalf("unit not handed over: %v", err)
		}
		if _, err := d.reg.Apply(ctx, cards.ApplyInput{Unit: "1-1-101", PersonID: 999999}); fault.Code(err) != "not_resident" {
			t.Fatalf("not resident: %v", err)
		}
		c1, err := d.reg.Apply(ctx, cards.ApplyInput{Unit: "1-1-101", PersonID: owner.PersonID, Carpark: true})
		if err != nil || c1.FeeBillID != nil || c1.ValidUntil != "2028-11-20" || len(c1.Rights) != 4 {
			t.Fatalf("owner's card: %+v %v", c1, err)
		}
		// The tenant's card: charged (beyond the free one) and ending with the lease.
		c2, err := d.reg.Apply(ctx, cards.ApplyInput{Unit: "1-1-101", PersonID: tenant.PersonID})
		if err != nil || c2.FeeBillID == nil || c2.ValidUntil != "2027-03-31" || c2.Type != "tenant" {
			t.Fatalf("tenant's card: %+v %v", c2, err)
		}
		if _, err := d.reg.Apply(ctx, cards.ApplyInput{Unit: "1-1-101", PersonID: owner.PersonID}); fault.Code(err) != "household_card_limit" {
			t.Fatalf("over the household's maximum: %v", err)
		}
		if a, _ := d.bk.Account(ctx, "1-1-101"); a.DueFen != 2000 {
			t.Fatalf("card fee on the account: %+v", a)
		}
		if err := d.reg.SavePolicy(ctx, cards.Policy{FreePerHousehold: 5, MaxPerHousehold: 2, FeeFen: 2000, OwnerMonths: 24}); fault.Code(err) != "policy_invalid" {
			t.Fatalf("max below free: %v", err)
		}
		// Lost before issue makes no sense.
		if _, err := d.reg.ReportLost(ctx, c1.ID, ""); fault.Code(err) != "card_state" {
			t.Fatalf("lost before issue: %v", err)
		}
	})
}

func TestContractorsStaffExpiryAndReconciliation(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		d := newDesk(t, db)
		ctx := d.clerk
		d.es.CreateUnit(ctx, estate.UnitInput{Code: "3-2-1801", Area: 12650, HandoverDate: "2021-06-30"})
		owner := d.moveIn(t, "3-2-1801", estate.MoveIn{Role: estate.Owner, MovedInOn: "2021-07-01",
			Person: &estate.PersonInput{Name: "王芳", Phone: "13700137000", IDType: "resident_id", IDLast4: "0011"}})
		worker := estate.PersonInput{Name: "张师傅", Phone: "13600136000", IDType: "resident_id", IDLast4: "4321"}
		for _, c := range []struct {
			in   cards.OtherInput
			want string
		}{
			{cards.OtherInput{Type: "temporary", Person: worker, Unit: "3-2-1801"}, "end_date_required"},
			{cards.OtherInput{Type: "temporary", Person: worker, Unit: "3-2-1801", Until: "2026-11-01"}, "end_date_past"},
			{cards.OtherInput{Type: "temporary", Person: worker, Unit: "3-2-1801", Until: "2028-01-01"}, "end_date_too_far"},
			{cards.OtherInput{Type: "visitor", Person: worker, Unit: "3-2-1801", Until: "2026-12-01"}, "card_type_invalid"},
			{cards.OtherInput{Type: "staff", Person: worker, Until: "2026-12-01"}, "zones_required"},
		} {
			if _, err := d.reg.ApplyOther(ctx, c.in); fault.Code(err) != c.want {
				t.Errorf("%+v: %v, want %s", c.in, err, c.want)
			}
		}
		tmp, err := d.reg.ApplyOther(ctx, cards.OtherInput{Type: "temporary", Person: worker, Unit: "3-2-1801", Until: "2026-12-10", Note: "装修"})
		if err != nil || len(tmp.Rights) != 1 || tmp.Rights[0] != (cards.Right{Zone: "b3", Sched: cards.WorkHours}) || tmp.FeeBillID != nil {
			t.Fatalf("contractor's card: %+v %v", tmp, err)
		}
		staff, err := d.reg.ApplyOther(ctx, cards.OtherInput{Type: "staff", Person: estate.PersonInput{Name: "赵保安", Phone: "13500135000",
			IDType: "resident_id", IDLast4: "7777"}, Zones: []string{"gate", "b1", "b2", "b3"}, Until: "2027-11-19"})
		if err != nil || staff.Unit != nil || len(staff.Rights) != 4 {
			t.Fatalf("staff card: %+v %v", staff, err)
		}
		own, err := d.reg.Apply(ctx, cards.ApplyInput{Unit: "3-2-1801", PersonID: owner.PersonID})
		if err != nil {
			t.Fatal(err)
		}
		tmp, staff, own = d.issue(t, tmp), d.issue(t, staff), d.issue(t, own)
		exp, err := d.reg.Expiring(ctx, 30)
		if err != nil || len(exp) != 1 || exp[0].ID != tmp.ID {
			t.Fatalf("expiring within 30 days: %+v %v", exp, err)
		}
		// The owner moves out with the card still in use.
		if _, err := d.es.MoveOut(ctx, owner.ID, "2026-11-19"); err != nil {
			t.Fatal(err)
		}
		rec, err := d.reg.Reconcile(ctx)
		if err != nil || len(rec.Units) != 1 || rec.Units[0].Issued != 2 || rec.Units[0].Active != 2 || len(rec.Leavers) != 1 || rec.Leavers[0].ID != own.ID {
			t.Fatalf("reconciliation: %+v %v", rec, err)
		}
		pc, err := d.reg.PersonCards(ctx, owner.PersonID)
		if err != nil || len(pc) != 1 {
			t.Fatalf("the leaver's cards: %+v %v", pc, err)
		}
		if _, err := d.reg.Cancel(ctx, own.ID, "已搬离，卡未交回"); err != nil {
			t.Fatal(err)
		}
		if rec, _ := d.reg.Reconcile(ctx); len(rec.Leavers) != 0 {
			t.Fatalf("after cancelling: %+v", rec.Leavers)
		}
	})
}

func TestAccessGroups(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		d := newDesk(t, db)
		ctx := d.clerk
		d.es.CreateUnit(ctx, estate.UnitInput{Code: "1-1-101", Area: 9000, HandoverDate: "2020-01-01"})
		owner := d.moveIn(t, "1-1-101", estate.MoveIn{Role: estate.Owner, MovedInOn: "2020-02-01",
			Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}})
		rights, err := cards.ParseRights("gym, b2:workhours，gate")
		if err != nil || len(rights) != 3 || rights[1] != (cards.Right{Zone: "b2", Sched: "workhours"}) {
			t.Fatalf("ParseRights: %+v %v", rights, err)
		}
		for _, bad := range []string{"", "Gym", "gym, gym", "b2:", "b2:Night"} {
			if _, err := cards.ParseRights(bad); err == nil {
				t.Errorf("ParseRights(%q) accepted", bad)
			}
		}
		g, err := d.reg.SaveGroup(ctx, cards.Group{Code: "club", Name: "会所", Rights: rights})
		if err != nil || g.Version != 1 {
			t.Fatalf("save: %+v %v", g, err)
		}
		if _, err := d.reg.SaveGroup(ctx, cards.Group{Code: "club", Name: "会所", Rights: rights}); fault.Code(err) != "stale_version" {
			t.Fatalf("stale: %v", err)
		}
		if _, err := d.reg.SaveGroup(ctx, cards.Group{Code: "Club!", Name: "x", Rights: rights}); fault.Code(err) != "group_code_invalid" {
			t.Fatalf("bad code: %v", err)
		}
		if _, err := d.reg.Apply(ctx, cards.ApplyInput{Unit: "1-1-101", PersonID: owner.PersonID, Groups: []string{"nope"}}); fault.Code(err) != "group_not_found" {
			t.Fatalf("unknown group: %v", err)
		}
		c, err := d.reg.Apply(ctx, cards.ApplyInput{Unit: "1-1-101", PersonID: owner.PersonID, Groups: []string{"club"}})
		if err != nil {
			t.Fatal(err)
		}
		// gate, b1, b1-lift by default; the group adds gym and b2 (gate stays always).
		want := map[string]string{"gate": "always", "b1": "always", "b1-lift": "always", "gym": "always", "b2": "workhours"}
		if len(c.Rights) != len(want) {
			t.Fatalf("rights %+v", c.Rights)
		}
		for _, r := range c.Rights {
			if want[r.Zone] != r.Sched {
				t.Errorf("right %+v", r)
			}
		}
		gs, err := d.reg.Groups(ctx)
		if err != nil || len(gs) != 1 || len(gs[0].Rights) != 3 {
			t.Fatalf("groups %+v %v", gs, err)
		}
	})
}
