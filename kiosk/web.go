package kiosk

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"onecard/auth"
	"onecard/billing"
	"onecard/fault"
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
	tmpl    *template.Template
}

// Register mounts the kiosk's pages under /kiosk.
func (s *Screens) Register(app *fiber.App) {
	s.tmpl = template.Must(template.New("").Funcs(template.FuncMap{
		"t":    func(lang, key string) string { return web.T(lang, key, nil) },
		"yuan": billing.Yuan,
		"site": func() string { return s.Site },
	}).ParseFS(viewsFS, "views/*.html"))
	s.Guard.Kiosk = func(ctx context.Context, cred string) (auth.Actor, error) {
		k, err := s.Kiosks.Authenticate(ctx, cred)
		if err != nil {
			return auth.Actor{}, err
		}
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
	g.Kiosk("POST", "/end", s.end)
}

// render writes a kiosk page: never cached, so nothing of an owner stays
// in the browser.
func (s *Screens) render(c *fiber.Ctx, status int, name string, data fiber.Map) error {
	if data == nil {
		data = fiber.Map{}
	}
	data["L"] = web.Lang(c)
	if a, ok := web.ActorOf(c); ok {
		data["CSRF"] = a.CSRF
	}
	data["Path"] = c.Path()
	data["Idle"] = int(s.Kiosks.Idle().Seconds())
	data["Script"] = scriptName
	var buf bytes.Buffer
	if err := s.tmpl.ExecuteTemplate(&buf, name+".html", data); err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	c.Type("html", "utf-8")
	return c.Status(status).Send(buf.Bytes())
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
	return c.Redirect("/kiosk/bills", fiber.StatusSeeOther)
}

func (s *Screens) bills(c *fiber.Ctx) error { return s.renderBills(c, fiber.StatusOK, nil) }

func (s *Screens) renderBills(c *fiber.Ctx, status int, formErr error) error {
	se := s.session(c)
	if se == nil {
		return c.Redirect("/kiosk", fiber.StatusSeeOther)
	}
	a, err := s.Billing.Account(c.UserContext(), se.Unit)
	if err != nil {
		return err
	}
	data := fiber.Map{"Account": a, "Key": randomHex(12), "Session": true}
	if formErr != nil {
		data["Error"] = web.Detail(c, formErr).Message
	}
	return s.render(c, status, "bills", data)
}

// pay charges the chosen bills on the kiosk's terminal. The key in the
// form makes a second press (or a reload) the same payment.
func (s *Screens) pay(c *fiber.Ctx) error {
	se := s.session(c)
	if se == nil {
		return c.Redirect("/kiosk", fiber.StatusSeeOther)
	}
	in := billing.PayInput{IdemKey: c.FormValue("key"), Unit: se.Unit, Method: "card"}
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
	return s.render(c, fiber.StatusOK, "waiting", fiber.Map{"Payment": p, "Session": true, "Reload": 3000})
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
