package server_test

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"onecard/auth"
	"onecard/store"
	"onecard/store/storetest"
)

// counts is a fingerprint of what is stored, to prove bad input changed
// nothing.
func counts(t *testing.T, db *store.DB) string {
	t.Helper()
	var out []string
	for _, table := range []string{"units", "people", "occupancies", "staff", "audit_log"} {
		var n int
		if err := db.Get(t.Context(), &n, "SELECT COUNT(*) FROM "+table); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s=%d", table, n))
	}
	return strings.Join(out, " ")
}

func TestAPIBadInputChangesNothing(t *testing.T) {
	storetest.Each(t, func(t *testing.T, db *store.DB) {
		e := start(t, db)
		clerk := e.as(auth.Clerk)
		res, body := clerk.json("POST", "/api/v1/units", `{"code":"3-2-1801","area_m2":126.5,"handover_date":"2021-06-30"}`)
		if res.StatusCode != 201 {
			t.Fatalf("create unit: %d %s", res.StatusCode, body)
		}
		res, body = clerk.json("POST", "/api/v1/units/3-2-1801/occupancies",
			`{"role":"owner","person":{"name":"陈建华","phone":"138 0013 8000","id_type":"resident_id","id_last4":"123x"}}`)
		if res.StatusCode != 201 {
			t.Fatalf("move in owner: %d %s", res.StatusCode, body)
		}
		var owner struct {
			PersonID int64  `json:"person_id"`
			Phone    string `json:"phone"`
			IDLast4  string `json:"id_last4"`
		}
		json.Unmarshal([]byte(body), &owner)
		if owner.Phone != "13800138000" || owner.IDLast4 != "123X" {
			t.Errorf("input not normalised: %+v", owner)
		}
		before := counts(t, db)
		cases := []struct {
			name, method, path, ctype, body string
			status                          int
			code                            string
		}{
			{"malformed json", "POST", "/api/v1/units", "application/json", `{"code":`, 422, "invalid_json"},
			{"two objects", "POST", "/api/v1/units", "application/json", `{"code":"1-1-101"}{"code":"1-1-102"}`, 422, "invalid_json"},
			{"unknown field", "POST", "/api/v1/units", "application/json", `{"code":"1-1-101","colour":"red"}`, 422, "unknown_field"},
			{"wrong type", "POST", "/api/v1/units", "application/json", `{"code":101}`, 422, "wrong_type"},
			{"not json", "POST", "/api/v1/units", "text/plain", `code=1-1-101`, 422, "json_required"},
			{"empty body", "POST", "/api/v1/units", "application/json", ``, 422, "body_empty"},
			{"missing code", "POST", "/api/v1/units", "application/json", `{"area_m2":80}`, 422, "unit_code_invalid"},
			{"bad code", "POST", "/api/v1/units", "application/json", `{"code":"3-2"}`, 422, "unit_code_invalid"},
			{"negative area", "POST", "/api/v1/units", "application/json", `{"code":"1-1-101","area_m2":-5}`, 422, "area_invalid"},
			{"area too precise", "POST", "/api/v1/units", "application/json", `{"code":"1-1-101","area_m2":80.123}`, 422, "area_invalid"},
			{"bad handover date", "POST", "/api/v1/units", "application/json", `{"code":"1-1-101","handover_date":"2021-02-30"}`, 422, "date_invalid"},
			{"duplicate unit", "POST", "/api/v1/units", "application/json", `{"code":"3-2-1801"}`, 409, "unit_code_taken"},
			{"duplicate unit, full-width", "POST", "/api/v1/units", "application/json", `{"code":"３－２－１８０１"}`, 409, "unit_code_taken"},
			{"lease ends before it starts", "POST", "/api/v1/units/3-2-1801/occupancies", "application/json",
				`{"role":"tenant","lease_start":"2026-12-01","lease_end":"2026-11-30","consent_method":"written",
				"person":{"name":"租客","phone":"13900000000","id_type":"passport","id_last4":"E123"}}`, 422, "lease_end_before_start"},
			{"tenant without consent", "POST", "/api/v1/units/3-2-1801/occupancies", "application/json",
				`{"role":"tenant","lease_start":"2026-12-01","lease_end":"2027-11-30",
				"person":{"name":"租客","phone":"13900000000","id_type":"passport","id_last4":"E123"}}`, 422, "tenant_needs_consent"},
			{"phone consent without note", "POST", "/api/v1/units/3-2-1801/occupancies", "application/json",
				`{"role":"tenant","lease_start":"2026-12-01","lease_end":"2027-11-30","consent_method":"phone",
				"person":{"name":"租客","phone":"13900000000","id_type":"passport","id_last4":"E123"}}`, 422, "phone_consent_needs_note"},
			{"family without owner", "POST", "/api/v1/units/3-2-1801/occupancies", "application/json",
				`{"role":"family","person":{"name":"家属","phone":"13900000001","id_type":"resident_id","id_last4":"0001"}}`, 422, "family_needs_owner"},
			{"family confirmed by a non-owner", "POST", "/api/v1/units/3-2-1801/occupancies", "application/json",
				`{"role":"family","confirmed_by":999,"person":{"name":"家属","phone":"13900000001","id_type":"resident_id","id_last4":"0001"}}`, 422, "confirmer_not_owner"},
			{"bad phone", "POST", "/api/v1/units/3-2-1801/occupancies", "application/json",
				`{"role":"owner","person":{"name":"王","phone":"12345","id_type":"resident_id","id_last4":"0001"}}`, 422, "phone_invalid"},
			{"whole ID number", "POST", "/api/v1/units/3-2-1801/occupancies", "application/json",
				`{"role":"owner","person":{"name":"王","phone":"13900000002","id_type":"resident_id","id_last4":"110101199003071234"}}`, 422, "id_last4_invalid"},
			{"owner already there", "POST", "/api/v1/units/3-2-1801/occupancies", "application/json",
				fmt.Sprintf(`{"role":"owner","person_id":%d}`, owner.PersonID), 409, "already_resident"},
			{"unknown unit", "GET", "/api/v1/units/9-9-901", "", "", 404, "unit_not_found"},
			{"stale version", "PUT", "/api/v1/units/3-2-1801", "application/json", `{"area_m2":130,"version":7}`, 409, "stale_version"},
			{"bad id", "GET", "/api/v1/people/abc", "", "", 422, "id_invalid"},
			{"no such route", "GET", "/api/v1/nothing", "", "", 404, "not_found"},
			{"page too big", "GET", "/api/v1/units?limit=5000", "", "", 422, "limit_invalid"},
		}
		for _, tc := range cases {
			res, body := clerk.do(tc.method, tc.path, tc.ctype, tc.body)
			if res.StatusCode != tc.status || errCode(body) != tc.code {
				t.Errorf("%s: %d %s, want %d %s", tc.name, res.StatusCode, body, tc.status, tc.code)
			}
			var e struct {
				Error struct{ Message string } `json:"error"`
			}
			json.Unmarshal([]byte(body), &e)
			if e.Error.Message == "" || strings.HasPrefix(e.Error.Message, "err.") {
				t.Errorf("%s: no translated message in %s", tc.name, body)
			}
		}
		if after := counts(t, db); after != before {
			t.Errorf("bad input changed the store:\nbefore %s\nafter  %s", before, after)
		}

		// The good path, for contrast: an edit with the right version and a
		// tenant with consent.
		res, body = clerk.json("PUT", "/api/v1/units/3-2-1801", `{"area_m2":"130.25","version":1}`)
		if res.StatusCode != 200 || !strings.Contains(body, `"area_m2":130.25`) {
			t.Fatalf("edit: %d %s", res.StatusCode, body)
		}
		res, body = clerk.json("POST", "/api/v1/units/3-2-1801/occupancies",
			`{"role":"tenant","lease_start":"2026-12-01","lease_end":"2027-11-30","consent_method":"phone","consent_note":"2026-11-27 10:05 致电业主陈建华，同意出租",
			"person":{"name":"租客","phone":"13900000000","id_type":"passport","id_last4":"e123"}}`)
		if res.StatusCode != 201 {
			t.Fatalf("tenant: %d %s", res.StatusCode, body)
		}
		rows, err := e.auth.Audit(t.Context(), auth.AuditFilter{Action: "occupancy.", Limit: 10})
		if err != nil || len(rows) != 2 || rows[0].ActorName != "clerk" || rows[0].Action != "occupancy.move_in" {
			t.Fatalf("audit rows %+v %v", rows, err)
		}
	})
}

