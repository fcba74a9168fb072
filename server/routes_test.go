package server_test

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"onecard/api"
	"onecard/auth"
	"onecard/store/storetest"
	"onecard/web"
)

// sample fills a route's parameters with plausible values.
func sample(path string) string {
	r := strings.NewReplacer(":code", "1-1-101", ":id", "999999", ":door", "1", ":username", "nobody", ":hash", "x", ":lang", "en", "*", "app.css")
	return r.Replace(path)
}

// TestEveryRouteChecksTheRole walks every route the app serves: each is
// registered with its roles; an anonymous caller is refused every guarded
// route; a caller of every role a route does not allow is refused, by
// session and by API token; a role it allows gets past the guard.
func TestEveryRouteChecksTheRole(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	registered := map[string]web.Route{}
	for _, r := range e.app.Registry.Routes() {
		registered[r.Method+" "+r.Path] = r
	}
	served := 0
	for _, r := range e.app.GetRoutes(true) {
		if r.Method == "HEAD" || r.Method == "USE" || r.Path == "/" && r.Method != "GET" {
			continue
		}
		if _, ok := registered[r.Method+" "+r.Path]; !ok {
			t.Errorf("%s %s is served but not registered with its roles", r.Method, r.Path)
		}
		served++
	}
	if served < 30 {
		t.Fatalf("only %d routes served; the walk is not seeing the app", served)
	}

	clients := map[auth.Role]*client{}
	tokens := map[auth.Role]*client{}
	admin := e.as(auth.Admin)
	for _, role := range auth.Roles {
		clients[role] = e.as(role)
		_, body := admin.json("POST", "/api/v1/tokens", `{"name":"walk `+string(role)+`","role":"`+string(role)+`"}`)
		var out struct{ Value string }
		if err := json.Unmarshal([]byte(body), &out); err != nil || out.Value == "" {
			t.Fatalf("token for %s: %s", role, body)
		}
		tokens[role] = &client{e: e, http: e.anon().http, bearer: out.Value}
	}
	anon := e.anon()
	for _, r := range e.app.Registry.Routes() {
		path := sample(r.Path)
		if r.Public {
			continue
		}
		if r.Kiosk {
			// Nobody but an enrolled kiosk: not anonymous, not staff.
			for who, c := range map[string]*client{"anonymous": anon, "admin": clients[auth.Admin], "admin token": tokens[auth.Admin]} {
				res, _ := c.do(r.Method, path, "application/json", "{}")
				if res.StatusCode != 401 && !(res.StatusCode == 303 && res.Header.Get("Location") == "/kiosk/enrol") {
					t.Errorf("%s %s %s: status %d, want refused", who, r.Method, r.Path, res.StatusCode)
				}
			}
			res, body := e.kioskClient().do(r.Method, path, "application/json", "{}")
			if res.StatusCode == 401 || res.StatusCode == 403 || res.Header.Get("Location") == "/kiosk/enrol" {
				t.Errorf("the kiosk %s %s: status %d %s", r.Method, r.Path, res.StatusCode, body)
			}
			continue
		}
		if r.Path == "/api/v1/logout" || r.Path == "/logout" {
			// Logging out would end the shared sessions; covered below.
			res, _ := anon.do(r.Method, path, "", "")
			if res.StatusCode != 401 && res.StatusCode != 303 {
				t.Errorf("anonymous %s %s: %d", r.Method, r.Path, res.StatusCode)
			}
			continue
		}
		res, _ := anon.do(r.Method, path, "application/json", "{}")
		if r.API && res.StatusCode != 401 {
			t.Errorf("anonymous %s %s: status %d, want 401", r.Method, r.Path, res.StatusCode)
		}
		if !r.API && (res.StatusCode != 303 || !strings.HasPrefix(res.Header.Get("Location"), "/login")) {
			t.Errorf("anonymous %s %s: status %d to %q, want 303 to /login", r.Method, r.Path, res.StatusCode, res.Header.Get("Location"))
		}
		for _, role := range auth.Roles {
			allowed := slices.Contains(r.Roles, role)
			for kind, c := range map[string]*client{"session": clients[role], "token": tokens[role]} {
				if !r.API && kind == "token" {
					continue // screens are for people
				}
				res, body := c.do(r.Method, path, "application/json", "{}")
				switch {
				case !allowed && res.StatusCode != 403:
					t.Errorf("%s by %s %s: status %d, want 403", kind, role, r.Method+" "+r.Path, res.StatusCode)
				case allowed && (res.StatusCode == 401 || res.StatusCode == 403):
					t.Errorf("%s by allowed %s %s: status %d %s", kind, role, r.Method+" "+r.Path, res.StatusCode, body)
				}
			}
		}
	}
}

// TestOpenAPIMatchesRoutes checks every API route is documented with the
// roles it really allows, and every documented route exists.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := start(t, storetest.SQLite(t))
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(api.OpenAPI, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	documented := map[string][]string{}
	for p, ops := range doc.Paths {
		for m, raw := range ops {
			var op struct {
				Roles []string `json:"x-roles"`
			}
			if err := json.Unmarshal(raw, &op); err != nil {
				t.Fatal(err)
			}
			documented[strings.ToUpper(m)+" "+p] = op.Roles
		}
	}
	seen := map[string]bool{}
	for _, r := range e.app.Registry.Routes() {
		if !r.API {
			continue
		}
		p := r.Path
		for _, seg := range strings.Split(p, "/") {
			if strings.HasPrefix(seg, ":") {
				p = strings.Replace(p, seg, "{"+seg[1:]+"}", 1)
			}
		}
		key := r.Method + " " + p
		seen[key] = true
		roles, ok := documented[key]
		if !ok {
			t.Errorf("%s is served but not in openapi.json", key)
			continue
		}
		var want []string
		for _, role := range r.Roles {
			want = append(want, string(role))
		}
		slices.Sort(want)
		slices.Sort(roles)
		if !slices.Equal(want, roles) {
			t.Errorf("%s: openapi x-roles %v, route allows %v", key, roles, want)
		}
	}
	for key := range documented {
		if !seen[key] {
			t.Errorf("%s is documented but not served", key)
		}
	}
	// And the served document is this one.
	res, body := e.anon().do("GET", "/api/v1/openapi.json", "", "")
	if res.StatusCode != 200 || body != string(api.OpenAPI) {
		t.Fatalf("served openapi.json: %d, %d bytes", res.StatusCode, len(body))
	}
	_ = os.Getenv
}
