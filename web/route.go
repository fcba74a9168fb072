package web

import (
	"context"
	"crypto/subtle"
	"errors"
	"net/url"
	"slices"
	"strings"

	"github.com/gofiber/fiber/v2"

	"onecard/auth"
	"onecard/fault"
)

// SessionCookie names the staff session cookie.
const SessionCookie = "onecard_session"

// Route is a registered route and who may call it.
type Route struct {
	Method string
	Path   string
	Roles  []auth.Role // empty with Public and Kiosk
	Public bool
	API    bool
	// Kiosk routes are for enrolled kiosks only (their device credential),
	// never for staff.
	Kiosk bool
}

// Registry records every route so tests can prove each one is guarded.
type Registry struct{ routes []Route }

// Routes returns the registered routes.
func (r *Registry) Routes() []Route { return slices.Clone(r.routes) }

// Guard authenticates callers for the routes of one app.
type Guard struct {
	Auth *auth.Service
	Reg  *Registry
	// SecureCookies sets the Secure flag (behind TLS).
	SecureCookies bool
	// Kiosk authenticates a kiosk's device credential (KioskCookie); nil:
	// no kiosk routes.
	Kiosk func(ctx context.Context, credential string) (auth.Actor, error)
}

// KioskCookie carries an enrolled kiosk's device credential.
const KioskCookie = "onecard_kiosk"

// Group registers routes under a prefix, each with the roles it allows.
type Group struct {
	router fiber.Router
	prefix string
	guard  *Guard
	api    bool
}

// API returns a group for JSON routes: failures are JSON, never redirects.
func (g *Guard) API(r fiber.Router, prefix string) *Group {
	return &Group{router: r.Group(prefix), prefix: prefix, guard: g, api: true}
}

// Screens returns a group for HTML routes: an anonymous caller is sent to
// the login page.
func (g *Guard) Screens(r fiber.Router, prefix string) *Group {
	return &Group{router: r.Group(prefix), prefix: prefix, guard: g}
}

// Who may do what; the desk and the API share these so a screen and its
// API route never disagree.
var (
	// Staff are all staff roles.
	Staff = []auth.Role{auth.Admin, auth.Supervisor, auth.Clerk, auth.Cashier, auth.Guard}
	// DirectoryReaders look up units and residents (cashiers take payments
	// by unit).
	DirectoryReaders = []auth.Role{auth.Admin, auth.Supervisor, auth.Clerk, auth.Cashier}
	// DirectoryWriters register units, move-ins and move-outs.
	DirectoryWriters = []auth.Role{auth.Admin, auth.Supervisor, auth.Clerk}
	// Managers import and export the roll and read the audit log.
	Managers = []auth.Role{auth.Admin, auth.Supervisor}
	// Cashiers take payments and close their day.
	Cashiers = []auth.Role{auth.Admin, auth.Supervisor, auth.Cashier}
	// Admins manage staff accounts and API tokens.
	Admins = []auth.Role{auth.Admin}
	// Guards check and release gate passes at the gate.
	Guards = []auth.Role{auth.Admin, auth.Supervisor, auth.Guard}
	// PassReaders look up gate passes (the desk that issues them, the
	// guards who check them).
	PassReaders = []auth.Role{auth.Admin, auth.Supervisor, auth.Clerk, auth.Guard}
)

// Handle registers a route that only the given roles may call.
func (g *Group) Handle(method, path string, roles []auth.Role, h fiber.Handler) {
	if len(roles) == 0 {
		panic("web: route " + method + " " + path + " declares no roles")
	}
	g.guard.Reg.routes = append(g.guard.Reg.routes, Route{Method: method, Path: g.prefix + path, Roles: roles, API: g.api})
	g.router.Add(method, path, g.guard.authenticate(g.api, roles), h)
}

// Kiosk registers a route only an enrolled, enabled kiosk may call: a
// browser without the kiosk's credential is sent to the enrolment page
// (GET) or refused; a disabled kiosk is refused at once.
func (g *Group) Kiosk(method, path string, h ...fiber.Handler) {
	g.guard.Reg.routes = append(g.guard.Reg.routes, Route{Method: method, Path: g.prefix + path, Kiosk: true})
	g.router.Add(method, path, append([]fiber.Handler{g.guard.kiosk()}, h...)...)
}

