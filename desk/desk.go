// Package desk is the staff console: server-rendered screens for clerks,
// cashiers, supervisors, guards and web.Admins. Handlers parse the form, call a
// domain service and render; the rules live in the domain packages.
package desk

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/template/html/v2"

	"onecard/auth"
	"onecard/billing"
	"onecard/cards"
	"onecard/estate"
	"onecard/fault"
	"onecard/fleet"
	"onecard/kiosk"
	"onecard/mailroom"
	"onecard/passes"
	"onecard/printing"
	"onecard/terminal"
	"onecard/web"
)

//go:embed views
var viewsFS embed.FS

//go:embed static
var staticFS embed.FS

var abilities = map[string][]auth.Role{"read": web.DirectoryReaders, "write": web.DirectoryWriters, "manage": web.Managers, "admin": web.Admins,
	"cash": web.Cashiers, "gate": web.Guards, "passes": web.PassReaders, "mail": web.DirectoryWriters}

// Desk holds the services the screens call.
type Desk struct {
	Auth   *auth.Service
	Estate *estate.Service
	Guard  *web.Guard
	// Encoder is the desk's card encoder; nil when none is configured.
	Encoder *cards.Station
	// Fleet is the reader fleet; nil when not running.
	Fleet *fleet.Service
	// Stopping is closed when the server shuts down, ending live streams.
	Stopping <-chan struct{}
	// Billing is the books; Printer and Terminal the desk's devices (nil
	// when none is configured).
	Billing *billing.Service
	Cards   *cards.Register
	// Demo, in the demo only, stands in for touching the hardware.
	Demo Demo
	// Passes are the move-out gate passes (nil: none).
	Passes *passes.Service
	// Mail is the mail room (nil: none); Scans, when a desk scanner is
	// connected, subscribes to the codes it reads (stop ends it).
	Mail  *mailroom.Service
	Scans func() (codes <-chan string, stop func())
	// Kiosks are the lobby kiosks (nil: none).
	Kiosks   *kiosk.Service
	Printer  *printing.Printer
	Terminal *terminal.Terminal
	// Printers and Terminals are the kiosks' devices by name.
	Printers  map[string]*printing.Printer
	Terminals map[string]*terminal.Terminal
	loc       *time.Location
}

