package passes_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	"onecard/fault"
	"onecard/passes"
	"onecard/passes/passcode"
	"onecard/store"
	"onecard/store/storetest"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// site is an estate with an owner and a tenant in 1-1-101 (paid up) and an
// owner in 1-1-102 (in arrears).
type site struct {
	db                   *store.DB
	es                   *estate.Service
	p                    *passes.Service
	bill                 *billing.Service
	clerk, guard         context.Context
	supervisor, clerkAct auth.Actor
	owner, tenant        int64 // occupancy ids in 1-1-101
	owner2               int64 // in 1-1-102
	clock                *time.Time
}

func newSite(t testing.TB, db *store.DB) *site {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 4)
	rand.Read(b)
	// A site of its own: the gate terminal tests share a Mosquitto.
	es, err := estate.Open(ctx, db, "t"+hex.EncodeToString(b), "测试小区", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"1-1-101", "1-1-102"} {
		if _, err := es.CreateUnit(ctx, estate.UnitInput{Code: code, Area: 10000, HandoverDate: "2020-01-01"}); err != nil {
			t.Fatal(err)
		}
	}
	as := auth.New(db, auth.DefaultPolicy)
	actor := func(name string, role auth.Role) auth.Actor {
		st, err := as.CreateStaff(ctx, auth.NewStaff{Username: name, DisplayName: name, Role: role, Password: name + "-password-1"})
		if err != nil {
			t.Fatal(err)
		}
		return auth.Actor{Kind: "staff", ID: st.ID, Name: st.Username, Role: role}
	}
	s := &site{db: db, es: es}
	s.clerkAct, s.supervisor = actor("clerk1", auth.Clerk), actor("boss", auth.Supervisor)
	s.clerk, s.guard = auth.WithActor(ctx, s.clerkAct), auth.WithActor(ctx, actor("guard1", auth.Guard))
	moveIn := func(unit string, m estate.MoveIn) int64 {
		o, err := es.MoveIn(s.clerk, unit, m)
		if err != nil {
			t.Fatal(err)
		}
		return o.ID
	}
	s.owner = moveIn("1-1-101", estate.MoveIn{Role: estate.Owner, MovedInOn: "2020-02-01",
		Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}})
	s.tenant = moveIn("1-1-101", estate.MoveIn{Role: estate.Tenant, MovedInOn: "2025-03-01", LeaseStart: "2025-03-01", LeaseEnd: "2027-02-28",
		ConsentMethod: "written", ConsentNote: "租赁合同", Person: &estate.PersonInput{Name: "李娜", Phone: "13900139000", IDType: "resident_id", IDLast4: "4567"}})
	s.owner2 = moveIn("1-1-102", estate.MoveIn{Role: estate.Owner, MovedInOn: "2020-02-01",
		Person: &estate.PersonInput{Name: "王强", Phone: "13700137000", IDType: "resident_id", IDLast4: "8888"}})

	// 2026-12-20 10:00 at the site.
	now := time.Date(2026, 12, 20, 2, 0, 0, 0, time.UTC)
	s.clock = &now
	clock := func() time.Time { return *s.clock }
	if s.bill, err = billing.Open(ctx, db, es.Site(), billing.Options{Log: quiet}); err != nil {
		t.Fatal(err)
	}
	s.bill.SetClock(clock)
	cashier := auth.WithActor(ctx, actor("cash1", auth.Cashier))
	if _, err := s.bill.SaveFeeItem(cashier, billing.FeeItem{Code: "service", Name: "物业服务费", Kind: "per_area", PriceFen: 250}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.bill.Generate(cashier, "2026-11"); err != nil { // due 2026-11-15: overdue
		t.Fatal(err)
	}
	if _, err := s.bill.Pay(cashier, billing.PayInput{IdemKey: "k-pass-0001", Unit: "1-1-101", AmountFen: 25000, Method: "cash", TenderedFen: 25000}); err != nil {
		t.Fatal(err)
	}
	_, key, _ := ed25519.GenerateKey(nil)
	if s.p, err = passes.Open(passes.Deps{DB: db, Estate: es, Billing: s.bill, Key: key, Gates: []string{"gate", "gate-north"}, Log: quiet}); err != nil {
		t.Fatal(err)
	}
	s.p.SetClock(clock)
	return s
}

