package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"onecard/auth"
	"onecard/devices/scanner"
	"onecard/estate"
	"onecard/mailroom"
	"onecard/store/storetest"
	"onecard/web"
)

// mailSite is a site with units 1-1-101 (陈建华 lives there) and
// 1-1-102, and a clerk's context for the mail room.
func mailSite(t *testing.T) (*env, context.Context) {
	t.Helper()
	e := start(t, storetest.SQLite(t))
	clerk := auth.WithActor(context.Background(), auth.Actor{Kind: "staff", ID: 3, Name: "clerk", Role: auth.Clerk})
	for _, u := range []string{"1-1-101", "1-1-102"} {
		if _, err := e.es.CreateUnit(clerk, estate.UnitInput{Code: u, Area: 9000, HandoverDate: "2020-01-01"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.es.MoveIn(clerk, "1-1-101", estate.MoveIn{Role: estate.Owner, MovedInOn: "2020-01-01",
		Person: &estate.PersonInput{Name: "陈建华", Phone: "13800138000", IDType: "resident_id", IDLast4: "123X"}}); err != nil {
		t.Fatal(err)
	}
	return e, clerk
}

// mailParcel registers an express parcel (signed for at the desk) on a
// shelf.
func mailParcel(t *testing.T, e *env, ctx context.Context, tracking, unit string) mailroom.Item {
	t.Helper()
	it, err := e.mail.Register(ctx, mailroom.RegisterInput{Type: mailroom.Express, Carrier: "顺丰速运", Tracking: tracking, Unit: unit,
		Condition: mailroom.ConditionOK, Storage: mailroom.StorageShelf, Slot: "A-1"})
	if err != nil {
		t.Fatal(err)
	}
	return it
}

func allItems(t *testing.T, e *env) []mailroom.Item {
	t.Helper()
	items, err := e.mail.Find(context.Background(), mailroom.Query{Limit: 500})
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// signatureDataURL is a small drawn signature as the pad posts it.
func signatureDataURL(t *testing.T) (string, []byte) {
	t.Helper()
	img := image.NewGray(image.Rect(0, 0, 120, 40))
	for x := range 120 {
		img.SetGray(x, 20+x%7, color.Gray{Y: 0})
		for y := range 40 {
			if y != 20+x%7 {
				img.SetGray(x, y, color.Gray{Y: 255})
			}
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), buf.Bytes()
}

// Only the desk (clerks, supervisors, admins) works the mail room; the
// settings are the supervisors'. Every page answers its roles with a
// whole page.
func TestMailRoles(t *testing.T) {
	e, clerk := mailSite(t)
	it := mailParcel(t, e, clerk, "SF1000000000001", "1-1-101")
	id := itoa(it.ID)
	for _, role := range []auth.Role{auth.Cashier, auth.Guard} {
		c := e.as(role)
		for _, r := range []struct{ method, path string }{
			{"GET", "/mail"}, {"GET", "/mail/new"}, {"POST", "/mail/new"}, {"GET", "/mail/units?q=1-1"}, {"GET", "/mail/items/" + id},
			{"POST", "/mail/items/" + id + "/collect"}, {"GET", "/mail/lockers"}, {"POST", "/mail/doors/1/open"}, {"GET", "/mail/register.xlsx"},
			{"GET", "/mail/settings"}, {"POST", "/mail/return"},
		} {
			var res *http.Response
			if r.method == "POST" {
				res, _ = c.form(r.path, url.Values{"carrier": {"顺丰速运"}, "type-0": {"express"}, "tracking-0": {"SF1000000000002"},
					"unit-0": {"1-1-101"}, "condition-0": {"ok"}, "storage-0": {"shelf"}, "slot-0": {"A-1"}, "collector_kind": {"recipient"},
					"collector_name": {"陈建华"}, "reason": {"看看"}, "item_ids": {id}, "note": {"退回"}})
			} else {
				res, _ = c.do(r.method, r.path, "", "")
			}
			if res.StatusCode != 403 {
				t.Errorf("%s %s %s: %d, want 403", role, r.method, r.path, res.StatusCode)
			}
		}
	}
	if n := len(allItems(t, e)); n != 1 {
		t.Fatalf("refused callers changed the mail room: %d items", n)
	}
	if got, _ := e.mail.Item(clerk, it.ID); got.State != mailroom.StateWaiting {
		t.Fatalf("refused hand-over changed the item: %+v", got)
	}
	// The nav shows the mail room to the desk only.
	if _, body := e.as(auth.Clerk).do("GET", "/", "", ""); !strings.Contains(body, `href="/mail"`) {
		t.Error("the clerk's nav has no mail link")
	}
	if _, body := e.as(auth.Cashier).do("GET", "/", "", ""); strings.Contains(body, `href="/mail"`) {
		t.Error("the cashier's nav has a mail link")
	}
	if res, _ := e.as(auth.Clerk).do("GET", "/mail/settings", "", ""); res.StatusCode != 403 {
		t.Errorf("a clerk on the settings: %d", res.StatusCode)
	}
	if res, _ := e.anon().do("GET", "/mail", "", ""); res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/login") {
		t.Errorf("anonymous /mail: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	for _, tc := range []struct {
		role auth.Role
		path string
		want string
	}{
		{auth.Clerk, "/mail", it.Number},
		{auth.Clerk, "/mail?q=1-1-101", "SF1000000000001"},
		{auth.Clerk, "/mail/new", "登记本批"},
		{auth.Clerk, "/mail/items/" + id, "前台交付"},
		{auth.Clerk, "/mail/lockers", "快递柜没有连接"},
		{auth.Clerk, "/mail/outgoing", "登记寄件"},
		{auth.Clerk, "/mail/register?day=" + it.RegisteredOn, it.Number},
		{auth.Clerk, "/mail/history", "运单号"},
		{auth.Clerk, "/mail/notifications", "到件通知"},
		{auth.Supervisor, "/mail/settings", "须签收的类别"},
		{auth.Admin, "/mail", "待领邮件"},
	} {
		res, body := e.as(tc.role).do("GET", tc.path, "", "")
		if res.StatusCode != 200 || !strings.Contains(body, tc.want) || strings.Contains(body, "template:") {
			t.Errorf("%s %s: %d, want %q\n%s", tc.role, tc.path, res.StatusCode, tc.want, body)
		}
	}
	// English, on request.
	c := e.as(auth.Clerk)
	u, _ := url.Parse(e.url)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: web.LangCookie, Value: "en", Path: "/"}})
	if _, body := c.do("GET", "/mail/items/"+id, "", ""); !strings.Contains(body, "Hand over at the desk") {
		t.Errorf("the item page in English:\n%s", body)
	}
}

// batchForm is the batch form as posted: the carrier and one row per
// item (fields named by row).
func batchForm(carrier string, rows ...map[string]string) url.Values {
	v := url.Values{"carrier": {carrier}, "action": {"register"}}
	for i, r := range rows {
		row := map[string]string{"type": "express", "condition": "ok", "storage": "shelf", "slot": "A-1"}
		for k, x := range r {
			row[k] = x
		}
		for k, x := range row {
			v.Set(k+"-"+itoa(int64(i)), x)
		}
	}
	return v
}

// A courier's drop with one bad row: the good rows are registered, the
// bad one stays in the form with the reason beside it, nothing else is
// registered; corrected, it goes in too.
func TestMailBatchRegistration(t *testing.T) {
	e, _ := mailSite(t)
	c := e.as(auth.Clerk)
	v := batchForm("顺丰速运",
		map[string]string{"tracking": "SF2000000000001", "unit": "1-1-101", "recipient": "陈建华"},
		map[string]string{"tracking": "SF2000000000002", "unit": "9-9-999"},
		map[string]string{"type": "letter", "tracking": "", "unit": "1-1-102", "slot": "B-2"},
		map[string]string{"tracking": "", "unit": ""}, // the empty row at the end
	)
	res, body := c.form("/mail/new", v)
	if res.StatusCode != 422 {
		t.Fatalf("batch with a bad row: %d\n%s", res.StatusCode, body)
	}
	if !strings.Contains(body, "没有这个房号") || !strings.Contains(body, `value="SF2000000000002"`) || !strings.Contains(body, `value="9-9-999"`) {
		t.Fatalf("the bad row is not kept with its reason:\n%s", body)
	}
	items := allItems(t, e)
	if len(items) != 2 {
		t.Fatalf("registered %d items, want the 2 good rows: %+v", len(items), items)
	}
	for _, it := range items {
		if !strings.Contains(body, it.Number) {
			t.Errorf("item %s is not shown as registered", it.Number)
		}
	}
	if w, _ := e.mail.Waiting(context.Background(), "1-1-101"); len(w) != 1 || *w[0].Tracking != "SF2000000000001" || w[0].Carrier != "顺丰速运" ||
		w[0].PersonID == nil || w[0].Slot != "A-1" {
		t.Fatalf("1-1-101 waiting: %+v", w)
	}
	if w, _ := e.mail.Waiting(context.Background(), "1-1-102"); len(w) != 1 || w[0].Type != "letter" || w[0].Slot != "B-2" {
		t.Fatalf("1-1-102 waiting: %+v", w)
	}
	if _, err := e.mail.History(context.Background(), "SF2000000000002"); err == nil {
		t.Fatal("the refused row left a trace")
	}

	// A damaged parcel without the courier's countersignature: refused,
	// kept; with it, registered; the page after lists it.
	v = batchForm("顺丰速运", map[string]string{"tracking": "SF2000000000002", "unit": "1-1-102", "condition": "damaged", "damage_note": "外箱压扁"})
	if res, body := c.form("/mail/new", v); res.StatusCode != 422 || !strings.Contains(body, "快递员签字") || !strings.Contains(body, "外箱压扁") {
		t.Fatalf("damaged without countersignature: %d\n%s", res.StatusCode, body)
	}
	v.Set("countersigned-0", "1")
	res, _ = c.form("/mail/new", v)
	loc := res.Header.Get("Location")
	if res.StatusCode != 303 || !strings.HasPrefix(loc, "/mail/new?") {
		t.Fatalf("corrected batch: %d %s", res.StatusCode, loc)
	}
	res, body = c.do("GET", loc, "", "")
	if res.StatusCode != 200 || !strings.Contains(body, "SF2000000000002") || !strings.Contains(body, `value="顺丰速运"`) {
		t.Fatalf("after the batch: %d\n%s", res.StatusCode, body)
	}
	if n := len(allItems(t, e)); n != 3 {
		t.Fatalf("%d items after the correction", n)
	}

	// "Next" without the script adds a row and registers nothing; an
	// empty batch is refused politely; a post without the CSRF token is
	// refused.
	v = batchForm("中通快递", map[string]string{"tracking": "ZT3000000000001", "unit": "1-1-101"})
	v.Set("action", "add")
	if res, body := c.form("/mail/new", v); res.StatusCode != 200 || !strings.Contains(body, `name="tracking-1"`) || !strings.Contains(body, "ZT3000000000001") {
		t.Fatalf("next: %d\n%s", res.StatusCode, body)
	}
	if res, body := c.form("/mail/new", batchForm("中通快递", map[string]string{})); res.StatusCode != 422 || !strings.Contains(body, "请至少填写一件") {
		t.Fatalf("an empty batch: %d\n%s", res.StatusCode, body)
	}
	noCSRF := *c
	noCSRF.csrf = ""
	if res, _ := noCSRF.do("POST", "/mail/new", "application/x-www-form-urlencoded", batchForm("中通快递",
		map[string]string{"tracking": "ZT3000000000001", "unit": "1-1-101"}).Encode()); res.StatusCode != 403 {
		t.Fatalf("without the CSRF token: %d", res.StatusCode)
	}
	if n := len(allItems(t, e)); n != 3 {
		t.Fatalf("%d items after next, an empty batch and a forged post", n)
	}

	// The unit type-ahead: by code and by a resident's name.
	for q, want := range map[string]string{"1-1": "1-1-102", "陈建": "1-1-101", "1-1-101": "陈建华"} {
		res, body := c.do("GET", "/mail/units?q="+url.QueryEscape(q), "", "")
		var hints []struct {
			Code      string   `json:"code"`
			Residents []string `json:"residents"`
		}
		if err := json.Unmarshal([]byte(body), &hints); res.StatusCode != 200 || err != nil || !strings.Contains(body, want) {
			t.Errorf("units?q=%s: %d %s %v", q, res.StatusCode, body, err)
		}
	}
}

// The clerk hands a parcel over at the desk: without a signature it is
// refused; with the pad's PNG it is collected, and the signature is
// served to staff only.
func TestMailHandOver(t *testing.T) {
	e, clerk := mailSite(t)
	it := mailParcel(t, e, clerk, "SF4000000000001", "1-1-101")
	other := mailParcel(t, e, clerk, "SF4000000000002", "1-1-101")
	c := e.as(auth.Clerk)
	path := "/mail/items/" + itoa(it.ID) + "/collect"
	sig, raw := signatureDataURL(t)
	for _, tc := range []struct {
		v    url.Values
		want string
	}{
		{url.Values{"collector_kind": {"recipient"}, "collector_name": {"陈建华"}}, "请领取人在屏幕上签名"},
		{url.Values{"collector_kind": {"household"}, "collector_name": {"陈一诺"}, "signature": {sig}}, "不能由家人代领"},
		{url.Values{"collector_kind": {"agent"}, "collector_name": {"王五"}, "signature": {sig}}, "后四位"},
		{url.Values{"collector_kind": {"recipient"}, "collector_name": {"陈建华"}, "signature": {"data:image/png;base64,AAAA"}}, "签名图像无效"},
		{url.Values{"collector_kind": {"recipient"}, "collector_name": {"陈建华"}, "signature": {"javascript:alert(1)"}}, "签名图像无效"},
	} {
		res, body := c.form(path, tc.v)
		if res.StatusCode != 422 || !strings.Contains(body, tc.want) {
			t.Errorf("%v: %d, want %q\n%s", tc.v, res.StatusCode, tc.want, body)
		}
	}
	if got, _ := e.mail.Item(clerk, it.ID); got.State != mailroom.StateWaiting {
		t.Fatalf("a refused hand-over changed the item: %+v", got)
	}
	// Refused, the page keeps what was typed and signed.
	_, body := c.form(path, url.Values{"collector_kind": {"agent"}, "collector_name": {"王五"}, "signature": {sig}})
	if !strings.Contains(body, `value="王五"`) || !strings.Contains(body, sig[:60]) {
		t.Errorf("the refused form lost what was typed")
	}

	res, _ := c.form(path, url.Values{"collector_kind": {"agent"}, "collector_name": {"王五"}, "agent_id_last4": {"321x"}, "signature": {sig},
		"item_ids": {itoa(other.ID)}})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/mail/items/"+itoa(it.ID)+"?done=collected" {
		t.Fatalf("hand-over: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	for _, id := range []int64{it.ID, other.ID} {
		got, _ := e.mail.Item(clerk, id)
		if got.State != mailroom.StateCollected || got.CollectorName != "王五" || got.AgentIDLast4 != "321X" || got.HandedBy != "clerk" || got.SignatureID == nil {
			t.Fatalf("item %d after the hand-over: %+v", id, got)
		}
	}
	_, body = c.do("GET", "/mail/items/"+itoa(it.ID)+"?done=collected", "", "")
	if !strings.Contains(body, "已交付") || !strings.Contains(body, `id="signature-img"`) || !strings.Contains(body, "代领人 王五") || strings.Contains(body, `id="collect-form"`) {
		t.Fatalf("the collected item's page:\n%s", body)
	}
	res, png := c.do("GET", "/mail/items/"+itoa(it.ID)+"/signature.png", "", "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/png" || png != string(raw) {
		t.Fatalf("signature: %d %s, %d bytes", res.StatusCode, res.Header.Get("Content-Type"), len(png))
	}
	if res, _ := e.as(auth.Cashier).do("GET", "/mail/items/"+itoa(it.ID)+"/signature.png", "", ""); res.StatusCode != 403 {
		t.Fatalf("a cashier fetched the signature: %d", res.StatusCode)
	}
	if res, _ := e.anon().do("GET", "/mail/items/"+itoa(it.ID)+"/signature.png", "", ""); res.StatusCode != 303 {
		t.Fatalf("anonymous fetched the signature: %d", res.StatusCode)
	}
	// Handed over once only.
	if res, body := c.form(path, url.Values{"collector_kind": {"recipient"}, "collector_name": {"陈建华"}, "signature": {sig}}); res.StatusCode != 409 ||
		!strings.Contains(body, "已领取或已退回") {
		t.Fatalf("handed over twice: %d\n%s", res.StatusCode, body)
	}
}

// The day's register downloads as an XLSX with the item in it; the page
// shows the same; a bad day is refused politely.
func TestMailRegisterXLSX(t *testing.T) {
	e, clerk := mailSite(t)
	it := mailParcel(t, e, clerk, "SF5000000000001", "1-1-101")
	c := e.as(auth.Clerk)
	if res, _ := c.form("/mail/outgoing", url.Values{"unit": {"1-1-102"}, "sender": {"李四"}, "addressee": {"北京市海淀区 王芳"}, "method": {"registered"}}); res.StatusCode != 303 {
		t.Fatalf("outgoing: %d", res.StatusCode)
	}
	day := it.RegisteredOn
	res, body := c.do("GET", "/mail/register.xlsx?day="+day, "", "")
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Disposition"), "mail-register-"+day+".xlsx") {
		t.Fatalf("register.xlsx: %d %v", res.StatusCode, res.Header)
	}
	f, err := excelize.OpenReader(strings.NewReader(body))
	if err != nil {
		t.Fatalf("not an XLSX: %v", err)
	}
	defer f.Close()
	rows, err := f.GetRows("收件登记")
	if err != nil || len(rows) != 2 {
		t.Fatalf("收件登记: %v %v", rows, err)
	}
	if strings.Join(rows[1], "|") != strings.Join([]string{day, it.Number, "快递", "顺丰速运", "SF5000000000001", "1-1-101", "", "完好", "货架 A-1", "待领取", "", "", "clerk"}, "|") {
		t.Fatalf("the item's row: %q", rows[1])
	}
	out, err := f.GetRows("寄件登记")
	if err != nil || len(out) != 2 || out[1][2] != "李四" || out[1][4] != "挂号信" {
		t.Fatalf("寄件登记: %v %v", out, err)
	}
	res, body = c.do("GET", "/mail/register?day="+day, "", "")
	if res.StatusCode != 200 || !strings.Contains(body, it.Number) || !strings.Contains(body, "北京市海淀区 王芳") || !strings.Contains(body, "data-print") {
		t.Fatalf("register page: %d\n%s", res.StatusCode, body)
	}
	if res, body := c.do("GET", "/mail/register?day=2026-13-45", "", ""); res.StatusCode != 422 || strings.Contains(body, "template:") {
		t.Fatalf("a bad day: %d\n%s", res.StatusCode, body)
	}
	if res, _ := c.do("GET", "/mail/register.xlsx?day=yesterday", "", ""); res.StatusCode != 422 {
		t.Fatalf("a bad day's XLSX: %d", res.StatusCode)
	}
}

// A tracking number's history, typed in any case; the search box sends
// tracking numbers there and units to their items.
func TestMailHistory(t *testing.T) {
	e, clerk := mailSite(t)
	it := mailParcel(t, e, clerk, "SF6000000000001", "1-1-101")
	if _, err := e.mail.Shelve(clerk, it.ID, "C-9"); err != nil {
		t.Fatal(err)
	}
	c := e.as(auth.Clerk)
	res, body := c.do("GET", "/mail/history?tracking=sf6000000000001", "", "")
	if res.StatusCode != 200 || !strings.Contains(body, it.Number) || !strings.Contains(body, "放上货架") || !strings.Contains(body, "C-9") {
		t.Fatalf("history: %d\n%s", res.StatusCode, body)
	}
	if res, body := c.do("GET", "/mail/history?tracking=SF6999999999999", "", ""); res.StatusCode != 404 || !strings.Contains(body, "没有这个运单号的记录") {
		t.Fatalf("an unknown number: %d\n%s", res.StatusCode, body)
	}
	if res, _ := c.do("GET", "/mail?q=SF6000000000001", "", ""); res.StatusCode != 303 || res.Header.Get("Location") != "/mail/history?tracking=SF6000000000001" {
		t.Fatalf("search by tracking: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if _, body := c.do("GET", "/mail/items/"+itoa(it.ID), "", ""); !strings.Contains(body, "C-9") || !strings.Contains(body, "登记") {
		t.Fatalf("the item's events:\n%s", body)
	}
}

// Old items: today's reminders are queued from the desk; the ones past
// their hold are returned to the courier, with a note.
func TestMailRemindersAndReturn(t *testing.T) {
	e, clerk := mailSite(t)
	e.mail.SetClock(func() time.Time { return time.Now().AddDate(0, 0, -10) })
	old := mailParcel(t, e, clerk, "SF7000000000001", "1-1-101")
	e.mail.SetClock(time.Now)
	fresh := mailParcel(t, e, clerk, "SF7000000000002", "1-1-101")
	c := e.as(auth.Clerk)
	_, body := c.do("GET", "/mail", "", "")
	due := body[strings.Index(body, `id="due"`):]
	if !strings.Contains(due, old.Number) || strings.Contains(due, fresh.Number) {
		t.Fatalf("due for return:\n%s", due)
	}
	res, _ := c.form("/mail/reminders", url.Values{})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/mail?done=reminded&n=1" {
		t.Fatalf("reminders: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	if res, body := c.form("/mail/return", url.Values{"item_ids": {itoa(old.ID)}}); res.StatusCode != 422 || !strings.Contains(body, "请") {
		t.Fatalf("a return without a note: %d\n%s", res.StatusCode, body)
	}
	if got, _ := e.mail.Item(clerk, old.ID); got.State != mailroom.StateWaiting {
		t.Fatalf("a refused return changed the item: %+v", got)
	}
	res, _ = c.form("/mail/return", url.Values{"item_ids": {itoa(old.ID)}, "note": {"顺丰快递员取回，超期未领"}})
	if res.StatusCode != 303 {
		t.Fatalf("return: %d", res.StatusCode)
	}
	if got, _ := e.mail.Item(clerk, old.ID); got.State != mailroom.StateReturned || got.ReturnNote != "顺丰快递员取回，超期未领" {
		t.Fatalf("returned: %+v", got)
	}
	if got, _ := e.mail.Item(clerk, fresh.ID); got.State != mailroom.StateWaiting {
		t.Fatalf("the fresh item: %+v", got)
	}
}

// Outgoing mail, the settings and the notices' outbox: bad input is
// explained and changes nothing.
func TestMailOutgoingSettingsNotices(t *testing.T) {
	e, clerk := mailSite(t)
	c := e.as(auth.Clerk)
	res, body := c.form("/mail/outgoing", url.Values{"unit": {"1-1-101"}, "sender": {""}, "addressee": {"上海市 张伟"}, "method": {"express"}})
	if res.StatusCode != 422 || !strings.Contains(body, "寄件人") || !strings.Contains(body, `value="上海市 张伟"`) {
		t.Fatalf("outgoing without a sender: %d\n%s", res.StatusCode, body)
	}
	if res, _ := c.form("/mail/outgoing", url.Values{"unit": {"1-1-101"}, "sender": {"陈建华"}, "addressee": {"上海市 张伟"}, "method": {"express"},
		"tracking": {"yt9000000001"}}); res.StatusCode != 303 {
		t.Fatalf("outgoing: %d", res.StatusCode)
	}
	if _, body := c.do("GET", "/mail/outgoing", "", ""); !strings.Contains(body, "YT9000000001") || !strings.Contains(body, "上海市 张伟") {
		t.Fatalf("today's outgoing:\n%s", body)
	}

	sup := e.as(auth.Supervisor)
	before, _ := e.mail.Settings(clerk)
	v := url.Values{"reminder_days": {"8"}, "hold_days": {"7"}, "moved_out_hold_days": {"14"}, "consent_hold_days": {"30"},
		"door_open_alert_seconds": {"120"}, "code_attempts": {"5"}, "code_lock_minutes": {"15"}, "signature_retention_days": {"365"},
		"signature_types": {"registered", "remittance"}}
	if res, body := sup.form("/mail/settings", v); res.StatusCode != 422 || !strings.Contains(body, `value="8"`) {
		t.Fatalf("reminder after the hold: %d\n%s", res.StatusCode, body)
	}
	if after, _ := e.mail.Settings(clerk); after.ReminderDays != before.ReminderDays || len(after.SignatureTypes) != len(before.SignatureTypes) {
		t.Fatalf("refused settings changed: %+v", after)
	}
	v.Set("reminder_days", "2")
	if res, _ := sup.form("/mail/settings", v); res.StatusCode != 303 {
		t.Fatalf("settings: %d", res.StatusCode)
	}
	if after, _ := e.mail.Settings(clerk); after.ReminderDays != 2 || strings.Join(after.SignatureTypes, ",") != "registered,remittance" {
		t.Fatalf("saved settings: %+v", after)
	}

	it := mailParcel(t, e, clerk, "SF8000000000001", "1-1-101")
	notes, err := e.mail.Notifications(clerk)
	if err != nil || len(notes) != 1 || notes[0].ItemID == nil || *notes[0].ItemID != it.ID {
		t.Fatalf("notices: %+v %v", notes, err)
	}
	if res, body := c.form("/mail/notifications/"+itoa(notes[0].ID)+"/retry", url.Values{}); res.StatusCode != 409 || !strings.Contains(body, "到件通知") {
		t.Fatalf("retrying a queued notice: %d\n%s", res.StatusCode, body)
	}
}

// The scanner's codes reach the desk as server-sent events; the stream
// ends when the server stops.
func TestMailScanStream(t *testing.T) {
	feed := &scanner.Feed{}
	scanFeed = feed.Watch
	defer func() { scanFeed = nil }()
	e, _ := mailSite(t)
	c := e.as(auth.Clerk)
	if _, body := c.do("GET", "/mail/new", "", ""); !strings.Contains(body, `data-scans="/mail/scans"`) {
		t.Fatal("the batch form does not listen to the scanner")
	}
	req, _ := http.NewRequest("GET", e.url+"/mail/scans", nil)
	res, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("scans: %d %s", res.StatusCode, res.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(res.Body)
	if line, _ := r.ReadString('\n'); line != ": connected\n" {
		t.Fatalf("first line %q", line)
	}
	for deadline := time.Now().Add(5 * time.Second); feed.Watchers() == 0; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stream never watched the feed")
		}
	}
	feed.Publish("SF9000000000001")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		if strings.HasPrefix(line, "data: ") {
			if line != `data: {"code":"SF9000000000001"}`+"\n" {
				t.Fatalf("event %q", line)
			}
			break
		}
	}
	// Without a scanner the stream is not there, politely.
	scanFeed = nil
	e2, _ := mailSite(t)
	if res, body := e2.as(auth.Clerk).do("GET", "/mail/scans", "", ""); res.StatusCode != 404 || !strings.Contains(body, "扫码枪") {
		t.Fatalf("no scanner: %d\n%s", res.StatusCode, body)
	}
}

// The locker bank from the desk, against the simulator over a pty: a door
// opened with a reason unlocks in the simulator; a batch row for the
// locker gets a door that opens, and once closed the item is in it;
// flagging keeps a door out of use.
func TestMailLockers(t *testing.T) {
	var mu sync.Mutex
	unlocked := map[int]int{}
	e, sim, _ := lockerSite(t, func(door int) { mu.Lock(); unlocked[door]++; mu.Unlock() })
	unlocks := func(door int) int { mu.Lock(); defer mu.Unlock(); return unlocked[door] }
	c := e.as(auth.Clerk)
	res, body := c.do("GET", "/mail/lockers", "", "")
	if res.StatusCode != 200 || !strings.Contains(body, `id="door-48"`) || strings.Contains(body, "快递柜没有连接") {
		t.Fatalf("lockers: %d\n%s", res.StatusCode, body)
	}
	if res, body := c.form("/mail/doors/5/open", url.Values{"reason": {""}}); res.StatusCode != 422 || !strings.Contains(body, "原因") {
		t.Fatalf("open without a reason: %d\n%s", res.StatusCode, body)
	}
	res, _ = c.form("/mail/doors/5/open", url.Values{"reason": {"检查柜内是否有遗留物品"}})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/mail/lockers?done=opened&door=5" {
		t.Fatalf("open: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	for deadline := time.Now().Add(10 * time.Second); unlocks(5) == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the simulator never saw door 5 unlocked")
		}
	}
	for deadline := time.Now().Add(10 * time.Second); !sim.State().Doors[4].Open; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("door 5 never popped open in the simulator")
		}
	}
	if unlocks(6) != 0 {
		t.Fatalf("after opening door 5: %+v", sim.State().Doors[:6])
	}
	if _, body := c.do("GET", "/mail/lockers?done=opened&door=5", "", ""); !strings.Contains(body, "5 号柜门") {
		t.Fatalf("the flash:\n%s", body)
	}
	sim.Close(5)

	// A letter for the locker, registered in a batch: its door opens for
	// the clerk, the page follows it, and closed, the letter is stored.
	v := batchForm("中国邮政", map[string]string{"type": "letter", "tracking": "", "unit": "1-1-101", "storage": "locker", "size": "M", "slot": ""})
	res, _ = c.form("/mail/new", v)
	if res.StatusCode != 303 {
		t.Fatalf("a locker row: %d", res.StatusCode)
	}
	_, body = c.do("GET", res.Header.Get("Location"), "", "")
	items := allItems(t, e)
	if len(items) != 1 || items[0].Door == nil || items[0].Storage != "locker" {
		t.Fatalf("the letter: %+v", items)
	}
	door := *items[0].Door
	if door <= 16 || !strings.Contains(body, "data-command=") || !strings.Contains(body, "请放入邮件后关好柜门") {
		t.Fatalf("door %d (a medium one, after the 16 small), page:\n%s", door, body)
	}
	cmd := body[strings.Index(body, `data-command="`)+len(`data-command="`):]
	cmd = cmd[:strings.Index(cmd, `"`)]
	state := func() string {
		res, body := c.do("GET", "/mail/commands/"+cmd, "", "")
		var out struct {
			State string `json:"state"`
			Door  int    `json:"door"`
			Label string `json:"state_label"`
		}
		if err := json.Unmarshal([]byte(body), &out); res.StatusCode != 200 || err != nil || out.Door != door || out.Label == "" {
			t.Fatalf("command %s: %d %s %v", cmd, res.StatusCode, body, err)
		}
		return out.State
	}
	for deadline := time.Now().Add(10 * time.Second); state() != mailroom.CmdOpen; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the door never opened")
		}
	}
	if unlocks(door) != 1 {
		t.Fatalf("door %d unlocked %d times", door, unlocks(door))
	}
	sim.Close(door)
	for deadline := time.Now().Add(10 * time.Second); state() != mailroom.CmdDone; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the door never closed")
		}
	}
	if it, _ := e.mail.Item(context.Background(), items[0].ID); !it.InLocker {
		t.Fatalf("not stored: %+v", it)
	}
	// Its door opened again from the item page, with a reason.
	res, _ = c.form("/mail/items/"+itoa(items[0].ID)+"/open", url.Values{"reason": {"住户来前台取件"}})
	if res.StatusCode != 303 {
		t.Fatalf("reopen: %d", res.StatusCode)
	}
	for deadline := time.Now().Add(10 * time.Second); unlocks(door) != 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the item's door was not opened again")
		}
	}
	sim.Close(door)

	// Flagged, a door is out of use until unflagged.
	if res, _ := c.form("/mail/doors/7/flag", url.Values{"note": {""}}); res.StatusCode != 422 {
		t.Fatalf("flag without a note: %d", res.StatusCode)
	}
	if res, _ := c.form("/mail/doors/7/flag", url.Values{"note": {"门锁松动"}}); res.StatusCode != 303 {
		t.Fatalf("flag: %d", res.StatusCode)
	}
	doors, _ := e.mail.Doors(context.Background())
	if !doors[6].Flagged || doors[6].State != mailroom.DoorFlagged {
		t.Fatalf("door 7: %+v", doors[6])
	}
	if _, body := c.do("GET", "/mail/lockers", "", ""); !strings.Contains(body, "门锁松动") {
		t.Fatalf("the flagged door is not shown:\n%s", body)
	}
	if res, _ := c.form("/mail/doors/7/unflag", url.Values{}); res.StatusCode != 303 {
		t.Fatalf("unflag: %d", res.StatusCode)
	}
	if res, _ := c.form("/mail/doors/99/unflag", url.Values{}); res.StatusCode != 404 {
		t.Fatalf("unflag an unknown door: %d", res.StatusCode)
	}
	doors, _ = e.mail.Doors(context.Background())
	if doors[6].Flagged {
		t.Fatalf("door 7 still flagged: %+v", doors[6])
	}
}