func (g *Guard) kiosk() fiber.Handler {
	return func(c *fiber.Ctx) error {
		cred := c.Cookies(KioskCookie)
		var a auth.Actor
		err := fault.ErrAuth
		if cred != "" && g.Kiosk != nil {
			a, err = g.Kiosk(c.UserContext(), cred)
		}
		if err != nil {
			if !errors.Is(err, fault.ErrAuth) {
				return err // a disabled kiosk: forbidden, said so
			}
			if c.Method() == fiber.MethodGet {
				return c.Redirect("/kiosk/enrol", fiber.StatusSeeOther)
			}
			return &fault.Error{Kind: fault.ErrAuth, Code: "kiosk_not_enrolled"}
		}
		setActor(c, a)
		if !safeMethod(c.Method()) && !validCSRF(c, a.CSRF) {
			return fault.Forbidden("csrf_invalid")
		}
		return c.Next()
	}
}

// Public registers a route anyone may call.
func (g *Group) Public(method, path string, h ...fiber.Handler) {
	g.guard.Reg.routes = append(g.guard.Reg.routes, Route{Method: method, Path: g.prefix + path, Public: true, API: g.api})
	g.router.Add(method, path, append([]fiber.Handler{g.guard.optional()}, h...)...)
}

// Get, Post, Put and Delete are Handle for one method.
func (g *Group) Get(path string, roles []auth.Role, h fiber.Handler) { g.Handle("GET", path, roles, h) }

// Post registers a POST route.
func (g *Group) Post(path string, roles []auth.Role, h fiber.Handler) {
	g.Handle("POST", path, roles, h)
}

// Put registers a PUT route.
func (g *Group) Put(path string, roles []auth.Role, h fiber.Handler) { g.Handle("PUT", path, roles, h) }

// actorFrom finds the caller: a bearer token, else a session cookie.
func (g *Guard) actorFrom(c *fiber.Ctx) (auth.Actor, bool, error) {
	if h := c.Get(fiber.HeaderAuthorization); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok {
			return auth.Actor{}, false, fault.ErrAuth
		}
		a, err := g.Auth.TokenActor(c.UserContext(), strings.TrimSpace(tok))
		return a, false, err
	}
	if v := c.Cookies(SessionCookie); v != "" {
		a, err := g.Auth.SessionActor(c.UserContext(), v)
		return a, true, err
	}
	return auth.Actor{}, false, fault.ErrAuth
}

func (g *Guard) authenticate(api bool, roles []auth.Role) fiber.Handler {
	return func(c *fiber.Ctx) error {
		a, viaCookie, err := g.actorFrom(c)
		if err != nil {
			if !errors.Is(err, fault.ErrAuth) {
				return err
			}
			if api {
				return &fault.Error{Kind: fault.ErrAuth, Code: "unauthenticated"}
			}
			if c.Method() == fiber.MethodGet {
				return c.Redirect("/login?next="+url.QueryEscape(c.OriginalURL()), fiber.StatusSeeOther)
			}
			return c.Redirect("/login", fiber.StatusSeeOther)
		}
		setActor(c, a)
		if !slices.Contains(roles, a.Role) {
			return fault.Forbidden("role_forbidden")
		}
		if viaCookie && !safeMethod(c.Method()) && !validCSRF(c, a.CSRF) {
			return fault.Forbidden("csrf_invalid")
		}
		return c.Next()
	}
}

// optional identifies a caller on a public route if it can, so that a
// public page can still greet a logged-in user.
func (g *Guard) optional() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if a, _, err := g.actorFrom(c); err == nil {
			setActor(c, a)
		}
		return c.Next()
	}
}

func setActor(c *fiber.Ctx, a auth.Actor) {
	c.Locals("actor", a)
	c.SetUserContext(auth.WithActor(c.UserContext(), a))
}

// ActorOf returns the authenticated caller, if any.
func ActorOf(c *fiber.Ctx) (auth.Actor, bool) {
	a, ok := c.Locals("actor").(auth.Actor)
	return a, ok
}

func safeMethod(m string) bool {
	return m == fiber.MethodGet || m == fiber.MethodHead || m == fiber.MethodOptions
}

// CSRFField names the hidden form field; CSRFHeader the header for scripts.
const (
	CSRFField  = "_csrf"
	CSRFHeader = "X-CSRF-Token"
)

func validCSRF(c *fiber.Ctx, want string) bool {
	got := c.Get(CSRFHeader)
	if got == "" {
		got = c.FormValue(CSRFField)
	}
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// SetSessionCookie sends the session cookie: HTTP-only, SameSite=Lax (a
// link from elsewhere still lands logged in; a cross-site POST does not
// carry it), Secure behind TLS.
func (g *Guard) SetSessionCookie(c *fiber.Ctx, s auth.Session) {
	c.Cookie(&fiber.Cookie{
		Name: SessionCookie, Value: s.Token, Path: "/", Expires: s.ExpiresAt,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: g.SecureCookies,
	})
}

// ClearSessionCookie removes it.
func (g *Guard) ClearSessionCookie(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1,
		HTTPOnly: true, SameSite: fiber.CookieSameSiteLaxMode, Secure: g.SecureCookies})
}