func (s *site) issue(t testing.TB, in passes.IssueInput) passes.Pass {
	t.Helper()
	p, err := s.p.Issue(s.clerk, in, nil)
	if err != nil {
		t.Fatalf("issue %+v: %v", in, err)
	}
	return p
}

func ownerPass(s *site) passes.IssueInput {
	return passes.IssueInput{Unit: "1-1-101", Role: "owner", OccupancyID: s.owner, Gate: "gate", Plate: "粤B 12345",
		Items: []passes.Item{{Name: "沙发", Qty: 1}, {Name: "冰箱", Qty: 1}, {}}}
}

func TestIssueFollowsTheProcedure(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db)
		p := s.issue(t, ownerPass(s))
		if p.Number != "2026-000001" || p.State != "issued" || p.Applicant != "陈建华" || p.Plate != "粤B12345" || len(p.Items) != 2 ||
			p.ItemsText() != "沙发 ×1, 冰箱 ×1" || p.ArrearsFen != 0 || !passcode.LooksLikeCode(p.Code) {
			t.Fatalf("pass %+v", p)
		}
		// Valid that day, site time.
		if p.ValidFrom.Format(time.RFC3339) != "2026-12-19T16:00:00Z" || p.ValidUntil.Format(time.RFC3339) != "2026-12-20T16:00:00Z" {
			t.Fatalf("window %v – %v", p.ValidFrom, p.ValidUntil)
		}
		base := func(f func(*passes.IssueInput)) passes.IssueInput { in := ownerPass(s); f(&in); return in }
		for _, tc := range []struct {
			name string
			in   passes.IssueInput
			code string
		}{
			{"a tenant without the owner's consent", base(func(in *passes.IssueInput) { in.Role, in.OccupancyID = "tenant", s.tenant }), "pass_consent_required"},
			{"a phone consent with no number or time", base(func(in *passes.IssueInput) { in.Role, in.OccupancyID, in.Consent = "tenant", s.tenant, "phone" }), "pass_phone_note_required"},
			{"the owner named as tenant", base(func(in *passes.IssueInput) { in.Role = "tenant" }), "pass_not_tenant"},
			{"another unit's owner", base(func(in *passes.IssueInput) { in.OccupancyID = s.owner2 }), "pass_not_owner"},
			{"an agent without written authorisation", base(func(in *passes.IssueInput) {
				in.Role, in.Name, in.IDLast4, in.Consent, in.ConsentNote = "agent", "搬家公司张师傅", "5678", "phone", "13800138000 10:05"
			}), "pass_agent_needs_authorisation"},
			{"an agent without ID digits", base(func(in *passes.IssueInput) {
				in.Role, in.Name, in.Consent, in.ConsentNote = "agent", "张师傅", "signed_authorisation", "授权书"
			}), "id_last4_invalid"},
			{"a date in the past", base(func(in *passes.IssueInput) { in.Date = "2026-12-19" }), "pass_date_past"},
			{"a window already over", base(func(in *passes.IssueInput) { in.From, in.To = "08:00", "09:30" }), "pass_date_past"},
			{"no goods", base(func(in *passes.IssueInput) { in.Items = nil }), "pass_items_required"},
			{"no quantity", base(func(in *passes.IssueInput) { in.Items = []passes.Item{{Name: "床"}} }), "pass_item_qty_invalid"},
			{"an unknown gate", base(func(in *passes.IssueInput) { in.Gate = "back-door" }), "gate_unknown"},
			{"a bad plate", base(func(in *passes.IssueInput) { in.Plate = "12" }), "plate_invalid"},
			{"an unknown unit", base(func(in *passes.IssueInput) { in.Unit = "9-9-999" }), "unit_not_found"},
		} {
			if _, err := s.p.Issue(s.clerk, tc.in, nil); fault.Code(err) != tc.code {
				t.Errorf("%s: %v, want %s", tc.name, err, tc.code)
			}
		}
		tenant := s.issue(t, base(func(in *passes.IssueInput) {
			in.Role, in.OccupancyID, in.Consent, in.ConsentNote = "tenant", s.tenant, "phone", "业主 13800138000，12-20 09:50 确认"
		}))
		agent := s.issue(t, base(func(in *passes.IssueInput) {
			in.Role, in.Name, in.IDLast4, in.Consent, in.ConsentNote = "agent", "张师傅", "5678", "signed_authorisation", "业主授权书（已扫描）"
		}))
		if tenant.Applicant != "李娜" || tenant.Number != "2026-000002" || agent.Applicant != "张师傅" || agent.ApplicantID != "5678" {
			t.Fatalf("tenant %+v agent %+v", tenant, agent)
		}

		// Arrears: not a refusal, but a supervisor's approval with a reason.
		in2 := base(func(in *passes.IssueInput) { in.Unit, in.OccupancyID = "1-1-102", s.owner2 })
		if _, err := s.p.Issue(s.clerk, in2, nil); fault.Code(err) != "pass_needs_approval" {
			t.Fatalf("arrears without approval: %v", err)
		}
		if _, err := s.p.Issue(s.clerk, in2, &s.clerkAct); fault.Code(err) != "approval_role" {
			t.Fatalf("a clerk's approval: %v", err)
		}
		if _, err := s.p.Issue(s.clerk, in2, &s.supervisor); fault.Code(err) != "approval_reason_required" {
			t.Fatalf("approval without a reason: %v", err)
		}
		in2.ApprovalReason = "业主本人搬运自有物品，欠费转催收"
		ap, err := s.p.Issue(s.clerk, in2, &s.supervisor)
		if err != nil || ap.ArrearsFen != 25000 || ap.ApprovedBy != "boss" {
			t.Fatalf("approved: %+v %v", ap, err)
		}
		var audits, jobs int
		db.Get(context.Background(), &audits, "SELECT COUNT(*) FROM audit_log WHERE action IN ('pass.issue', 'pass.approve_arrears')")
		db.Get(context.Background(), &jobs, "SELECT COUNT(*) FROM print_jobs WHERE kind = 'gate_pass' AND state = 'queued'")
		if audits != 5 || jobs != 4 {
			t.Fatalf("%d audit rows, %d print jobs for 4 passes (one approved)", audits, jobs)
		}
	})
}

