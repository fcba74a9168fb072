package estate_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/simplifiedchinese"

	"onecard/auth"
	"onecard/estate"
	"onecard/fault"
	"onecard/store"
	"onecard/store/storetest"
)

const rollHeaderZH = "房号,建筑面积,交房日期,姓名,电话,证件类型,证件后四位,身份,入住日期,租期开始,租期结束,业主同意方式,备注\n"

// goodRoll has units, owners (one owning two units), family members (one
// listed before the owner who confirms them), a tenant and a unit with
// nobody in it.
const goodRoll = rollHeaderZH +
	"3-2-1801,89.5,2024-06-30,张伟,13800138000,居民身份证,123X,业主,2024-07-01,,,,\n" +
	"3-2-1801,,,李娜,138 0013 9000,居民身份证,4567,家属,2024-07-01,,,,\n" +
	"3-2-1801,89.50,2024/6/30,张小伟,13700137000,居民身份证,0012,家属,,,,,\n" +
	"3-2-1802,90,2024-06-30,王芳,13600136000,护照,E123,业主,2024-07-02,,,,\n" +
	"3-2-1802,,,Tom Smith,+44 7700 900123,passport,ab12,tenant,2025-01-01,2025-01-01,2026-01-01,phone,\"called 王芳, 2024-12-20\"\n" +
	"5-1-301,,,赵六,13500135000,居民身份证,1111,家属,,,,,\n" +
	"5-1-301,,,赵五,13500135001,居民身份证,2222,业主,,,,,\n" +
	"5-1-302,,,张伟,13800138000,居民身份证,123X,业主,,,,,\n" +
	"1-1-101,75.25,,,,,,,,,,,\n"