func TestLoginLockoutOverHTTP(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	c := e.anon()
	for i := 0; i < 10; i++ {
		res, body := c.json("POST", "/api/v1/login", `{"username":"clerk","password":"wrong"}`)
		if res.StatusCode != 401 || errCode(body) != "login_failed" {
			t.Fatalf("attempt %d: %d %s", i+1, res.StatusCode, body)
		}
	}
	res, body := c.json("POST", "/api/v1/login", `{"username":"clerk","password":"password-clerk"}`)
	if res.StatusCode != 429 || errCode(body) != "login_locked" {
		t.Fatalf("after ten failures: %d %s", res.StatusCode, body)
	}
	// The desk form says so politely, in Chinese.
	res, body = c.do("GET", "/login", "", "")
	if res.StatusCode != 200 {
		t.Fatalf("login page %d", res.StatusCode)
	}
	i := strings.Index(body, `name="_csrf" value="`)
	tok := body[i+len(`name="_csrf" value="`):]
	tok = tok[:strings.Index(tok, `"`)]
	res, body = c.form("/login", url.Values{"_csrf": {tok}, "username": {"clerk"}, "password": {"password-clerk"}})
	if res.StatusCode != 429 || !strings.Contains(body, "暂时锁定") {
		t.Fatalf("desk login while locked: %d", res.StatusCode)
	}
	// Another account is unaffected.
	if res, body := c.json("POST", "/api/v1/login", `{"username":"cashier","password":"password-cashier"}`); res.StatusCode != 200 {
		t.Fatalf("cashier: %d %s", res.StatusCode, body)
	}
}