func TestTheGate(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db)
		p := s.issue(t, ownerPass(s))
		v, err := s.p.Check(s.guard, p.Code+"\r\n", "gate", "guard1")
		if err != nil || !v.OK || v.Pass == nil || v.Pass.Number != p.Number {
			t.Fatalf("check: %+v %v", v, err)
		}
		// A flipped bit anywhere, a forged signature, an unknown number,
		// the wrong gate, garbage.
		flipped := []byte(p.Code)
		i := len(flipped) / 2
		flipped[i] = map[bool]byte{true: 'A', false: 'B'}[flipped[i] != 'A']
		for _, tc := range []struct{ text, gate, reason string }{
			{string(flipped), "gate", "forged"},
			{"2026-009999", "gate", "unknown"},
			{p.Code, "gate-north", "wrong_gate"},
			{p.Number, "gate-north", "wrong_gate"},
			{"OCP:!!!", "gate", "malformed"},
			{strings.Repeat("x", 40), "gate", "malformed"},
		} {
			if v, err := s.p.Check(s.guard, tc.text, tc.gate, "guard1"); err != nil || v.OK || v.Reason != tc.reason {
				t.Errorf("check %q at %s: %+v %v, want %s", tc.text, tc.gate, v, err, tc.reason)
			}
		}
		// A code signed with another estate's key, for this very number.
		_, foreign, _ := ed25519.GenerateKey(nil)
		fake, err := passcode.Sign(foreign, passcode.Claims{Pass: p.Number, Gate: "gate", NotBefore: p.ValidFrom, NotAfter: p.ValidUntil})
		if err != nil {
			t.Fatal(err)
		}
		if v, _ := s.p.Check(s.guard, fake, "gate", "guard1"); v.OK || v.Reason != "forged" {
			t.Fatalf("another estate's key: %+v", v)
		}
		// Released once: mover's ID digits required; a second release is refused.
		if _, err := s.p.Release(s.guard, passes.Release{Text: p.Code, Gate: "gate"}, "guard1"); fault.Code(err) != "id_last4_invalid" {
			t.Fatalf("release without the mover's ID: %v", err)
		}
		r, err := s.p.Release(s.guard, passes.Release{Text: p.Code, Gate: "gate", MoverID: "4321", Plate: "粤B12345"}, "guard1")
		if err != nil || r.State != "used" || r.ReleasedAt == nil || r.MoverID != "4321" || r.ReleasedGate != "gate" {
			t.Fatalf("release: %+v %v", r, err)
		}
		if _, err := s.p.Release(s.guard, passes.Release{Text: p.Number, Gate: "gate", MoverID: "4321"}, "guard2"); fault.Code(err) != "pass_used" {
			t.Fatalf("second release: %v", err)
		}
		if v, _ := s.p.Check(s.guard, p.Code, "gate", "guard1"); v.OK || v.Reason != "used" {
			t.Fatalf("check after release: %+v", v)
		}
		// Goods that do not match: cancelled, not released.
		q := s.issue(t, ownerPass(s))
		if c, err := s.p.Mismatch(s.guard, q.Number, "gate", "多了一台洗衣机", "guard1"); err != nil || c.State != "cancelled" || !strings.Contains(c.CancelReason, "洗衣机") {
			t.Fatalf("mismatch: %+v %v", c, err)
		}
		if _, err := s.p.Release(s.guard, passes.Release{Text: q.Code, Gate: "gate", MoverID: "4321"}, "guard1"); err == nil {
			t.Fatal("a cancelled pass was released")
		}
		// Expired the next day.
		e := s.issue(t, ownerPass(s))
		*s.clock = s.clock.Add(24 * time.Hour)
		if v, _ := s.p.Check(s.guard, e.Code, "gate", "guard1"); v.OK || v.Reason != "expired" {
			t.Fatalf("the next day: %+v", v)
		}
		checks, _ := s.p.Checks(context.Background(), p.ID)
		if len(checks) < 4 {
			t.Fatalf("checks of %s: %+v", p.Number, checks)
		}
	})
}

