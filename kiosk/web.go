package kiosk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"html"
	"html/template"
	"io/fs"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	qrcode "github.com/skip2/go-qrcode"

	"onecard/auth"
	"onecard/billing"
	"onecard/fault"
	"onecard/fleet"
	"onecard/mailroom"
	"onecard/web"
)

//go:embed views/*.html
var viewsFS embed.FS

//go:embed static/kiosk.js
var script []byte

// scriptName carries a hash of the script, so it is cached for ever and a
// new release is fetched at once.
var scriptName = func() string {
	h := sha256.Sum256(script)
	return "/kiosk/static/" + hex.EncodeToString(h[:6]) + "/kiosk.js"
}()

// SessionCookie carries an identified owner's session on the kiosk.
const SessionCookie = "onecard_kiosk_session"

// Screens are the kiosk's pages.
type Screens struct {
	Kiosks  *Service
	Billing *billing.Service
	Guard   *web.Guard
	Site    string
	// Taps, if set, streams the readers' events (fleet.Service.Watch): a
	// card tapped on the kiosk's reader identifies its owner.
	Taps func() (<-chan fleet.StoredEvent, func())
	// CardOf tells a tapped card's unit and whether it may be used.
	CardOf func(ctx context.Context, uid string) (CardInfo, error)
	// Stopping is closed when the server shuts down, ending streams.
	Stopping <-chan struct{}
	// Mail, if set, offers pickup of mail and parcels (locker doors opened
	// here, the rest collected at the desk).
	Mail *mailroom.Service
	// QR offers payment by QR code (a gateway is configured).
	QR bool
	// PaperOut, if set, tells whether the named receipt printer ("": the
	// desk's) is out of paper (the owner is told before paying).
	PaperOut func(ctx context.Context, printer string) bool
	tmpl     map[string]*template.Template // by language
	pages    pages                         // rendered bills pages
	records  sync.Map                      // kiosk ID → Kiosk, as last authenticated (its devices)
	tapMu    sync.Mutex
	taps     map[string]tapped // one-time tap tokens
}

// CardInfo is what the kiosk needs of a card.
type CardInfo struct {
	Unit       string // "" for a card of no unit (staff, contractors)
	State      string // active or blocked
	ValidUntil string // last valid day
}

type tapped struct {
	session string
	at      time.Time
}

// Register mounts the kiosk's pages under /kiosk.
func (s *Screens) Register(app *fiber.App) {
	s.tmpl = map[string]*template.Template{}
	for _, lang := range web.Langs {
		s.tmpl[lang] = s.parseViews(lang)
	}
	s.Guard.Kiosk = func(ctx context.Context, cred string) (auth.Actor, error) {
		k, err := s.Kiosks.Authenticate(ctx, cred)
		if err != nil {
			return auth.Actor{}, err
		}
		s.records.Store(k.ID, k)
		return Actor(k), nil
	}
	g := s.Guard.Screens(app, "/kiosk")
	g.Public("GET", "/static/:hash/kiosk.js", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
		c.Type("js", "utf-8")
		return c.Send(script)
	})
	g.Public("GET", "/enrol", s.enrolPage)
	g.Public("POST", "/enrol", s.enrol)
	g.Kiosk("GET", "", s.welcome)
	g.Kiosk("POST", "/pin", s.pin)
	g.Kiosk("GET", "/bills", s.bills)
	g.Kiosk("POST", "/pay", s.pay)
	g.Kiosk("GET", "/payments/:id", s.waiting)
	g.Kiosk("POST", "/payments/:id/cancel", s.cancel)
	g.Kiosk("POST", "/end", s.end)
	g.Kiosk("GET", "/taps", s.tapStream)
	g.Kiosk("GET", "/tap", s.tap)
	if s.Mail != nil {
		s.registerMail(g)
	}
}

// fixedText is a translation with a literal key, or the site's name: text
// that is the same on every page of a language.
var fixedText = regexp.MustCompile(`\{\{(?:t \$?\.L "([a-z0-9_.]+)"|site)\}\}`)

// parseViews compiles the views for one language with their fixed texts
// in place, so a page runs no template call for them (the kiosk's pages
// are asked for by every kiosk every few seconds).
func (s *Screens) parseViews(lang string) *template.Template {
	t := template.New("").Funcs(template.FuncMap{
		"t":    func(lang, key string) string { return web.T(lang, key, nil) },
		"yuan": billing.Yuan,
	})
	files, err := fs.Glob(viewsFS, "views/*.html")
	if err != nil {
		panic(err)
	}
	for _, f := range files {
		src, err := fs.ReadFile(viewsFS, f)
		if err != nil {
			panic(err)
		}
		src = fixedText.ReplaceAllFunc(src, func(m []byte) []byte {
			text := s.Site
			if key := fixedText.FindSubmatch(m)[1]; key != nil {
				text = web.T(lang, string(key), nil)
			}
			return []byte(html.EscapeString(text))
		})
		template.Must(t.New(path.Base(f)).Parse(string(src)))
	}
	return t
}