func TestDeskFormsNeedCSRF(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	clerk := e.as(auth.Clerk)
	token := clerk.csrf
	clerk.csrf = ""
	res, _ := clerk.form("/units/new", url.Values{"code": {"1-1-101"}})
	if res.StatusCode != 403 {
		t.Fatalf("form without CSRF token: %d", res.StatusCode)
	}
	res, _ = clerk.form("/units/new", url.Values{"code": {"1-1-101"}, "_csrf": {"forged"}})
	if res.StatusCode != 403 {
		t.Fatalf("form with a forged token: %d", res.StatusCode)
	}
	clerk.csrf = token
	res, _ = clerk.form("/units/new", url.Values{"code": {"1-1-101"}, "area_m2": {"88.8"}})
	if res.StatusCode != 303 || res.Header.Get("Location") != "/units/1-1-101?done=saved" {
		t.Fatalf("form with the token: %d %s", res.StatusCode, res.Header.Get("Location"))
	}
	// A login form posted from elsewhere (no login cookie) is refused.
	res, _ = e.anon().form("/login", url.Values{"username": {"clerk"}, "password": {"password-clerk"}, "_csrf": {"x"}})
	if res.StatusCode != 403 {
		t.Fatalf("cross-site login: %d", res.StatusCode)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	c := e.anon()
	for _, p := range []string{"/healthz", "/readyz"} {
		if res, body := c.do("GET", p, "", ""); res.StatusCode != 200 {
			t.Fatalf("%s: %d %s", p, res.StatusCode, body)
		}
	}
	e.as(auth.Clerk).do("GET", "/api/v1/units/1-1-101", "", "")
	res, body := c.do("GET", "/metrics", "", "")
	if res.StatusCode != 200 {
		t.Fatalf("metrics %d", res.StatusCode)
	}
	for _, want := range []string{`onecard_http_requests_total{method="GET",route="/api/v1/units/:code",status="404"} 1`,
		"onecard_http_request_duration_seconds_bucket", `go_sql_max_open_connections{db_name="onecard"}`} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	e.db.Close()
	if res, _ := c.do("GET", "/readyz", "", ""); res.StatusCode != 503 {
		t.Fatalf("readyz with the database closed: %d", res.StatusCode)
	}
}
