// Package api is the JSON API under /api/v1 for the desk, guards and
// integrations. Handlers decode strictly, call a domain service and encode;
// errors are {"error": {"code", "message", …}} with a stable code.
package api

import (
	"bytes"
	_ "embed"
	"errors"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"onecard/auth"
	"onecard/billing"
	"onecard/cards"
	"onecard/estate"
	"onecard/fault"
	"onecard/fleet"
	"onecard/web"
)

// OpenAPI is the OpenAPI 3 document of this API.
//
//go:embed openapi.json
var OpenAPI []byte

// API holds the services the handlers call.
type API struct {
	Auth   *auth.Service
	Estate *estate.Service
	Guard  *web.Guard
	// Encoder is the desk's card encoder; nil when none is configured.
	Encoder *cards.Station
	// Fleet is the reader fleet; nil when not running.
	Fleet *fleet.Service
	// Billing is the books.
	Billing *billing.Service
	// Cards is the one-card register; nil when not running.
	Cards *cards.Register
}

// Register mounts /api/v1 on app.
func (a *API) Register(app *fiber.App) {
	g := a.Guard.API(app, "/api/v1")
	g.Public("GET", "/openapi.json", func(c *fiber.Ctx) error {
		c.Type("json")
		return c.Send(OpenAPI)
	})
	g.Public("POST", "/login", a.login)
	g.Post("/logout", web.Staff, a.logout)
	g.Get("/me", web.Staff, a.me)

	g.Get("/units", web.DirectoryReaders, a.listUnits)
	g.Post("/units", web.DirectoryWriters, a.createUnit)
	g.Get("/units/:code", web.DirectoryReaders, a.getUnit)
	g.Put("/units/:code", web.DirectoryWriters, a.updateUnit)
	g.Post("/units/:code/occupancies", web.DirectoryWriters, a.moveIn)
	g.Post("/occupancies/:id/move-out", web.DirectoryWriters, a.moveOut)
	g.Get("/people/:id", web.DirectoryReaders, a.getPerson)
	g.Put("/people/:id", web.DirectoryWriters, a.updatePerson)
	g.Post("/roll/import", web.Managers, a.importRoll)
	g.Get("/roll/export", web.Managers, a.exportRoll)

	g.Get("/encoder", web.DirectoryWriters, a.encoder)
	g.Get("/devices", web.Managers, a.devices)
	g.Post("/devices", web.Managers, a.addDevice)
	g.Post("/devices/:id/commands", web.Managers, a.deviceCommand)
	g.Post("/devices/:id/disable", web.Managers, a.disableDevice)
	g.Post("/devices/:id/resync", web.Managers, a.startResync)
	g.Get("/devices/:id/resync", web.Managers, a.resyncProgress)
	g.Post("/devices/:id/enable", web.Managers, a.enableDevice)

	a.registerCards(g)
	a.registerBilling(g)

	g.Get("/audit", web.Managers, a.audit)
	g.Get("/staff", web.Admins, a.listStaff)
	g.Post("/staff", web.Admins, a.createStaff)
	g.Post("/staff/:username/password", web.Admins, a.resetPassword)
	g.Get("/tokens", web.Admins, a.listTokens)
	g.Post("/tokens", web.Admins, a.createToken)
	g.Post("/tokens/:id/revoke", web.Admins, a.revokeToken)
}