// render writes a kiosk page.
func (s *Screens) render(c *fiber.Ctx, status int, name string, data fiber.Map) error {
	body, err := s.page(c, name, data)
	if err != nil {
		return err
	}
	return s.send(c, status, body)
}

// page renders a kiosk page (data's CSRF, if set, stands instead of the
// caller's).
func (s *Screens) page(c *fiber.Ctx, name string, data fiber.Map) ([]byte, error) {
	if data == nil {
		data = fiber.Map{}
	}
	lang := web.Lang(c)
	data["L"] = lang
	if a, ok := web.ActorOf(c); ok && data["CSRF"] == nil {
		data["CSRF"] = a.CSRF
	}
	data["Path"] = c.Path()
	data["Idle"] = int(s.Kiosks.Idle().Seconds())
	data["Script"] = scriptName
	data["Mail"] = s.Mail != nil
	var buf bytes.Buffer
	if err := s.tmpl[lang].ExecuteTemplate(&buf, name+".html", data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// send writes a page: never cached, so nothing of an owner stays in the
// browser.
func (s *Screens) send(c *fiber.Ctx, status int, body []byte) error {
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Type("html", "utf-8")
	return c.Status(status).Send(body)
}

func (s *Screens) enrolPage(c *fiber.Ctx) error {
	if code := c.Query("code"); code != "" {
		return s.doEnrol(c, code)
	}
	return s.render(c, fiber.StatusOK, "enrol", nil)
}

func (s *Screens) enrol(c *fiber.Ctx) error { return s.doEnrol(c, c.FormValue("code")) }

func (s *Screens) doEnrol(c *fiber.Ctx, code string) error {
	_, cred, err := s.Kiosks.Enrol(c.UserContext(), code)
	if err != nil {
		if web.Status(err) >= 500 {
			return err
		}
		return s.render(c, web.Status(err), "enrol", fiber.Map{"Error": web.Detail(c, err).Message})
	}
	c.Cookie(&fiber.Cookie{Name: web.KioskCookie, Value: cred, Path: "/", Expires: time.Now().AddDate(10, 0, 0),
		HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode, Secure: s.Guard.SecureCookies})
	return c.Redirect("/kiosk", fiber.StatusSeeOther)
}

func (s *Screens) kiosk(c *fiber.Ctx) Kiosk {
	a, _ := web.ActorOf(c)
	if k, ok := s.records.Load(a.ID); ok {
		return k.(Kiosk)
	}
	return Kiosk{ID: a.ID, Code: strings.TrimPrefix(a.Name, "kiosk:"), CSRF: a.CSRF}
}

// session is the owner identified on this kiosk, or nil.
func (s *Screens) session(c *fiber.Ctx) *Session {
	return s.Kiosks.Session(s.kiosk(c), c.Cookies(SessionCookie))
}

func (s *Screens) welcome(c *fiber.Ctx) error {
	if s.session(c) != nil {
		return c.Redirect("/kiosk/bills", fiber.StatusSeeOther)
	}
	data := fiber.Map{}
	if c.Query("bye") != "" {
		data["Bye"] = true
	}
	return s.render(c, fiber.StatusOK, "welcome", data)
}

func (s *Screens) pin(c *fiber.Ctx) error {
	se, err := s.Kiosks.IdentifyByPIN(c.UserContext(), s.kiosk(c), c.FormValue("unit"), c.FormValue("pin"))
	if err != nil {
		if web.Status(err) >= 500 {
			return err
		}
		return s.render(c, web.Status(err), "welcome", fiber.Map{"Error": web.Detail(c, err).Message, "Unit": c.FormValue("unit")})
	}
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: se.Token, Path: "/kiosk", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: s.Guard.SecureCookies})
	return c.Redirect(s.firstPage(c, se.Unit), fiber.StatusSeeOther)
}

// firstPage is where an owner just identified goes: the unit's mail when
// some waits (the notice SOP §3 asks for at the next identification),
// else the bills.
func (s *Screens) firstPage(c *fiber.Ctx, unit string) string {
	if s.Mail != nil {
		if items, err := s.Mail.Waiting(c.UserContext(), unit); err == nil && len(items) > 0 {
			return "/kiosk/mail"
		}
	}
	return "/kiosk/bills"
}

func (s *Screens) bills(c *fiber.Ctx) error { return s.renderBills(c, fiber.StatusOK, nil) }

