package estate_test

import (
	"context"
	"errors"
	"testing"

	"onecard/auth"
	"onecard/estate"
	"onecard/fault"
	"onecard/store"
	"onecard/store/storetest"
)

func openDirectory(t *testing.T, db *store.DB) *estate.Service {
	t.Helper()
	s, err := estate.Open(context.Background(), db, "demo", "Demo Estate", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func person(name, phone string) *estate.PersonInput {
	return &estate.PersonInput{Name: name, Phone: phone, IDType: "resident_id", IDLast4: "1234"}
}

func TestDirectory(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := auth.WithActor(context.Background(), auth.Actor{Kind: "staff", ID: 1, Name: "clerk", Role: auth.Clerk})
		s := openDirectory(t, db)
		for _, code := range []string{"3-2-1801", "3-2-1802", "3-1-101", "1-1-201", "3-12-101"} {
			if _, err := s.CreateUnit(ctx, estate.UnitInput{Code: code, Area: 8952}); err != nil {
				t.Fatal(code, err)
			}
		}
		owner, err := s.MoveIn(ctx, "3-2-1801", estate.MoveIn{Role: estate.Owner, MovedInOn: "2021/7/1", Person: person("陈建华", "13800138000")})
		if err != nil {
			t.Fatal(err)
		}
		if owner.MovedInOn != "2021-07-01" {
			t.Errorf("moved_in_on %q", owner.MovedInOn)
		}
		fam, err := s.MoveIn(ctx, "3-2-1801", estate.MoveIn{Role: estate.Family, ConfirmedBy: owner.PersonID, Person: person("陈一诺", "13900139000")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.MoveIn(ctx, "3-2-1802", estate.MoveIn{Role: estate.Family, ConfirmedBy: owner.PersonID, Person: person("x", "13900139001")}); fault.Code(err) != "confirmer_not_owner" {
			t.Fatalf("owner of another unit confirmed a family member: %v", err)
		}
		if _, err := s.MoveIn(ctx, "3-2-1802", estate.MoveIn{Role: estate.Tenant, LeaseStart: "2026-01-01", LeaseEnd: "2026-01-01",
			ConsentMethod: "written", Person: person("租客", "13700137000")}); fault.Code(err) != "lease_end_before_start" {
			t.Fatalf("zero-length lease: %v", err)
		}

		search := []struct {
			q    string
			want []string
		}{
			{"3-2-1801", []string{"3-2-1801"}},
			{"３－２－１８０１", []string{"3-2-1801"}},
			{"3-2", []string{"3-2-1801", "3-2-1802"}},
			{"3-", []string{"3-1-101", "3-2-1801", "3-2-1802", "3-12-101"}},
			{"3-1", []string{"3-1-101"}},
			{"3-2-18", []string{"3-2-1801", "3-2-1802"}},
			{"建华", []string{"3-2-1801"}},
			{"陈", []string{"3-2-1801"}},
			{"0013", []string{"3-2-1801"}},
			{"139001", []string{"3-2-1801"}},
			{"1801", []string{"3-2-1801"}},
			{"%", nil},
			{"_", nil},
			{"nobody", nil},
		}
		for _, tc := range search {
			got, total, err := s.Search(ctx, estate.Query{Q: tc.q})
			if err != nil {
				t.Fatal(tc.q, err)
			}
			var codes []string
			for _, u := range got {
				codes = append(codes, u.Code)
			}
			if len(codes) != len(tc.want) || total != len(tc.want) {
				t.Errorf("search %q: %v (total %d), want %v", tc.q, codes, total, tc.want)
				continue
			}
			for i := range codes {
				if codes[i] != tc.want[i] {
					t.Errorf("search %q: %v, want %v", tc.q, codes, tc.want)
					break
				}
			}
		}
		got, _, _ := s.Search(ctx, estate.Query{Q: "3-2-1801"})
		if len(got[0].Residents) != 2 || got[0].Residents[0].Role != estate.Owner {
			t.Errorf("residents in search: %+v", got[0].Residents)
		}

		// Move-out keeps the row and ends the residence.
		if _, err := s.MoveOut(ctx, fam.ID, "2021-01-01"); fault.Code(err) != "move_out_before_move_in" {
			t.Fatalf("move out before move in: %v", err)
		}
		out, err := s.MoveOut(ctx, fam.ID, "")
		if err != nil || out.MovedOutOn == nil {
			t.Fatalf("move out: %+v %v", out, err)
		}
		if _, err := s.MoveOut(ctx, fam.ID, ""); !errors.Is(err, fault.ErrConflict) {
			t.Fatalf("second move out: %v", err)
		}
		d, err := s.Unit(ctx, "3-2-1801")
		if err != nil || len(d.Occupancies) != 2 || !d.Occupancies[0].Current() || d.Occupancies[1].Current() {
			t.Fatalf("unit after move-out: %+v %v", d.Occupancies, err)
		}
		if got, _, _ := s.Search(ctx, estate.Query{Q: "一诺"}); len(got) != 0 {
			t.Errorf("a moved-out person is still found by name")
		}

		// Optimistic edits: the second of two edits from the same version loses.
		u := d.Unit
		if _, err := s.UpdateUnit(ctx, u.Code, estate.UnitInput{Area: 9000, Version: u.Version}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdateUnit(ctx, u.Code, estate.UnitInput{Area: 9100, Version: u.Version}); fault.Code(err) != "stale_version" {
			t.Fatalf("stale edit: %v", err)
		}
		p, _, err := s.Person(ctx, owner.PersonID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.UpdatePerson(ctx, p.ID, estate.PersonInput{Name: "陈建华", Phone: "021-12345678", IDType: "passport", IDLast4: "e12x", Version: p.Version}); err != nil {
			t.Fatal(err)
		}
		p2, _, _ := s.Person(ctx, p.ID)
		if p2.Phone != "021-12345678" || p2.IDLast4 != "E12X" || p2.Version != p.Version+1 {
			t.Errorf("person after edit: %+v", p2)
		}

		st, err := s.Stats(ctx)
		if err != nil || st.Units != 5 || st.Buildings != 2 || st.Residents != 1 {
			t.Errorf("stats %+v %v", st, err)
		}
		rows, err := auth.New(db, auth.DefaultPolicy).Audit(ctx, auth.AuditFilter{Entity: "unit", EntityID: itoa(u.ID)})
		if err != nil || len(rows) != 2 || rows[0].Action != "unit.update" || rows[0].Before == nil || rows[0].ActorName != "clerk" {
			t.Fatalf("unit audit: %+v %v", rows, err)
		}
	})
}

func itoa(n int64) string {
	b := []byte{}
	for n > 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestParsers(t *testing.T) {
	for in, want := range map[string]string{"3-2-1801": "3-2-1801", " 03-02-1801 ": "3-2-1801", "１－１－１０１": "1-1-101", "12-1-3304": "12-1-3304"} {
		c, err := estate.ParseUnitCode(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseUnitCode(%q) = %v, %v", in, c, err)
		}
	}
	for _, bad := range []string{"", "3-2", "3-2-1800", "0-1-101", "3-0-101", "3-2-18", "3-2-1801-1", "a-b-c", "3-2-0001"} {
		if _, err := estate.ParseUnitCode(bad); err == nil {
			t.Errorf("ParseUnitCode(%q) accepted", bad)
		}
	}
	for in, want := range map[string]estate.Area{"89": 8900, "89.5": 8950, "89.52": 8952, "０.５": 50, "": 0} {
		a, err := estate.ParseArea(in)
		if err != nil || a != want {
			t.Errorf("ParseArea(%q) = %d, %v", in, a, err)
		}
	}
	for _, bad := range []string{"89.521", "-1", "1e3", "abc", ".5", "1234567"} {
		if _, err := estate.ParseArea(bad); err == nil {
			t.Errorf("ParseArea(%q) accepted", bad)
		}
	}
	for in, want := range map[string]string{"138 0013 8000": "13800138000", "+86 138-0013-8000": "13800138000", "021-12345678": "021-12345678", "+85291234567": "+85291234567", "+86 10 12345678": "01012345678"} {
		if got := estate.NormalizePhone(in); got != want {
			t.Errorf("NormalizePhone(%q) = %q", in, got)
		}
	}
	for _, bad := range []string{"12345", "1380013800", "23800138000", "abc"} {
		if got := estate.NormalizePhone(bad); got != "" {
			t.Errorf("NormalizePhone(%q) = %q", bad, got)
		}
	}
}

func FuzzParseUnitCode(f *testing.F) {
	for _, s := range []string{"3-2-1801", "１－１－１０１", "-", "999-99-99999", "3--1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := estate.ParseUnitCode(s)
		if err != nil {
			return
		}
		again, err := estate.ParseUnitCode(c.String())
		if err != nil || again != c {
			t.Fatalf("%q parsed to %v, which reparses to %v, %v", s, c, again, err)
		}
	})
}