func openSite(t *testing.T, db *store.DB) *estate.Service {
	t.Helper()
	s, err := estate.Open(context.Background(), db, "demo", "Demo Estate", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// freshDB returns another empty database of the same kind as db.
func freshDB(t *testing.T, db *store.DB) *store.DB {
	if db.Dialect == store.Postgres {
		return storetest.Postgres(t)
	}
	return storetest.SQLite(t)
}

func readCSV(t *testing.T, text string) []estate.RollRow {
	t.Helper()
	rows, err := estate.ReadRoll(strings.NewReader(text), "csv")
	if err != nil {
		t.Fatalf("ReadRoll: %v", err)
	}
	return rows
}

// problems lists an import error's rows as "line field code".
func problems(t *testing.T, err error) []string {
	t.Helper()
	var ie *estate.ImportError
	if !errors.As(err, &ie) {
		t.Fatalf("want *estate.ImportError, got %T %v", err, err)
	}
	if !errors.Is(err, fault.ErrInvalid) {
		t.Errorf("ImportError does not unwrap to fault.ErrInvalid")
	}
	var out []string
	for _, r := range ie.Rows {
		out = append(out, fmt.Sprintf("%d %s %s", r.Line, r.Field, r.Code))
	}
	return out
}

func auditCount(t *testing.T, db *store.DB, action string) int {
	t.Helper()
	rows, err := auth.New(db, auth.DefaultPolicy).Audit(context.Background(), auth.AuditFilter{Action: action, Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return len(rows)
}

func stats(t *testing.T, s *estate.Service) estate.Stats {
	t.Helper()
	st, err := s.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestImportRoll(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := openSite(t, db)
		res, err := s.ImportRoll(ctx, readCSV(t, goodRoll))
		if err != nil {
			t.Fatal(err)
		}
		if want := (estate.ImportResult{UnitsCreated: 5, ResidentsCreated: 8}); res != want {
			t.Fatalf("result %+v, want %+v", res, want)
		}
		// 张伟 owns two units: eight occupancies, seven people.
		if got, want := stats(t, s), (estate.Stats{Buildings: 3, Units: 5, Residents: 7, Tenants: 1}); got != want {
			t.Errorf("stats %+v, want %+v", got, want)
		}

		u, err := s.Unit(ctx, "3-2-1801")
		if err != nil {
			t.Fatal(err)
		}
		if u.Area.String() != "89.5" || u.HandoverDate == nil || *u.HandoverDate != "2024-06-30" {
			t.Errorf("unit %+v", u.Unit)
		}
		if len(u.Occupancies) != 3 {
			t.Fatalf("3-2-1801 occupancies %+v", u.Occupancies)
		}
		owner := u.Occupancies[0]
		if owner.Name != "张伟" || owner.Role != estate.Owner || owner.IDLast4 != "123X" || owner.MovedInOn != "2024-07-01" {
			t.Errorf("owner %+v", owner)
		}
		for _, o := range u.Occupancies[1:] {
			if o.Role != estate.Family || o.ConfirmedBy == nil || *o.ConfirmedBy != owner.PersonID {
				t.Errorf("family member not confirmed by the owner: %+v", o)
			}
		}
		if p := u.Occupancies[1]; p.Phone != "13800139000" {
			t.Errorf("phone not normalised: %q", p.Phone)
		}
		if p := u.Occupancies[2]; p.MovedInOn != s.Today() || p.IDLast4 != "0012" {
			t.Errorf("blank move-in date is not today, or ID lost its zeros: %+v", p)
		}

		// A family member listed before the owner is confirmed by that owner.
		u5, err := s.Unit(ctx, "5-1-301")
		if err != nil {
			t.Fatal(err)
		}
		if len(u5.Occupancies) != 2 || u5.Occupancies[1].ConfirmedBy == nil || *u5.Occupancies[1].ConfirmedBy != u5.Occupancies[0].PersonID {
			t.Errorf("5-1-301 %+v", u5.Occupancies)
		}

		// One person owning two units is one person.
		_, occ, err := s.Person(ctx, owner.PersonID)
		if err != nil || len(occ) != 2 {
			t.Errorf("张伟 has %d occupancies (%v), want 2", len(occ), err)
		}

		u2, err := s.Unit(ctx, "3-2-1802")
		if err != nil {
			t.Fatal(err)
		}
		tenant := u2.Occupancies[1]
		if tenant.Role != estate.Tenant || tenant.Phone != "+447700900123" || tenant.IDType != "passport" || tenant.IDLast4 != "AB12" ||
			*tenant.LeaseStart != "2025-01-01" || *tenant.LeaseEnd != "2026-01-01" || *tenant.ConsentMethod != "phone" ||
			tenant.ConsentNote != "called 王芳, 2024-12-20" {
			t.Errorf("tenant %+v", tenant)
		}

		if n := auditCount(t, db, "estate.import"); n != 1 {
			t.Errorf("%d estate.import audit rows, want 1", n)
		}
	})
}

func TestImportRollOneBadRowImportsNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := openSite(t, db)
		bad := strings.Replace(goodRoll, "13600136000", "1360013600", 1) // line 5: 王芳's phone
		_, err := s.ImportRoll(ctx, readCSV(t, bad))
		if got, want := problems(t, err), []string{"5 phone phone_invalid"}; !slices.Equal(got, want) {
			t.Errorf("problems %q, want %q", got, want)
		}
		if st := stats(t, s); st != (estate.Stats{}) {
			t.Errorf("something was imported: %+v", st)
		}
		if empty, err := s.IsEmpty(ctx); err != nil || !empty {
			t.Errorf("IsEmpty %v, %v", empty, err)
		}
		for _, action := range []string{"estate.import", "unit.", "person.", "occupancy."} {
			if n := auditCount(t, db, action); n != 0 {
				t.Errorf("%d %s audit rows after a rejected import", n, action)
			}
		}
	})
}