// Two gates scan and confirm one pass at the same moment: exactly one
// release counts.
func TestTwoReleasesAtOnce(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db)
		for round := 0; round < 5; round++ {
			p := s.issue(t, ownerPass(s))
			var wg sync.WaitGroup
			var mu sync.Mutex
			ok, used := 0, 0
			for g := 0; g < 4; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := s.p.Release(s.guard, passes.Release{Text: p.Code, Gate: "gate", MoverID: "4321"}, "guard1")
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						ok++
					case fault.Code(err) == "pass_used":
						used++
					default:
						t.Errorf("release: %v", err)
					}
				}()
			}
			wg.Wait()
			if ok != 1 || used != 3 {
				t.Fatalf("round %d: %d released, %d told used", round, ok, used)
			}
		}
	})
}

// A gate terminal's events, handled in the transaction that stores them:
// a scan gets a verdict; an offline release of a pass already used at the
// other gate is recorded and flagged, not counted twice.
func TestGateTerminalEvents(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db)
		p := s.issue(t, ownerPass(s))
		ctx := context.Background()
		var v *passes.Verdict
		err := db.Tx(ctx, func(tx *store.Tx) error {
			var err error
			v, err = s.p.OnGateEvent(ctx, tx, passes.GateEvent{Device: "gate-1", Seq: 7, Kind: "pass_scan", Gate: "gate", Data: p.Code})
			return err
		})
		if err != nil || v == nil || !v.OK {
			t.Fatalf("scan: %+v %v", v, err)
		}
		release := func(offline bool) {
			t.Helper()
			err := db.Tx(ctx, func(tx *store.Tx) error {
				_, err := s.p.OnGateEvent(ctx, tx, passes.GateEvent{Device: "gate-1", Seq: 8, Kind: "pass_release", Gate: "gate", Data: p.Code, Mover: "1111", Offline: offline})
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		release(false)
		if got, _ := s.p.Pass(ctx, p.ID); got.State != "used" || got.ReleasedBy != "device:gate-1" {
			t.Fatalf("released by the terminal: %+v", got)
		}
		release(true) // another terminal, offline, let it out too
		flags, err := s.p.Flags(ctx, "2026-12-20", "2026-12-20")
		if err != nil || len(flags) != 1 || flags[0].Reason != "released_again" || flags[0].Pass != p.Number {
			t.Fatalf("flags: %+v %v", flags, err)
		}
		rec, err := s.p.Reconcile(ctx, "2026-12-14", "2026-12-20")
		if err != nil || rec.Issued != 1 || rec.Used != 1 || len(rec.Flags) != 1 {
			t.Fatalf("reconciliation: %+v %v", rec, err)
		}
	})
}