// assetHash is a content hash of the static files, so that assets can be
// cached forever and a new release is fetched at once.
var assetHash = func() string {
	h := sha256.New()
	_ = fs.WalkDir(staticFS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := staticFS.ReadFile(p)
		h.Write([]byte(p))
		h.Write(b)
		return nil
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}()

// Views returns the template engine for the app, with the helpers the
// templates use. loc is the site's time zone for displayed times; site is
// its name for the header.
func Views(loc *time.Location, site string) fiber.Views {
	sub, err := fs.Sub(viewsFS, "views")
	if err != nil {
		panic(err)
	}
	e := html.NewFileSystem(http.FS(sub), ".html")
	e.AddFuncMap(template.FuncMap{
		"t":         func(lang, key string) string { return web.T(lang, key, nil) },
		"asset":     func(name string) string { return "/static/" + assetHash + "/" + name },
		"hasPrefix": strings.HasPrefix,
		"can": func(r auth.Role, ability string) bool {
			return slices.Contains(abilities[ability], r)
		},
		"localtime": func(t time.Time) string { return t.In(loc).Format("2006-01-02 15:04:05") },
		"site":      func() string { return site },
		"yuan":      billing.Yuan,
		"method":    billing.MethodName,
		"inc":       func(i int) int { return i + 1 },
		"deref": func(p *string) string {
			if p == nil {
				return ""
			}
			return *p
		},
	})
	return e
}

// Register mounts the desk screens on app.
func (d *Desk) Register(app *fiber.App, loc *time.Location) {
	d.loc = loc
	g := d.Guard.Screens(app, "")
	g.Public("GET", "/static/:hash/*", d.static)
	g.Public("GET", "/login", d.loginPage)
	g.Public("POST", "/login", d.login)
	g.Public("GET", "/lang/:lang", d.setLang)
	g.Post("/logout", web.Staff, d.logout)
	g.Get("/", web.Staff, d.home)

	g.Get("/units", web.DirectoryReaders, d.units)
	g.Get("/units/new", web.DirectoryWriters, d.newUnit)
	g.Post("/units/new", web.DirectoryWriters, d.createUnit)
	g.Get("/units/:code", web.DirectoryReaders, d.unit)
	g.Get("/units/:code/edit", web.DirectoryWriters, d.editUnit)
	g.Post("/units/:code/edit", web.DirectoryWriters, d.updateUnit)
	g.Get("/units/:code/move-in", web.DirectoryWriters, d.moveInPage)
	g.Post("/units/:code/move-in", web.DirectoryWriters, d.moveIn)
	g.Get("/occupancies/:id/move-out", web.DirectoryWriters, d.moveOutPage)
	g.Post("/occupancies/:id/move-out", web.DirectoryWriters, d.moveOut)
	g.Get("/people/:id/edit", web.DirectoryWriters, d.editPerson)
	g.Post("/people/:id/edit", web.DirectoryWriters, d.updatePerson)

	g.Get("/encoder", web.DirectoryWriters, d.encoder)
	if d.Demo != nil {
		g.Post("/demo/place", web.DirectoryWriters, d.demoPlace)
		g.Post("/demo/tap", web.Staff, d.demoTap)
		g.Post("/demo/scan", web.DirectoryWriters, d.demoScan)
		g.Post("/demo/locker/close", web.DirectoryWriters, d.demoCloseDoor)
	}
	g.Post("/units/:code/cards", web.DirectoryWriters, d.applyCard)
	if d.Kiosks != nil {
		g.Get("/kiosks", web.Managers, d.kiosksPage)
		g.Post("/kiosks", web.Managers, d.registerKiosk)
		g.Post("/kiosks/:code/disable", web.Managers, d.disableKiosk)
		g.Post("/kiosks/:code/enable", web.Managers, d.enableKiosk)
		g.Post("/units/:code/pin", web.DirectoryWriters, d.setPIN)
	}
	g.Get("/cards", web.DirectoryReaders, d.cardsPage)
	g.Post("/cards/other", web.DirectoryWriters, d.applyOther)
	g.Post("/cards/policy", web.Managers, d.savePolicy)
	g.Post("/cards/groups", web.Managers, d.saveGroup)
	g.Get("/cards/:id", web.DirectoryReaders, d.cardPage)
	g.Post("/cards/:id/:action", web.DirectoryWriters, d.cardAction)

	g.Get("/cashier", web.Cashiers, d.cashier)
	g.Get("/cashier/day", web.Cashiers, d.dayPage)
	g.Get("/cashier/day/report", web.Managers, d.dayReport)
	g.Post("/cashier/day/close", web.Cashiers, d.closeDay)
	g.Get("/cashier/:code", web.Cashiers, d.account)
	g.Post("/cashier/:code/pay", web.Cashiers, d.pay)
	g.Get("/payments/:id", web.Cashiers, d.paymentPage)
	g.Post("/payments/:id/check", web.Cashiers, d.checkPayment)
	g.Get("/receipts/:id", web.Cashiers, d.receiptPage)
	g.Post("/receipts/:id/reprint", web.Cashiers, d.reprint)
	g.Post("/receipts/:id/void", web.Cashiers, d.void)
	g.Post("/receipts/:id/refund", web.Cashiers, d.refund)
	g.Get("/print-jobs", web.Cashiers, d.printJobs)
	g.Post("/print-jobs/:id/retry", web.Cashiers, d.retryPrint)
	g.Get("/arrears", web.Cashiers, d.arrears)
	g.Get("/arrears/:code/notice", web.Cashiers, d.notice)
	g.Get("/fees", web.Managers, d.fees)
	g.Post("/fees", web.Managers, d.saveFee)
	g.Post("/fees/generate", web.Managers, d.generate)
	g.Post("/fees/settings", web.Managers, d.saveSettings)

	g.Get("/import", web.Managers, d.importPage)
	g.Post("/import", web.Managers, d.importRoll)
	g.Get("/export", web.Managers, d.export)
	g.Get("/audit", web.Managers, d.audit)
	g.Get("/devices", web.Managers, d.devices)
	g.Post("/devices", web.Managers, d.addDevice)
	g.Get("/devices/events", web.Managers, d.events)
	g.Get("/devices/events/stream", web.Managers, d.eventStream)
	g.Post("/devices/:id/command", web.Managers, d.deviceCommand)
	g.Post("/devices/:id/resync", web.Managers, d.startResync)
	g.Get("/devices/:id/resync", web.Managers, d.resyncPage)
	g.Post("/devices/:id/disable", web.Managers, d.disableDevice)
	g.Post("/devices/:id/enable", web.Managers, d.enableDevice)

	if d.Passes != nil {
		d.registerPasses(g)
	}
	if d.Mail != nil {
		d.registerMail(g)
	}

	g.Get("/staff", web.Admins, d.staff)
	g.Post("/staff", web.Admins, d.addStaff)
	g.Post("/staff/:username/password", web.Admins, d.resetPassword)
	g.Post("/staff/:username/disable", web.Admins, d.disableStaff)
	g.Post("/staff/:username/enable", web.Admins, d.enableStaff)
	g.Get("/tokens", web.Admins, d.tokens)
	g.Post("/tokens", web.Admins, d.createToken)
	g.Post("/tokens/:id/revoke", web.Admins, d.revokeToken)
}

func (d *Desk) encoder(c *fiber.Ctx) error {
	data := fiber.Map{"Configured": d.Encoder != nil, "Refresh": 2}
	if d.Encoder != nil {
		data["Status"] = d.Encoder.Status()
	}
	d.demoData(c, data)
	return render(c, fiber.StatusOK, "encoder", "encoder.title", data)
}

func (d *Desk) devices(c *fiber.Ctx) error {
	return d.renderDevices(c, fiber.StatusOK, fiber.Map{"Refresh": 5})
}

func (d *Desk) renderDevices(c *fiber.Ctx, status int, data fiber.Map) error {
	data["Configured"] = d.Fleet != nil
	data["Commands"] = []string{"open"}
	data["Kinds"] = fleet.Kinds
	if d.Fleet != nil {
		list, err := d.Fleet.Devices(c.UserContext())
		if err != nil {
			return err
		}
		data["Devices"] = list
	}
	return render(c, status, "devices", "devices.title", data)
}

func (d *Desk) addDevice(c *fiber.Ctx) error {
	if d.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	form := map[string]string{"id": c.FormValue("id"), "name": c.FormValue("name"), "zones": c.FormValue("zones")}
	var zones []string
	for _, z := range strings.Split(form["zones"], ",") {
		if z = strings.TrimSpace(z); z != "" {
			zones = append(zones, z)
		}
	}
	dev, secret, err := d.Fleet.AddDevice(c.UserContext(), fleet.NewDevice{Code: strings.TrimSpace(form["id"]), Kind: c.FormValue("kind"), Name: form["name"], Zones: zones})
	if err != nil {
		if !userError(err) {
			return err
		}
		return d.renderDevices(c, web.Status(err), fiber.Map{"Error": message(c, err), "Form": form})
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return d.renderDevices(c, fiber.StatusOK, fiber.Map{"NewDevice": dev, "Secret": secret})
}

func (d *Desk) disableDevice(c *fiber.Ctx) error { return d.setDeviceDisabled(c, true) }
func (d *Desk) enableDevice(c *fiber.Ctx) error  { return d.setDeviceDisabled(c, false) }

func (d *Desk) setDeviceDisabled(c *fiber.Ctx, disabled bool) error {
	if d.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	if err := d.Fleet.SetDisabled(c.UserContext(), c.Params("id"), disabled); err != nil {
		return err
	}
	key := "flash.device_enabled"
	if disabled {
		key = "flash.device_disabled"
	}
	return d.renderDevices(c, fiber.StatusOK, fiber.Map{"Flash": web.T(web.Lang(c), key, nil)})
}

func (d *Desk) startResync(c *fiber.Ctx) error {
	if d.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	if err := d.Fleet.StartResync(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	return c.Redirect("/devices/"+c.Params("id")+"/resync", fiber.StatusSeeOther)
}

func (d *Desk) resyncPage(c *fiber.Ctx) error {
	if d.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	r, ok := d.Fleet.ResyncProgress(c.Params("id"))
	if !ok {
		return c.Redirect("/devices", fiber.StatusSeeOther)
	}
	data := fiber.Map{"R": r}
	if !r.Done() {
		data["Refresh"] = 1
	}
	return render(c, fiber.StatusOK, "resync", "resync.title", data)
}

func (d *Desk) deviceCommand(c *fiber.Ctx) error {
	if d.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	code, cmd := c.Params("id"), c.FormValue("cmd")
	if _, err := d.Fleet.SendCommand(c.UserContext(), code, cmd); err != nil {
		if !userError(err) {
			return err
		}
		return d.renderDevices(c, web.Status(err), fiber.Map{"Error": message(c, err)})
	}
	lang := web.Lang(c)
	return d.renderDevices(c, fiber.StatusOK, fiber.Map{"Flash": web.T(lang, "flash.command_sent",
		map[string]any{"cmd": web.T(lang, "devices."+cmd, nil), "device": code})})
}

func (d *Desk) static(c *fiber.Ctx) error {
	name := path.Clean("/" + c.Params("*"))
	b, err := staticFS.ReadFile("static" + name)
	if err != nil {
		return fiber.ErrNotFound
	}
	if c.Params("hash") == assetHash {
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
	} else {
		c.Set(fiber.HeaderCacheControl, "no-cache")
	}
	c.Type(strings.TrimPrefix(path.Ext(name), "."))
	return c.Send(b)
}

// message translates err for a flash on the page.
func message(c *fiber.Ctx, err error) string { return web.Detail(c, err).Message }

// render shows a page, or the error page if err is not a user error.
func render(c *fiber.Ctx, status int, name, titleKey string, data fiber.Map) error {
	return c.Status(status).Render(name, web.Page(c, titleKey, data))
}

// userError reports whether err is one to show on the form (not a crash).
func userError(err error) bool { return web.Status(err) < 500 }