func (s *Screens) renderBills(c *fiber.Ctx, status int, formErr error) error {
	se := s.session(c)
	if se == nil {
		return c.Redirect("/kiosk", fiber.StatusSeeOther)
	}
	ctx := c.UserContext()
	paperOut := s.PaperOut != nil && s.PaperOut(ctx, s.kiosk(c).Printer)
	actor, _ := web.ActorOf(c)
	if formErr != nil || actor.CSRF == "" {
		// After a refused payment, the books as they are now.
		a, err := s.Billing.Account(ctx, se.Unit)
		if err != nil {
			return err
		}
		data := fiber.Map{"Account": a, "Key": randomHex(12), "Session": true, "QR": s.QR, "PaperOut": paperOut}
		if formErr != nil {
			data["Error"] = web.Detail(c, formErr).Message
		}
		return s.render(c, status, "bills", data)
	}
	a, stamp, err := s.Billing.CachedAccount(ctx, se.Unit)
	if err != nil {
		return err
	}
	fill := [len(holeMarks)]string{randomHex(12), actor.CSRF}
	k := pageKey{unit: se.Unit, lang: web.Lang(c), paperOut: paperOut, qr: s.QR}
	pg, ok := s.pages.get(k, stamp)
	if !ok {
		data := fiber.Map{"Account": a, "Key": holeMarks[0], "CSRF": holeMarks[1], "Session": true, "QR": s.QR, "PaperOut": paperOut}
		body, err := s.page(c, "bills", data)
		if err != nil {
			return err
		}
		pg = cut(body, stamp)
		s.pages.put(k, pg)
	}
	return s.send(c, status, pg.fill(fill))
}

// pay charges the chosen bills on the kiosk's terminal. The key in the
// form makes a second press (or a reload) the same payment.
func (s *Screens) pay(c *fiber.Ctx) error {
	se := s.session(c)
	if se == nil {
		return c.Redirect("/kiosk", fiber.StatusSeeOther)
	}
	k := s.kiosk(c)
	in := billing.PayInput{IdemKey: c.FormValue("key"), Unit: se.Unit, Method: "card", Terminal: k.Terminal, Printer: k.Printer}
	if c.FormValue("method") == "qr" && s.QR {
		in.Method = "qr"
	}
	for _, v := range c.Request().PostArgs().PeekMulti("bill") {
		id, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return s.renderBills(c, fiber.StatusUnprocessableEntity, fault.Invalid("bill_ids", "bill_not_open"))
		}
		in.BillIDs = append(in.BillIDs, id)
	}
	if len(in.BillIDs) == 0 {
		return s.renderBills(c, fiber.StatusUnprocessableEntity, fault.Invalid("bill_ids", "kiosk_choose_bills"))
	}
	a, err := s.Billing.Account(c.UserContext(), se.Unit)
	if err != nil {
		return err
	}
	for _, b := range a.Open {
		for _, id := range in.BillIDs {
			if b.ID == id {
				in.AmountFen += b.Outstanding()
			}
		}
	}
	p, err := s.Billing.Pay(c.UserContext(), in)
	switch {
	case err == nil:
		return s.receipt(c, se, p)
	case errors.Is(err, billing.ErrOutcomeUnknown):
		return c.Redirect(fmt.Sprintf("/kiosk/payments/%d", p.ID), fiber.StatusSeeOther)
	case web.Status(err) < 500:
		return s.renderBills(c, web.Status(err), err)
	}
	return err
}

// waiting shows a card payment whose outcome the terminal has not given
// yet; the page asks again every few seconds and says nothing until the
// books know.
func (s *Screens) waiting(c *fiber.Ctx) error {
	se := s.session(c)
	id, _ := strconv.ParseInt(c.Params("id"), 10, 64)
	p, err := s.Billing.Payment(c.UserContext(), id)
	if err != nil {
		return err
	}
	if p.OpKind != "kiosk" || p.OpID != s.kiosk(c).ID {
		return fault.NotFound("payment_not_found")
	}
	if p.State == "settled" {
		return s.receipt(c, se, p)
	}
	if p.State == "declined" {
		return s.renderBills(c, fiber.StatusOK, fault.Invalid("card", "card_declined", "reason", p.Outcome))
	}
	s.Billing.Resolve(c.UserContext())
	data := fiber.Map{"Payment": p, "Session": true, "Reload": 3000}
	if p.QRContent != "" {
		png, err := qrcode.Encode(p.QRContent, qrcode.Medium, 360)
		if err != nil {
			return err
		}
		data["QRImage"] = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))
	}
	return s.render(c, fiber.StatusOK, "waiting", data)
}

