package desk

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/url"
	"strings"

	"github.com/gofiber/fiber/v2"

	"onecard/web"
)

// loginCSRFCookie double-submits a token on the login form, so another
// site cannot log a clerk into an account of its choosing.
const loginCSRFCookie = "onecard_login_csrf"

func (d *Desk) loginPage(c *fiber.Ctx) error {
	if _, ok := web.ActorOf(c); ok {
		return c.Redirect(safeNext(c.Query("next")), fiber.StatusSeeOther)
	}
	return d.renderLogin(c, fiber.StatusOK, "", "")
}

func (d *Desk) renderLogin(c *fiber.Ctx, status int, username, errMsg string) error {
	b := make([]byte, 18)
	_, _ = rand.Read(b)
	tok := base64.RawURLEncoding.EncodeToString(b)
	c.Cookie(&fiber.Cookie{Name: loginCSRFCookie, Value: tok, Path: "/login", HTTPOnly: true,
		SameSite: fiber.CookieSameSiteStrictMode, Secure: d.Guard.SecureCookies})
	return render(c, status, "login", "login.title", fiber.Map{
		"LoginCSRF": tok, "Next": safeNext(c.Query("next", c.FormValue("next"))), "Username": username, "Error": errMsg,
	})
}

func (d *Desk) login(c *fiber.Ctx) error {
	want := c.Cookies(loginCSRFCookie)
	got := c.FormValue(web.CSRFField)
	username := c.FormValue("username")
	if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
		return d.renderLogin(c, fiber.StatusForbidden, username, web.T(web.Lang(c), "err.csrf_invalid", nil))
	}
	s, err := d.Auth.Login(c.UserContext(), username, c.FormValue("password"), c.IP(), c.Get(fiber.HeaderUserAgent))
	if err != nil {
		if !userError(err) {
			return err
		}
		return d.renderLogin(c, web.Status(err), username, message(c, err))
	}
	d.Guard.SetSessionCookie(c, s)
	return c.Redirect(safeNext(c.FormValue("next")), fiber.StatusSeeOther)
}

func (d *Desk) logout(c *fiber.Ctx) error {
	if err := d.Auth.Logout(c.UserContext(), c.Cookies(web.SessionCookie)); err != nil {
		return err
	}
	d.Guard.ClearSessionCookie(c)
	return c.Redirect("/login", fiber.StatusSeeOther)
}

func (d *Desk) setLang(c *fiber.Ctx) error {
	lang := c.Params("lang")
	ok := false
	for _, l := range web.Langs {
		ok = ok || l == lang
	}
	if !ok {
		return fiber.ErrNotFound
	}
	c.Cookie(&fiber.Cookie{Name: web.LangCookie, Value: lang, Path: "/", MaxAge: 365 * 24 * 3600,
		SameSite: fiber.CookieSameSiteLaxMode})
	return c.Redirect(safeNext(c.Query("next")), fiber.StatusSeeOther)
}

// safeNext keeps redirects on this site: only a local absolute path.
func safeNext(next string) string {
	u, err := url.Parse(next)
	if next == "" || err != nil || u.Scheme != "" || u.Host != "" || !strings.HasPrefix(next, "/") ||
		strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") || strings.HasPrefix(next, "/login") {
		return "/"
	}
	return next
}

func (d *Desk) home(c *fiber.Ctx) error {
	data := fiber.Map{}
	if a, _ := web.ActorOf(c); abilityOf(a.Role, "read") {
		st, err := d.Estate.Stats(c.UserContext())
		if err != nil {
			return err
		}
		data["Stats"] = st
	}
	return render(c, fiber.StatusOK, "home", "home.title", data)
}