func TestImportRollReportsEveryBadRow(t *testing.T) {
	// Each case is one row of one file; the file's line is its index + 2.
	cases := []struct {
		row  string
		want []string // "field code", in the order reported
	}{
		{"9-9-0000,,,,,,,,,,,,", []string{"unit unit_code_invalid"}},
		{",,,王五,13800000001,居民身份证,1234,业主,,,,,", []string{"unit unit_required"}},
		{"1-1-101,abc,,,,,,,,,,,", []string{"area_m2 area_invalid"}},
		{"1-1-102,,2024-13-01,,,,,,,,,,", []string{"handover_date date_invalid"}},
		{"1-1-103,,,张三,12345,居民身份证,12AB,业主,,,,,", []string{"phone phone_invalid", "id_last4 id_last4_invalid"}},
		{"1-1-104,,,李四,13800000002,居民身份证,1234,家属,,,,,", []string{"role family_without_owner"}},
		{"1-1-105,,,,13800000003,,,,,,,,", []string{"phone person_fields_on_unit_row"}},
		{"1-1-106,,,王租,13800000004,居民身份证,1234,租户,,2025-01-01,2024-01-01,书面,", []string{"lease_end lease_end_before_start"}},
		{"1-1-106,,,王租二,13800000005,居民身份证,1235,租户,,2025-01-01,2026-01-01,,", []string{"consent_method tenant_needs_consent"}},
		{"1-1-106,,,王租三,13800000006,居民身份证,1236,租户,,2025-01-01,2026-01-01,电话,", []string{"note phone_consent_needs_note"}},
		{"1-1-106,,,王租四,13800000016,居民身份证,1246,租户,,,2026-01-01,当面,", []string{"lease_start date_invalid"}},
		{"1-1-107,80,,周一,13800000007,居民身份证,1237,业主,,,,,", nil},
		{"1-1-107,81,,周二,13800000008,居民身份证,1238,家属,,,,,", []string{"area_m2 unit_fields_disagree"}},
		{"1-1-107,,,周一,13800000007,居民身份证,1237,业主,,,,,", []string{"name duplicate_row"}},
		{"1-1-108,,,吴一,13800000009,居民身份证,1239,管家,,,,,", []string{"role occupancy_role_invalid"}},
		{"1-1-108,,,吴二,13800000010,居民身份证,1240,业主,2024-02-30,,,,", []string{"moved_in_on date_invalid"}},
		{"1-1-109,,,郑一,13800000011,居民身份证,1241,业主,,2025-01-01,,,", []string{"lease_start lease_fields_on_non_tenant"}},
		{"1-1-110,,,周一,13800000007,居民身份证,9999,业主,,,,,", []string{"id_last4 person_fields_disagree"}},
		{"1-1-111,100000.01,,,,,,,,,,,", []string{"area_m2 area_invalid"}},
		{"1-1-112,,,冯一,13800000012,驾照,1242,业主,,,,,", []string{"id_type id_type_invalid"}},
		{"1-1-113,,,,,,,,,,,,", nil},
	}
	var file strings.Builder
	file.WriteString(rollHeaderZH)
	var want []string
	for i, c := range cases {
		file.WriteString(c.row + "\n")
		for _, w := range c.want {
			want = append(want, fmt.Sprintf("%d %s", i+2, w))
		}
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := openSite(t, db)
		_, err := s.ImportRoll(context.Background(), readCSV(t, file.String()))
		got := problems(t, err)
		if !slices.Equal(got, want) {
			t.Errorf("problems:\n got %q\nwant %q", got, want)
		}
		if st := stats(t, s); st.Units != 0 {
			t.Errorf("units imported: %+v", st)
		}
	})
}

