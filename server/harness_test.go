package server_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"onecard/auth"
	"onecard/billing"
	"onecard/cards"
	"onecard/estate"
	"onecard/fleet"
	"onecard/kiosk"
	"onecard/mailroom"
	"onecard/passes"
	"onecard/server"
	"onecard/store"
	"onecard/web"
)

// env is a running onecard on a loopback port, with one staff account per
// role (password "password-<role>").
type env struct {
	t    *testing.T
	db   *store.DB
	app  *server.App
	url  string
	auth *auth.Service
	es   *estate.Service
	bill *billing.Service
	// cards is the one-card register, without an encoder.
	cards  *cards.Register
	kiosks *kiosk.Service
	passes *passes.Service
	mail   *mailroom.Service
}

func start(t *testing.T, db *store.DB) *env { t.Helper(); return startWith(t, db, billing.Options{}) }

// harnessFleet, if set, gives the next start a running fleet (a test with
// a broker and readers).
var harnessFleet func(es *estate.Service) *fleet.Service

// mailOptions are the mail room's options for the next start (a test
// gives it a locker bank).
var mailOptions mailroom.Options

// scanFeed, if set, is the desk scanner's feed for the next start (a
// test feeds it codes).
var scanFeed func() (<-chan string, func())

// kioskOptions are the kiosks' options for the next start (a test may
// shorten the idle time; tests here do not run in parallel).
var kioskOptions kiosk.Options

// startWith is start with the books' options (a payment terminal, say).
func startWith(t *testing.T, db *store.DB, bo billing.Options) *env {
	t.Helper()
	return startFull(t, db, bo, nil)
}

// startFull is startWith with a desk card encoder.
func startFull(t *testing.T, db *store.DB, bo billing.Options, station *cards.Station) *env {
	t.Helper()
	ctx := context.Background()
	es, err := estate.Open(ctx, db, "test", "测试小区", "Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	bo.Log = quiet
	// Listen first: a gateway needs the URL its notifications go to.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if bo.Gateway != nil {
		bo.NotifyURL = "http://" + ln.Addr().String() + "/gateway/notify"
	}
	bill, err := billing.Open(ctx, db, es.Site(), bo)
	if err != nil {
		t.Fatal(err)
	}
	as := auth.New(db, auth.DefaultPolicy)
	for _, r := range auth.Roles {
		if _, err := as.CreateStaff(ctx, auth.NewStaff{Username: string(r), Role: r, Password: "password-" + string(r)}); err != nil {
			t.Fatal(err)
		}
	}
	// The register records whitelist changes in the fleet's outbox; no
	// broker delivers them here.
	fl, err := fleet.New(db, es.Site().ID, "test", fleet.Options{Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	var running *fleet.Service // served to the app (kiosk taps), when a test runs one
	if harnessFleet != nil {
		fl = harnessFleet(es)
		running = fl
	}
	reg, err := cards.OpenRegister(ctx, cards.RegisterDeps{DB: db, Estate: es, Billing: bill, Fleet: fl, Station: station,
		Keys: cards.Keys{Master: []byte("site master key site master key!"), MAC: []byte("site mac key site mac key site m")}})
	if err != nil {
		t.Fatal(err)
	}
	_, passKey, _ := ed25519.GenerateKey(nil)
	gatePasses, err := passes.Open(passes.Deps{DB: db, Estate: es, Billing: bill, Key: passKey, Gates: []string{"gate", "gate-north"}, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mo := mailOptions
	mo.Log = quiet
	mail, err := mailroom.Open(ctx, db, es.Site(), mo)
	if err != nil {
		t.Fatal(err)
	}
	kiosks := kiosk.New(db, es, kioskOptions)
	stopping := make(chan struct{}) // closed at the end: live streams stop
	app, err := server.New(server.Deps{DB: db, Auth: as, Estate: es, Log: quiet, LoginLimit: 10000, Billing: bill, Cards: reg, Encoder: station,
		Kiosks: kiosks, Gateway: bo.Gateway, Fleet: running, Stopping: stopping, Passes: gatePasses, Mail: mail, Scans: scanFeed})
	if err != nil {
		t.Fatal(err)
	}
	go app.Listener(ln)
	t.Cleanup(func() { close(stopping); app.Shutdown() })
	return &env{t: t, db: db, app: app, url: "http://" + ln.Addr().String(), auth: as, es: es, bill: bill, cards: reg, kiosks: kiosks, passes: gatePasses, mail: mail}
}

// kioskClient is a browser enrolled as a kiosk (registered on first use).
func (e *env) kioskClient() *client {
	e.t.Helper()
	ctx := context.Background()
	_, code, err := e.kiosks.Register(ctx, kiosk.Kiosk{Code: "lobby-test", Name: "测试大堂"})
	if err != nil {
		e.t.Fatal(err)
	}
	k, cred, err := e.kiosks.Enrol(ctx, code)
	if err != nil {
		e.t.Fatal(err)
	}
	c := e.anon()
	u, _ := url.Parse(e.url)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: web.KioskCookie, Value: cred, Path: "/"}})
	c.csrf = k.CSRF
	return c
}

// client is an HTTP client with a cookie jar that does not follow
// redirects, so tests see them.
type client struct {
	e    *env
	http *http.Client
	csrf string
	// bearer, if set, is sent as Authorization.
	bearer string
}

func (e *env) anon() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, http: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

// as logs in through the JSON API and keeps the session cookie and the
// CSRF token.
func (e *env) as(role auth.Role) *client {
	e.t.Helper()
	c := e.anon()
	res, body := c.do("POST", "/api/v1/login", "application/json", `{"username":"`+string(role)+`","password":"password-`+string(role)+`"}`)
	if res.StatusCode != 200 {
		e.t.Fatalf("login as %s: %d %s", role, res.StatusCode, body)
	}
	var out struct {
		CSRF string `json:"csrf_token"`
	}
	if err := json.Unmarshal([]byte(body), &out); err != nil || out.CSRF == "" {
		e.t.Fatalf("login response %s: %v", body, err)
	}
	c.csrf = out.CSRF
	return c
}

func (c *client) do(method, path, ctype, body string) (*http.Response, string) {
	c.e.t.Helper()
	req, err := http.NewRequest(method, c.e.url+path, strings.NewReader(body))
	if err != nil {
		c.e.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.csrf != "" {
		req.Header.Set(web.CSRFHeader, c.csrf)
	}
	if c.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+c.bearer)
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, string(b)
}

func (c *client) json(method, path string, body string) (*http.Response, string) {
	return c.do(method, path, "application/json", body)
}

func (c *client) form(path string, v url.Values) (*http.Response, string) {
	if c.csrf != "" {
		v.Set(web.CSRFField, c.csrf)
	}
	return c.do("POST", path, "application/x-www-form-urlencoded", v.Encode())
}

// errCode returns the error code of a JSON error body.
func errCode(body string) string {
	var e web.ErrorBody
	_ = json.Unmarshal([]byte(body), &e)
	return e.Error.Code
}
