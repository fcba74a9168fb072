package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	"onecard/store/storetest"
)

// TestGatePassInTheBrowser: a clerk issues a move-out pass for a unit in
// arrears (a supervisor approves at the clerk's desk with their own
// password); a guard at the gate types the scanned code into the guard
// page (as a keyboard-wedge scanner does, Enter included), sees the
// verdict with the goods, records the mover's ID and releases; the same
// pass scanned again is refused as used; a refusal goes into the duty log.
func TestGatePassInTheBrowser(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	ctx := context.Background()
	if _, err := e.es.CreateUnit(ctx, estate.UnitInput{Code: "3-2-1801", Area: 12650, HandoverDate: "2021-06-30"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.es.MoveIn(ctx, "3-2-1801", estate.MoveIn{Role: estate.Owner, MovedInOn: "2021-07-01",
		Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}}); err != nil {
		t.Fatal(err)
	}
	// Last month's service charge, overdue.
	admin := auth.WithActor(ctx, auth.Actor{Kind: "staff", ID: 1, Name: "admin", Role: auth.Admin})
	if _, err := e.bill.SaveFeeItem(admin, billing.FeeItem{Code: "service", Name: "物业服务费", Kind: "per_area", PriceFen: 250}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.bill.Generate(admin, time.Now().AddDate(0, -2, 0).Format("2006-01")); err != nil {
		t.Fatal(err)
	}

	b := browser(t)
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	text := func(b context.Context, sel string) string { t.Helper(); return pageText(t, b, sel) }
	signIn(t, b, e.url+"/passes/new?unit=3-2-1801", "clerk", "#arrears")
	if s := text(b, "#arrears"); !strings.Contains(s, "¥316.25") {
		t.Fatalf("arrears warning: %q", s)
	}
	kioskShot(t, b, "pass-1-form")
	// Without the supervisor first: refused, nothing issued.
	err := chromedp.Do(b,
		chromedp.Click(css(`input[name=applicant][value^="owner:"]`)),
		chromedp.SendKeys(css(`#items tbody tr:nth-child(1) input[name=item]`), "沙发"),
		chromedp.SendKeys(css(`#items tbody tr:nth-child(1) input[name=qty]`), "1"),
		chromedp.SendKeys(css(`#items tbody tr:nth-child(2) input[name=item]`), "冰箱"),
		chromedp.SendKeys(css(`#items tbody tr:nth-child(2) input[name=qty]`), "1"),
		chromedp.SendKeys(css("#plate"), "粤B12345"),
		chromedp.Click(css("#issue")),
		chromedp.WaitVisible(css("#error")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s := text(b, "#error"); !strings.Contains(s, "主管批准") {
		t.Fatalf("without approval: %q", s)
	}
	err = chromedp.Do(b,
		chromedp.SendKeys(css("#approver"), "supervisor"),
		chromedp.SendKeys(css("#approver_password"), "password-supervisor"),
		chromedp.SendKeys(css("#approval_reason"), "业主本人搬运自有物品，欠费转催收"),
		chromedp.Click(css("#issue")),
		chromedp.WaitVisible(css("#pass-qr")),
	)
	if err != nil {
		t.Fatal(err)
	}
	kioskShot(t, b, "pass-2-issued")
	heading := text(b, "h1")
	number := strings.TrimSpace(heading[strings.LastIndex(heading, " "):])
	p, err := e.passes.ByNumber(ctx, number)
	if err != nil || p.ArrearsFen != 31625 || p.ApprovedBy != "supervisor" || p.ItemsText() != "沙发 ×1, 冰箱 ×1" {
		t.Fatalf("issued %q: %+v %v", heading, p, err)
	}

	// The guard, at the gate.
	g := browser(t)
	signIn(t, g, e.url+"/gate", "guard", "#scan")
	err = chromedp.Do(g,
		chromedp.SendKeys(css("#scan"), p.Code+"\r"),
		chromedp.WaitVisible(css("#verdict")),
	)
	if err != nil {
		t.Fatal(err)
	}
	kioskShot(t, g, "pass-3-verdict")
	if s := text(g, "#verdict"); !strings.Contains(s, "可以放行") || !strings.Contains(s, "沙发 ×1, 冰箱 ×1") || !strings.Contains(s, "3-2-1801") || !strings.Contains(s, "supervisor") {
		t.Fatalf("verdict:\n%s", s)
	}
	err = chromedp.Do(g,
		chromedp.SendKeys(css("#mover_id_last4"), "4321"),
		chromedp.Click(css("#release")),
		chromedp.WaitVisible(css("#flash")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s := text(g, "#flash"); !strings.Contains(s, "已放行") {
		t.Fatalf("after release: %q", s)
	}
	if got, _ := e.passes.Pass(ctx, p.ID); got.State != "used" || got.ReleasedBy != "guard" || got.MoverID != "4321" {
		t.Fatalf("released: %+v", got)
	}
	// Scanned again: refused, with what to do.
	if err := chromedp.Do(g, chromedp.SendKeys(css("#scan"), p.Code+"\r"), chromedp.WaitVisible(css("#verdict.bad"))); err != nil {
		t.Fatal(err)
	}
	kioskShot(t, g, "pass-4-used")
	if s := text(g, "#verdict"); !strings.Contains(s, "已经使用过") || strings.Contains(s, "核对无误") {
		t.Fatalf("second scan:\n%s", s)
	}
	// No pass at all: the guard refuses and writes it in the duty log.
	err = chromedp.Do(g,
		chromedp.SendKeys(css("#duty-plate"), "粤B77777"),
		chromedp.SendKeys(css("#duty-note"), "无放行条，欲运出冰箱一台，已劝回"),
		chromedp.Click(css("#duty-form button")),
		chromedp.WaitVisible(css("#duty")),
	)
	if err != nil {
		t.Fatal(err)
	}
	if s := text(g, "#duty"); !strings.Contains(s, "拒绝放行") || !strings.Contains(s, "粤B77777") {
		t.Fatalf("duty log:\n%s", s)
	}
	// The desk's record shows the release.
	if err := chromedp.Do(b, chromedp.Navigate(e.url+"/passes/"+itoa(p.ID)), chromedp.WaitVisible(css("#released"))); err != nil {
		t.Fatal(err)
	}
	if s := text(b, "#pass-state"); s != "已放行" {
		t.Fatalf("the desk's record: %q", s)
	}
	if s := text(b, "main"); strings.Contains(s, "template:") || !strings.Contains(s, "重新打印") {
		t.Fatalf("the desk's record page:\n%s", s)
	}
}

// Every gate-pass page answers its roles with a whole page.
func TestGatePassPages(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	for _, tc := range []struct {
		role auth.Role
		path string
		want string
	}{
		{auth.Clerk, "/passes", "开具放行条"},
		{auth.Clerk, "/passes/new", "查找房屋"},
		{auth.Clerk, "/passes/new?unit=9-9-999", "没有找到"},
		{auth.Supervisor, "/passes/reconcile", "过期未用"},
		{auth.Guard, "/passes", "放行条"},
		{auth.Guard, "/gate", "值班记录"},
		{auth.Supervisor, "/gate?gate=gate-north", "gate-north"},
	} {
		res, body := e.as(tc.role).do("GET", tc.path, "", "")
		if res.StatusCode != 200 || !strings.Contains(body, tc.want) || strings.Contains(body, "template:") {
			t.Errorf("%s %s: %d\n%s", tc.role, tc.path, res.StatusCode, body)
		}
	}
	res, body := e.as(auth.Supervisor).do("GET", "/passes/export", "", "")
	if res.StatusCode != 200 || !strings.HasPrefix(body, "PK") {
		t.Errorf("export: %d %.40q", res.StatusCode, body)
	}
	if res, _ := e.as(auth.Guard).do("GET", "/passes/new", "", ""); res.StatusCode != 403 {
		t.Errorf("a guard issuing a pass: %d", res.StatusCode)
	}
	if res, _ := e.as(auth.Cashier).do("GET", "/gate", "", ""); res.StatusCode != 403 {
		t.Errorf("a cashier at the gate: %d", res.StatusCode)
	}
}