// receipt shows the receipt (the printer prints it) and ends the session.
func (s *Screens) receipt(c *fiber.Ctx, se *Session, p billing.Payment) error {
	if se != nil {
		s.Kiosks.End(se.Token)
	}
	s.clear(c)
	return s.render(c, fiber.StatusOK, "receipt", fiber.Map{"Receipt": p.Receipt, "Redirect": "/kiosk?bye=1"})
}

func (s *Screens) end(c *fiber.Ctx) error {
	if se := s.session(c); se != nil {
		s.Kiosks.End(se.Token)
	}
	s.clear(c)
	return c.Redirect("/kiosk?bye=1", fiber.StatusSeeOther)
}

// clear forgets the owner in the browser, and goes back to Chinese.
func (s *Screens) clear(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: "", Path: "/kiosk", MaxAge: -1, HTTPOnly: true})
	c.Cookie(&fiber.Cookie{Name: web.LangCookie, Value: "", Path: "/", MaxAge: -1})
}

// tapStream tells the welcome page, by server-sent events, when a card is
// tapped on this kiosk's reader: where to go (the owner's bills, through a
// one-time token) or, politely, why not.
func (s *Screens) tapStream(c *fiber.Ctx) error {
	if s.Taps == nil || s.CardOf == nil {
		return fault.NotFound("kiosk_no_reader")
	}
	k := s.kiosk(c)
	var reader string
	if err := s.Kiosks.db.Get(c.UserContext(), &reader, "SELECT reader FROM kiosks WHERE id = ?", k.ID); err != nil {
		return err
	}
	lang := web.Lang(c)
	ctx := context.WithoutCancel(c.UserContext())
	events, stop := s.Taps()
	return web.Stream(c, events, stop, s.Stopping, func(e fleet.StoredEvent) (any, bool) {
		if reader == "" || e.Device != reader || e.Card == "" {
			return nil, false
		}
		return s.onTap(ctx, k, e.Card, lang), true
	})
}

// onTap checks the card: a blocked or expired card, or one of no unit, is
// refused with what to do; a good one starts a session for its unit.
func (s *Screens) onTap(ctx context.Context, k Kiosk, uid, lang string) map[string]string {
	info, err := s.CardOf(ctx, uid)
	code := ""
	switch {
	case err != nil:
		code = "kiosk_card_unknown"
	case info.State == "blocked":
		code = "kiosk_card_blocked"
	case info.ValidUntil < s.Kiosks.now().Format(time.DateOnly):
		code = "kiosk_card_expired"
	case info.Unit == "":
		code = "kiosk_card_no_unit"
	}
	if code != "" {
		return map[string]string{"error": web.T(lang, "err."+code, nil)}
	}
	se := s.Kiosks.start(k, info.Unit, "card")
	token := randomHex(16)
	s.tapMu.Lock()
	if s.taps == nil {
		s.taps = map[string]tapped{}
	}
	for t, x := range s.taps {
		if time.Since(x.at) > 30*time.Second {
			delete(s.taps, t)
		}
	}
	s.taps[token] = tapped{se.Token, time.Now()}
	s.tapMu.Unlock()
	return map[string]string{"go": "/kiosk/tap?t=" + token}
}

// tap exchanges a one-time tap token for the session cookie.
func (s *Screens) tap(c *fiber.Ctx) error {
	s.tapMu.Lock()
	x, ok := s.taps[c.Query("t")]
	delete(s.taps, c.Query("t"))
	s.tapMu.Unlock()
	if !ok || time.Since(x.at) > 30*time.Second {
		return c.Redirect("/kiosk", fiber.StatusSeeOther)
	}
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: x.session, Path: "/kiosk", HTTPOnly: true, SameSite: fiber.CookieSameSiteStrictMode,
		Secure: s.Guard.SecureCookies})
	if se := s.Kiosks.Session(s.kiosk(c), x.session); se != nil {
		return c.Redirect(s.firstPage(c, se.Unit), fiber.StatusSeeOther)
	}
	return c.Redirect("/kiosk/bills", fiber.StatusSeeOther)
}

// cancel closes a QR payment the owner gave up on (the gateway is told;
// paid after all means settled) and goes back to the bills.
func (s *Screens) cancel(c *fiber.Ctx) error {
	id, _ := strconv.ParseInt(c.Params("id"), 10, 64)
	p, err := s.Billing.Payment(c.UserContext(), id)
	if err != nil {
		return err
	}
	if p.OpKind != "kiosk" || p.OpID != s.kiosk(c).ID {
		return fault.NotFound("payment_not_found")
	}
	p, err = s.Billing.CancelQR(c.UserContext(), id)
	if err != nil && web.Status(err) >= 500 {
		return err
	}
	if p.State == "settled" {
		return s.receipt(c, s.session(c), p)
	}
	return c.Redirect("/kiosk/bills", fiber.StatusSeeOther)
}