func TestImportRollAgainstExistingUnits(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := openSite(t, db)
		if _, err := s.CreateUnit(ctx, estate.UnitInput{Code: "2-1-301", Area: 8850, HandoverDate: "2024-01-01"}); err != nil {
			t.Fatal(err)
		}
		owner, err := s.MoveIn(ctx, "2-1-301", estate.MoveIn{Role: estate.Owner, MovedInOn: "2024-02-01",
			Person: &estate.PersonInput{Name: "陈一", Phone: "13900000001", IDType: "resident_id", IDLast4: "5678"}})
		if err != nil {
			t.Fatal(err)
		}

		rejected := []struct {
			name, row string
			want      []string
		}{
			{"area differs", "2-1-301,90,,,,,,,,,,,", []string{"2 area_m2 unit_conflicts_existing"}},
			{"handover differs", "2-1-301,88.5,2024-02-01,,,,,,,,,,", []string{"2 handover_date unit_conflicts_existing"}},
			{"resident in another role", "2-1-301,,,陈一,13900000001,居民身份证,5678,租户,,2025-01-01,2026-01-01,书面,",
				[]string{"2 role already_resident"}},
			{"person with another ID", "2-1-302,,,陈一,13900000001,居民身份证,5679,业主,,,,,",
				[]string{"2 id_last4 person_conflicts_existing"}},
			{"occupancy differs", "2-1-301,,,陈一,13900000001,居民身份证,5678,业主,2024-03-01,,,,",
				[]string{"2 moved_in_on occupancy_conflicts_existing"}},
		}
		for _, c := range rejected {
			_, err := s.ImportRoll(ctx, readCSV(t, rollHeaderZH+c.row+"\n"))
			if got := problems(t, err); !slices.Equal(got, c.want) {
				t.Errorf("%s: problems %q, want %q", c.name, got, c.want)
			}
		}

		// Agreeing or blank unit columns leave the unit as it is; the owner
		// already there confirms a new family member; a person already in
		// the directory is reused.
		roll := rollHeaderZH +
			"2-1-301,88.5,2024-01-01,,,,,,,,,,\n" +
			"2-1-301,,,,,,,,,,,,\n" +
			"2-1-301,,,陈一,13900000001,居民身份证,5678,业主,2024-02-01,,,,\n" +
			"2-1-301,,,陈二,13900000002,居民身份证,1234,家属,,,,,\n" +
			"2-1-302,,,陈一,13900000001,居民身份证,5678,业主,,,,,\n"
		res, err := s.ImportRoll(ctx, readCSV(t, roll))
		if err != nil {
			t.Fatal(err)
		}
		if want := (estate.ImportResult{UnitsCreated: 1, ResidentsCreated: 2, Unchanged: 3}); res != want {
			t.Errorf("result %+v, want %+v", res, want)
		}
		u, err := s.Unit(ctx, "2-1-301")
		if err != nil {
			t.Fatal(err)
		}
		if u.Version != 1 || u.Area != 8850 || len(u.Occupancies) != 2 {
			t.Errorf("unit %+v", u)
		}
		if fam := u.Occupancies[1]; fam.ConfirmedBy == nil || *fam.ConfirmedBy != owner.PersonID {
			t.Errorf("family member %+v not confirmed by %d", fam, owner.PersonID)
		}
		_, occ, err := s.Person(ctx, owner.PersonID)
		if err != nil || len(occ) != 2 {
			t.Errorf("陈一 not reused: %d occupancies, %v", len(occ), err)
		}
	})
}

// rollXLSX builds a roll the way a clerk's Excel file looks: a title row,
// English headers in another order, real numbers and dates in cells, an
// ID's last digits as a number formatted "0000", and a blank row.
func rollXLSX(t *testing.T) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	const sh = "Sheet1"
	set := func(cell string, v any) {
		if err := f.SetCellValue(sh, cell, v); err != nil {
			t.Fatal(err)
		}
	}
	set("A1", "阳光花园业主花名册")
	header := []any{" Name", "UNIT", "Role", "phone", "id_type", "id_last4", "area_m2", "handover_date", "moved_in_on",
		"lease_start", "lease_end", "consent_method", "备注"}
	if err := f.SetSheetRow(sh, "A2", &header); err != nil {
		t.Fatal(err)
	}
	handover := time.Date(2024, 6, 30, 0, 0, 0, 0, time.UTC)
	rows := [][]any{
		{"张伟", "3-2-1801", "业主", 13800138000, "居民身份证", "123x", 89.55, handover, "2024/7/1"},
		{"李娜", "3-2-1801", "家属", "13800139000", "resident_id", 12, nil, nil, "2024-07-01"},
		{},
		{"Tom Smith", "3-2-1802", "租户", "+447700900123", "护照", "AB12", 90, handover, "2025-01-01", "2025-01-01", "2026-01-01", "书面", "=owner signed"},
		{"王芳", "3-2-1802", "owner", "13600136000", "passport", "E123", nil, nil, "2024-07-02"},
		{nil, "1-1-101", nil, nil, nil, nil, 75.25},
	}
	for i, r := range rows {
		if err := f.SetSheetRow(sh, fmt.Sprintf("A%d", i+3), &r); err != nil {
			t.Fatal(err)
		}
	}
	zeros, err := f.NewStyle(&excelize.Style{CustomNumFmt: ptr("0000")})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetCellStyle(sh, "F4", "F4", zeros); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func ptr[T any](v T) *T { return &v }