func TestRecordsAndRetention(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		s := newSite(t, db)
		ctx := context.Background()
		used := s.issue(t, ownerPass(s))
		if _, err := s.p.Release(s.guard, passes.Release{Text: used.Code, Gate: "gate", MoverID: "4321"}, "guard1"); err != nil {
			t.Fatal(err)
		}
		unused := s.issue(t, ownerPass(s))
		cancelled := s.issue(t, ownerPass(s))
		if _, err := s.p.Cancel(s.clerk, cancelled.ID, "搬家改期"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.p.LogDuty(s.guard, passes.DutyEntry{Gate: "gate", Kind: "refusal", Note: "无放行条，拉走一台冰箱", Plate: "粤B 77777"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.p.LogDuty(s.guard, passes.DutyEntry{Gate: "gate", Kind: "exception", Note: "急救设备"}); fault.Code(err) != "duty_leader_required" {
			t.Fatalf("an exception without the shift leader: %v", err)
		}
		*s.clock = s.clock.Add(3 * 24 * time.Hour)
		rec, err := s.p.Reconcile(ctx, "2026-12-14", "2026-12-20")
		if err != nil || rec.Issued != 3 || rec.Used != 1 || rec.Cancelled != 1 || len(rec.Unused) != 1 || rec.Unused[0].ID != unused.ID {
			t.Fatalf("reconciliation: %+v %v", rec, err)
		}
		if err := s.p.FollowUp(s.clerk, unused.ID, "业主来电：搬家取消"); err != nil {
			t.Fatal(err)
		}
		x, err := s.p.ExportXLSX(ctx, "2026-12-20", "2026-12-20")
		if err != nil {
			t.Fatal(err)
		}
		f, err := excelize.OpenReader(bytes.NewReader(x))
		if err != nil {
			t.Fatal(err)
		}
		rows, _ := f.GetRows("放行条")
		if len(rows) != 4 || rows[1][0] != used.Number || rows[1][11] != "已放行" {
			t.Fatalf("export rows: %v", rows)
		}
		// A year and a day later: purged, the audit trail kept.
		*s.clock = s.clock.Add(366 * 24 * time.Hour)
		n, err := s.p.Purge(auth.WithActor(ctx, auth.System))
		if err != nil || n != 3 {
			t.Fatalf("purged %d: %v", n, err)
		}
		var left, audits int
		db.Get(ctx, &left, "SELECT COUNT(*) FROM passes")
		db.Get(ctx, &audits, "SELECT COUNT(*) FROM audit_log WHERE entity = 'pass'")
		if left != 0 || audits < 6 {
			t.Fatalf("after the purge: %d passes, %d audit rows", left, audits)
		}
	})
}