// A door that does not open (jammed in the simulator): the letter is
// freed from it, the door flagged, and the item page tells the clerk in
// Chinese what happened and what to do.
func TestMailDoorThatDoesNotOpen(t *testing.T) {
	e, sim, sys := lockerSite(t, nil)
	if err := sim.Stick(1, true); err != nil {
		t.Fatal(err)
	}
	it, err := e.mail.Register(sys, mailroom.RegisterInput{Type: "letter", Carrier: "中国邮政", Unit: "1-1-101", Condition: "ok", Storage: "locker"})
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := e.mail.PlaceInLocker(sys, it.ID, "S")
	if err != nil || cmd.Door != 1 {
		t.Fatalf("placing: door %d, %v", cmd.Door, err)
	}
	waitCmd(t, e, cmd.ID, mailroom.CmdFailed)
	it, _ = e.mail.Item(sys, it.ID)
	if it.Door != nil || it.State != mailroom.StateWaiting {
		t.Fatalf("after the jammed door: %+v", it)
	}
	_, body := e.as(auth.Clerk).do("GET", "/mail/items/"+itoa(it.ID), "", "")
	if !strings.Contains(body, `id="attention"`) || !strings.Contains(body, "1号柜门：柜门没有打开。请把此件放入其他柜门或货架") {
		t.Fatalf("the item page:\n%s", body)
	}
}
