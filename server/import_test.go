package server_test

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"onecard/auth"
	"onecard/store"
	"onecard/store/storetest"
	"onecard/web"
)

const roll = "房号,建筑面积,交房日期,姓名,电话,证件类型,证件后四位,身份,入住日期,租期开始,租期结束,业主同意方式,备注\n" +
	"3-2-1801,89.5,2024-06-30,张伟,13800138000,居民身份证,123X,业主,2024-07-01,,,,\n" +
	"3-2-1801,,,李娜,13800139000,居民身份证,4567,家属,2024-07-01,,,,\n" +
	"3-2-1802,90,2024-06-30,王芳,13600136000,护照,E123,业主,2024-07-02,,,,\n"

// badRoll has one broken row among good ones: line 4's lease ends before
// it starts.
const badRoll = roll +
	"3-2-1802,,,租客,13700137000,护照,E999,租户,2025-01-01,2025-06-01,2025-05-01,书面,\n" +
	"3-2-1803,95,2024-06-30,赵六,13500135000,居民身份证,1111,业主,,,,,\n"

func TestImportOverAPI(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := start(t, db)
		sup := e.as(auth.Supervisor)
		before := counts(t, db)
		res, body := sup.do("POST", "/api/v1/roll/import", "text/csv", badRoll)
		if res.StatusCode != 422 || errCode(body) != "import_rejected" {
			t.Fatalf("bad roll: %d %s", res.StatusCode, body)
		}
		var out web.ErrorBody
		var rows struct {
			Error struct {
				Rows []struct {
					Line    int    `json:"line"`
					Field   string `json:"field"`
					Code    string `json:"code"`
					Message string `json:"message"`
				} `json:"rows"`
			} `json:"error"`
		}
		json.Unmarshal([]byte(body), &out)
		json.Unmarshal([]byte(body), &rows)
		if len(rows.Error.Rows) != 1 || rows.Error.Rows[0].Line != 5 || rows.Error.Rows[0].Code != "lease_end_before_start" ||
			rows.Error.Rows[0].Message == "" {
			t.Fatalf("rows %+v", rows.Error.Rows)
		}
		if after := counts(t, db); after != before {
			t.Fatalf("a rejected import changed the store:\n%s\n%s", before, after)
		}
		res, body = sup.do("POST", "/api/v1/roll/import", "text/csv", roll)
		if res.StatusCode != 200 || !strings.Contains(body, `"units_created":2`) || !strings.Contains(body, `"residents_created":3`) {
			t.Fatalf("good roll: %d %s", res.StatusCode, body)
		}
		res, body = sup.do("GET", "/api/v1/roll/export?format=csv", "", "")
		if res.StatusCode != 200 || !strings.Contains(body, "张伟") || !strings.Contains(body, "3-2-1802") {
			t.Fatalf("export: %d %s", res.StatusCode, body)
		}
		// Importing the export again changes nothing.
		res, body = sup.do("POST", "/api/v1/roll/import", "text/csv", body)
		if res.StatusCode != 200 || !strings.Contains(body, `"units_created":0,"residents_created":0`) {
			t.Fatalf("re-import of the export: %d %s", res.StatusCode, body)
		}
		if res, _ := e.as(auth.Clerk).do("POST", "/api/v1/roll/import", "text/csv", roll); res.StatusCode != 403 {
			t.Fatalf("clerk import: %d", res.StatusCode)
		}
	})
}

func upload(t *testing.T, c *client, name, content string) (*http.Response, string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField(web.CSRFField, c.csrf)
	f, _ := w.CreateFormFile("file", name)
	io.WriteString(f, content)
	w.Close()
	return c.do("POST", "/import", w.FormDataContentType(), buf.String())
}

// TestDeskImportNamesTheBadRow: the supervisor uploads a roll with one bad
// row and the page lists that line and why, in Chinese, and imports nothing.
func TestDeskImportNamesTheBadRow(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	sup := e.as(auth.Supervisor)
	before := counts(t, e.db)
	res, body := upload(t, sup, "roll.csv", badRoll)
	if res.StatusCode != 422 {
		t.Fatalf("status %d", res.StatusCode)
	}
	for _, want := range []string{"<td>5</td>", "租期结束日期必须晚于开始日期", "本次没有导入任何数据"} {
		if !strings.Contains(body, want) {
			t.Errorf("import page lacks %q", want)
		}
	}
	if after := counts(t, e.db); after != before {
		t.Fatalf("a rejected import changed the store")
	}
	if res, body := upload(t, sup, "roll.txt", roll); res.StatusCode != 422 || !strings.Contains(body, "请上传 CSV 或 Excel") {
		t.Fatalf("wrong file type: %d", res.StatusCode)
	}
	res, body = upload(t, sup, "roll.csv", roll)
	if res.StatusCode != 200 || !strings.Contains(body, "导入完成") {
		t.Fatalf("good roll: %d", res.StatusCode)
	}
	res, body = sup.do("GET", "/export?format=xlsx", "", "")
	if res.StatusCode != 200 || !strings.HasPrefix(body, "PK") || !strings.Contains(res.Header.Get("Content-Disposition"), ".xlsx") {
		t.Fatalf("xlsx export: %d %q", res.StatusCode, res.Header.Get("Content-Disposition"))
	}
}

// TestDeskFormsExplainBadInput: a clerk's mistakes come back on the form,
// translated, with what was typed kept.
func TestDeskFormsExplainBadInput(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	clerk := e.as(auth.Clerk)
	res, body := clerk.form("/units/new", url.Values{"code": {"3-2"}, "area_m2": {"89.5"}})
	if res.StatusCode != 422 || !strings.Contains(body, "房号“3-2”格式不正确") || !strings.Contains(body, `value="89.5"`) {
		t.Fatalf("bad unit code: %d", res.StatusCode)
	}
	clerk.form("/units/new", url.Values{"code": {"3-2-1801"}})
	res, body = clerk.form("/units/new", url.Values{"code": {"3-2-1801"}})
	if res.StatusCode != 409 || !strings.Contains(body, "房号 3-2-1801 已存在") {
		t.Fatalf("duplicate unit: %d", res.StatusCode)
	}
	res, body = clerk.form("/units/3-2-1801/move-in", url.Values{"name": {"租客"}, "phone": {"13700137000"}, "id_type": {"passport"},
		"id_last4": {"E999"}, "role": {"tenant"}, "lease_start": {"2026-06-01"}, "lease_end": {"2026-05-01"}, "consent_method": {"written"}})
	if res.StatusCode != 422 || !strings.Contains(body, "租期结束日期必须晚于开始日期") || !strings.Contains(body, `value="租客"`) {
		t.Fatalf("bad lease: %d", res.StatusCode)
	}
	// In English after the switch.
	req, _ := http.NewRequest("GET", e.url+"/lang/en?next=/units", nil)
	res, _ = clerk.http.Do(req)
	res.Body.Close()
	res, body = clerk.form("/units/new", url.Values{"code": {"3-2"}})
	if res.StatusCode != 422 || !strings.Contains(body, "is not valid: use building-entrance-room") {
		t.Fatalf("English message: %d", res.StatusCode)
	}
	if n := counts(t, e.db); !strings.Contains(n, "units=1 ") || !strings.Contains(n, "occupancies=0") {
		t.Fatalf("store after bad forms: %s", n)
	}
}