func export(t *testing.T, s *estate.Service, format string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := s.ExportRoll(context.Background(), &buf, format); err != nil {
		t.Fatalf("export %s: %v", format, err)
	}
	return buf.Bytes()
}

func TestRollXLSXRoundTrip(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		ctx := context.Background()
		s := openSite(t, db)
		rows, err := estate.ReadRoll(bytes.NewReader(rollXLSX(t)), "xlsx")
		if err != nil {
			t.Fatal(err)
		}
		if got := []int{rows[0].Line, rows[2].Line}; !slices.Equal(got, []int{3, 6}) {
			t.Errorf("lines %v, want [3 6]", got)
		}
		if r := rows[0]; r.Area != "89.55" || r.Phone != "13800138000" || r.HandoverDate != "2024-06-30" {
			t.Errorf("numbers or dates read wrongly: %+v", r)
		}
		if rows[1].IDLast4 != "0012" {
			t.Errorf("formatted ID digits read as %q", rows[1].IDLast4)
		}
		res, err := s.ImportRoll(ctx, rows)
		if err != nil {
			t.Fatal(err)
		}
		if want := (estate.ImportResult{UnitsCreated: 3, ResidentsCreated: 4}); res != want {
			t.Fatalf("result %+v, want %+v", res, want)
		}

		csv1, xlsx1 := export(t, s, "csv"), export(t, s, "xlsx")
		wantCSV := "\uFEFF" + strings.ReplaceAll(rollHeaderZH, "\n", "\r\n") +
			"1-1-101,75.25,,,,,,,,,,,\r\n" +
			"3-2-1801,89.55,2024-06-30,张伟,13800138000,居民身份证,123X,业主,2024-07-01,,,,\r\n" +
			"3-2-1801,89.55,2024-06-30,李娜,13800139000,居民身份证,0012,家属,2024-07-01,,,,\r\n" +
			"3-2-1802,90,2024-06-30,王芳,13600136000,护照,E123,业主,2024-07-02,,,,\r\n" +
			"3-2-1802,90,2024-06-30,Tom Smith,'+447700900123,护照,AB12,租户,2025-01-01,2025-01-01,2026-01-01,书面,'=owner signed\r\n"
		if string(csv1) != wantCSV {
			t.Errorf("csv export:\n%s\nwant:\n%s", csv1, wantCSV)
		}
		fromCSV, err := estate.ReadRoll(bytes.NewReader(csv1), "csv")
		if err != nil {
			t.Fatal(err)
		}
		fromXLSX, err := estate.ReadRoll(bytes.NewReader(xlsx1), "xlsx")
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(fromCSV, fromXLSX) {
			t.Errorf("csv and xlsx exports differ:\n%+v\n%+v", fromCSV, fromXLSX)
		}

		// The export imports cleanly into an empty site and exports the same.
		s2 := openSite(t, freshDB(t, db))
		res2, err := s2.ImportRoll(ctx, fromXLSX)
		if err != nil {
			t.Fatal(err)
		}
		if res2 != res {
			t.Errorf("re-import into a fresh site: %+v, want %+v", res2, res)
		}
		if csv2 := export(t, s2, "csv"); !bytes.Equal(csv2, csv1) {
			t.Errorf("csv exports differ:\n%s\n%s", csv1, csv2)
		}
		if xlsx2 := export(t, s2, "xlsx"); !bytes.Equal(xlsx2, xlsx1) {
			t.Errorf("xlsx exports differ")
		}

		// Importing the export again into the same site changes nothing.
		before, audits := stats(t, s), auditCount(t, db, "")
		for _, again := range [][]estate.RollRow{fromCSV, fromXLSX} {
			res3, err := s.ImportRoll(ctx, again)
			if err != nil {
				t.Fatal(err)
			}
			if want := (estate.ImportResult{Unchanged: len(again)}); res3 != want {
				t.Errorf("re-import: %+v, want %+v", res3, want)
			}
		}
		if after := stats(t, s); after != before {
			t.Errorf("stats %+v after re-import, were %+v", after, before)
		}
		if n := auditCount(t, db, ""); n != audits {
			t.Errorf("%d audit rows after re-import, were %d", n, audits)
		}
		if csv3 := export(t, s, "csv"); !bytes.Equal(csv3, csv1) {
			t.Errorf("export changed after re-import")
		}
	})
}