func idParam(c *fiber.Ctx, name string) (int64, error) {
	id, err := strconv.ParseInt(c.Params(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, fault.Invalid(name, "id_invalid")
	}
	return id, nil
}

// list wraps a page of items with the total.
type list[T any] struct {
	Items []T `json:"items"`
	Total int `json:"total"`
}

func (a *API) login(c *fiber.Ctx) error {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	s, err := a.Auth.Login(c.UserContext(), in.Username, in.Password, c.IP(), c.Get(fiber.HeaderUserAgent))
	if err != nil {
		return err
	}
	a.Guard.SetSessionCookie(c, s)
	return c.JSON(fiber.Map{"username": s.Actor.Name, "role": s.Actor.Role, "csrf_token": s.Actor.CSRF, "expires_at": s.ExpiresAt})
}

func (a *API) logout(c *fiber.Ctx) error {
	if err := a.Auth.Logout(c.UserContext(), c.Cookies(web.SessionCookie)); err != nil {
		return err
	}
	a.Guard.ClearSessionCookie(c)
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) me(c *fiber.Ctx) error {
	act, _ := web.ActorOf(c)
	return c.JSON(fiber.Map{"kind": act.Kind, "name": act.Name, "role": act.Role, "site": a.Estate.Site()})
}

func (a *API) listUnits(c *fiber.Ctx) error {
	building, _ := strconv.Atoi(c.Query("building"))
	limit, _ := strconv.Atoi(c.Query("limit", "50"))
	offset, _ := strconv.Atoi(c.Query("offset", "0"))
	if limit < 1 || limit > 200 {
		return fault.Invalid("limit", "limit_invalid", "max", 200)
	}
	units, total, err := a.Estate.Search(c.UserContext(), estate.Query{Q: c.Query("q"), Building: building, Limit: limit, Offset: offset})
	if err != nil {
		return err
	}
	return c.JSON(list[estate.UnitSummary]{Items: units, Total: total})
}

func (a *API) createUnit(c *fiber.Ctx) error {
	var in estate.UnitInput
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	u, err := a.Estate.CreateUnit(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(u)
}

func (a *API) getUnit(c *fiber.Ctx) error {
	u, err := a.Estate.Unit(c.UserContext(), c.Params("code"))
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (a *API) updateUnit(c *fiber.Ctx) error {
	var in struct {
		Area         estate.Area `json:"area_m2"`
		HandoverDate string      `json:"handover_date"`
		Version      int         `json:"version"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	u, err := a.Estate.UpdateUnit(c.UserContext(), c.Params("code"),
		estate.UnitInput{Area: in.Area, HandoverDate: in.HandoverDate, Version: in.Version})
	if err != nil {
		return err
	}
	return c.JSON(u)
}

func (a *API) moveIn(c *fiber.Ctx) error {
	var in estate.MoveIn
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	o, err := a.Estate.MoveIn(c.UserContext(), c.Params("code"), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(o)
}

func (a *API) moveOut(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		MovedOutOn string `json:"moved_out_on"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	o, err := a.Estate.MoveOut(c.UserContext(), id, in.MovedOutOn)
	if err != nil {
		return err
	}
	return c.JSON(o)
}

func (a *API) getPerson(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	p, occ, err := a.Estate.Person(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(fiber.Map{"person": p, "occupancies": occ})
}

func (a *API) updatePerson(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in estate.PersonInput
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	p, err := a.Estate.UpdatePerson(c.UserContext(), id, in)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// importRoll takes the roll file as the request body: text/csv or the
// XLSX media type.
func (a *API) importRoll(c *fiber.Ctx) error {
	var format string
	switch ct := string(c.Request().Header.ContentType()); {
	case len(ct) >= 8 && ct[:8] == "text/csv":
		format = "csv"
	case ct == xlsxType:
		format = "xlsx"
	default:
		return fault.Invalid("body", "file_format")
	}
	rows, err := estate.ReadRoll(bytes.NewReader(c.Body()), format)
	if err != nil {
		return importError(c, err)
	}
	res, err := a.Estate.ImportRoll(c.UserContext(), rows)
	if err != nil {
		return importError(c, err)
	}
	return c.JSON(res)
}

const xlsxType = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

func importError(c *fiber.Ctx, err error) error {
	var ie *estate.ImportError
	if !errors.As(err, &ie) {
		return err
	}
	d := web.Detail(c, fault.Invalid("file", "import_rejected", "count", len(ie.Rows)))
	lang := web.Lang(c)
	type row struct {
		estate.RowError
		Message string `json:"message"`
	}
	rows := make([]row, len(ie.Rows))
	for i, r := range ie.Rows {
		rows[i] = row{RowError: r, Message: web.T(lang, "err."+r.Code, r.Args)}
	}
	d.Rows = rows
	return c.Status(fiber.StatusUnprocessableEntity).JSON(web.ErrorBody{Error: d})
}

func (a *API) exportRoll(c *fiber.Ctx) error {
	format := c.Query("format", "csv")
	if format != "csv" && format != "xlsx" {
		return fault.Invalid("format", "file_format")
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="roll.`+format+`"`)
	if format == "csv" {
		c.Type("csv", "utf-8")
	} else {
		c.Set(fiber.HeaderContentType, xlsxType)
	}
	return a.Estate.ExportRoll(c.UserContext(), c.Response().BodyWriter(), format)
}

func (a *API) encoder(c *fiber.Ctx) error {
	if a.Encoder == nil {
		return fault.NotFound("encoder_not_configured")
	}
	return c.JSON(a.Encoder.Status())
}

func (a *API) devices(c *fiber.Ctx) error {
	if a.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	devs, err := a.Fleet.Devices(c.UserContext())
	if err != nil {
		return err
	}
	if devs == nil {
		devs = []fleet.Device{}
	}
	return c.JSON(list[fleet.Device]{Items: devs, Total: len(devs)})
}

func (a *API) deviceCommand(c *fiber.Ctx) error {
	if a.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	var in struct {
		Cmd string `json:"cmd"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	cmd, err := a.Fleet.SendCommand(c.UserContext(), c.Params("id"), in.Cmd)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(cmd)
}

func (a *API) addDevice(c *fiber.Ctx) error {
	if a.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	var in fleet.NewDevice
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	d, secret, err := a.Fleet.AddDevice(c.UserContext(), in)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"device": d, "username": d.Code, "secret": secret})
}

func (a *API) disableDevice(c *fiber.Ctx) error { return a.setDeviceDisabled(c, true) }
func (a *API) enableDevice(c *fiber.Ctx) error  { return a.setDeviceDisabled(c, false) }

func (a *API) setDeviceDisabled(c *fiber.Ctx, disabled bool) error {
	if a.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	if err := a.Fleet.SetDisabled(c.UserContext(), c.Params("id"), disabled); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) startResync(c *fiber.Ctx) error {
	if a.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	if err := a.Fleet.StartResync(c.UserContext(), c.Params("id")); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusAccepted)
}

func (a *API) resyncProgress(c *fiber.Ctx) error {
	if a.Fleet == nil {
		return fault.NotFound("fleet_not_running")
	}
	r, ok := a.Fleet.ResyncProgress(c.Params("id"))
	if !ok {
		return fault.NotFound("resync_not_found")
	}
	return c.JSON(fiber.Map{"resync": r, "done": r.Done()})
}