func TestImportRollGB18030(t *testing.T) {
	gbk, err := simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(goodRoll))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(gbk, []byte(goodRoll)) {
		t.Fatal("test file is not GB18030-encoded")
	}
	rows, err := estate.ReadRoll(bytes.NewReader(gbk), "csv")
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 9 || rows[0].Name != "张伟" || rows[0].IDType != "居民身份证" || rows[1].Role != "家属" {
		t.Fatalf("rows %+v", rows)
	}
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := openSite(t, db)
		res, err := s.ImportRoll(context.Background(), rows)
		if err != nil {
			t.Fatal(err)
		}
		if res.UnitsCreated != 5 || res.ResidentsCreated != 8 {
			t.Errorf("result %+v", res)
		}
		u, err := s.Unit(context.Background(), "3-2-1802")
		if err != nil || len(u.Occupancies) != 2 || u.Occupancies[0].Name != "王芳" {
			t.Errorf("3-2-1802: %+v, %v", u, err)
		}
	})
}

func TestReadRoll(t *testing.T) {
	const en = "unit,area_m2,handover_date,name,phone,id_type,id_last4,role,moved_in_on,lease_start,lease_end,consent_method,note\n"
	cases := []struct {
		name, file string
		format     string
		rows       []estate.RollRow // when it reads
		problems   []string         // when it does not: "line field code"
	}{
		{name: "english headers in any order, BOM, blank rows skipped",
			file: "\uFEFF  Name ,ROLE,Unit,Phone,ID_Type,ID_Last4\n\n张伟,业主,3-2-1801,13800138000,resident_id,123X\n,,,,,\n\n 李娜 ,家属,3-2-1801,13800139000,resident_id,4567\n",
			rows: []estate.RollRow{
				{Line: 3, Unit: "3-2-1801", Name: "张伟", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X", Role: "业主"},
				{Line: 6, Unit: "3-2-1801", Name: "李娜", Phone: "13800139000", IDType: "resident_id", IDLast4: "4567", Role: "家属"},
			}},
		{name: "a cell over two lines is one row",
			file: en + "3-2-1801,,,王芳,13600136000,护照,E123,租户,,2025-01-01,2026-01-01,电话,\"called\r\nthe owner\"\n1-1-101\n",
			rows: []estate.RollRow{
				{Line: 2, Unit: "3-2-1801", Name: "王芳", Phone: "13600136000", IDType: "护照", IDLast4: "E123", Role: "租户",
					LeaseStart: "2025-01-01", LeaseEnd: "2026-01-01", ConsentMethod: "电话", Note: "called\nthe owner"},
				{Line: 3, Unit: "1-1-101"},
			}},
		{name: "title rows above the header", file: "阳光花园业主花名册,,\n2026年\n" + en + "1-1-101\n",
			rows: []estate.RollRow{{Line: 4, Unit: "1-1-101"}}},
		{name: "formula guard taken off", file: en + "1-1-101,,,'=x,'+4412345678,,,,,,,,'-ok\n",
			rows: []estate.RollRow{{Line: 2, Unit: "1-1-101", Name: "=x", Phone: "+4412345678", Note: "-ok"}}},
		{name: "header only", file: rollHeaderZH, rows: []estate.RollRow{}},
		{name: "unknown column", file: "序号," + en + "1,1-1-101\n", problems: []string{"1  unknown_columns"}},
		{name: "missing columns", file: "房号,姓名,身份\n1-1-101\n", problems: []string{"1  missing_columns"}},
		{name: "unknown and missing", file: "房号,姓名,手机\n", problems: []string{"1  unknown_columns", "1  missing_columns"}},
		{name: "duplicate column", file: "房号,unit,姓名,电话,证件类型,证件后四位,身份\n", problems: []string{"1 unit duplicate_column"}},
		{name: "no header", file: "3-2-1801,89.5,2024-06-30\n", problems: []string{"1  header_missing"}},
		{name: "empty file", file: "\n\n", problems: []string{"0  header_missing"}},
		{name: "cells outside the columns", file: en + "1-1-101,,,,,,,,,,,,,x,,y\n\n1-1-102,,,,,,,,,,,,,,\n",
			problems: []string{"2  cell_outside_columns", "2  cell_outside_columns"}},
		{name: "bad quoting", file: en + "1-1-101\n1-1-102,\"x\"y\n", problems: []string{"3  csv_invalid"}},
		{name: "utf-16", file: "\xFF\xFEx\x00", problems: []string{"0  encoding_unsupported"}},
		{name: "neither utf-8 nor gb18030", file: en + "1-1-101,\xFF\xFF\n", problems: []string{"0  encoding_invalid"}},
		{name: "not a workbook", file: en, format: "xlsx", problems: []string{"0  file_unreadable"}},
		{name: "old excel", file: en, format: "xls", problems: []string{"0 format format_unsupported"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			format := c.format
			if format == "" {
				format = "csv"
			}
			rows, err := estate.ReadRoll(strings.NewReader(c.file), format)
			if c.problems != nil {
				if got := problems(t, err); !slices.Equal(got, c.problems) {
					t.Errorf("problems %q, want %q", got, c.problems)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(rows, c.rows) {
				t.Errorf("rows\n got %+v\nwant %+v", rows, c.rows)
			}
		})
	}
}

func TestReadRollUnknownColumnNamed(t *testing.T) {
	_, err := estate.ReadRoll(strings.NewReader("序号,房号,姓名,电话,证件类型,证件后四位,身份,楼层\n"), "csv")
	var ie *estate.ImportError
	if !errors.As(err, &ie) || len(ie.Rows) != 1 {
		t.Fatalf("err %v", err)
	}
	if got := fmt.Sprint(ie.Rows[0].Args["columns"]); got != "[序号 楼层]" {
		t.Errorf("unknown columns named %s", got)
	}
}

func TestReadRollLimits(t *testing.T) {
	var big strings.Builder
	big.WriteString(rollHeaderZH)
	for i := 0; i <= estate.MaxRollRows; i++ {
		fmt.Fprintf(&big, "1-1-%d\n", 101+i%99)
	}
	_, err := estate.ReadRoll(strings.NewReader(big.String()), "csv")
	if got := problems(t, err); len(got) != 1 || got[0] != fmt.Sprintf("%d  too_many_rows", estate.MaxRollRows+2) {
		t.Errorf("too many rows: %q", got)
	}

	huge := rollHeaderZH + strings.Repeat("1-1-101,,,,,,,,,,,,\n", estate.MaxRollBytes/20+1)
	_, err = estate.ReadRoll(strings.NewReader(huge), "csv")
	if got := problems(t, err); !slices.Equal(got, []string{"0  file_too_large"}) {
		t.Errorf("too large: %q", got)
	}
}

func TestReadRollXLSXCells(t *testing.T) {
	f := excelize.NewFile()
	defer f.Close()
	rows := [][]any{
		{"房号", "姓名", "电话", "证件类型", "证件后四位", "身份", "交房日期", "入住日期", "建筑面积"},
		{"1-1-101", "张伟", 8613800138000, "身份证", "123X", "业主", 45473, "45473", 89.549999999999997},
	}
	for i, r := range rows {
		if err := f.SetSheetRow("Sheet1", fmt.Sprintf("A%d", i+1), &r); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := estate.ReadRoll(bytes.NewReader(buf.Bytes()), ".XLSX")
	if err != nil {
		t.Fatal(err)
	}
	want := []estate.RollRow{{Line: 2, Unit: "1-1-101", Name: "张伟", Phone: "8613800138000", IDType: "身份证", IDLast4: "123X",
		Role: "业主", HandoverDate: "2024-06-30", MovedInOn: "45473", Area: "89.55"}}
	if !slices.Equal(got, want) {
		t.Errorf("rows\n got %+v\nwant %+v", got, want)
	}

	// A damaged workbook is refused, whatever the damage.
	for _, n := range []int{10, buf.Len() / 2, buf.Len() - 10} {
		_, err := estate.ReadRoll(bytes.NewReader(buf.Bytes()[:n]), "xlsx")
		if got := problems(t, err); !slices.Equal(got, []string{"0  file_unreadable"}) {
			t.Errorf("truncated to %d bytes: %q", n, got)
		}
	}
}
