package desk

import (
	"maps"
	"slices"

	"github.com/gofiber/fiber/v2"

	"onecard/fault"
	"onecard/kiosk"
	"onecard/printing"
	"onecard/terminal"
	"onecard/web"
)

// kioskRow is a kiosk with its devices' states.
type kioskRow struct {
	kiosk.Kiosk
	Printer, Terminal string
}

// printer is the named kiosk printer, or the desk's for "".
func (d *Desk) printer(name string) *printing.Printer {
	if name == "" {
		return d.Printer
	}
	return d.Printers[name]
}

// terminal is the named kiosk terminal, or the desk's for "".
func (d *Desk) terminal(name string) *terminal.Terminal {
	if name == "" {
		return d.Terminal
	}
	return d.Terminals[name]
}

func (d *Desk) kiosksPage(c *fiber.Ctx) error { return d.renderKiosks(c, fiber.StatusOK, nil, nil) }

func (d *Desk) renderKiosks(c *fiber.Ctx, status int, formErr error, enrol fiber.Map) error {
	list, err := d.Kiosks.Kiosks(c.UserContext())
	if err != nil {
		return err
	}
	rows := make([]kioskRow, len(list))
	for i, k := range list {
		rows[i] = kioskRow{Kiosk: k, Printer: d.printerState(c.UserContext(), d.printer(k.Printer)), Terminal: d.terminalState(d.terminal(k.Terminal))}
	}
	data := fiber.Map{"Kiosks": rows, "Enrol": enrol, "Printers": slices.Sorted(maps.Keys(d.Printers)), "Terminals": slices.Sorted(maps.Keys(d.Terminals))}
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "kiosks", "kiosks.title", data)
}

// registerKiosk registers a kiosk (or renews its enrolment code) and shows
// the enrolment link once.
func (d *Desk) registerKiosk(c *fiber.Ctx) error {
	in := kiosk.Kiosk{Code: c.FormValue("code"), Name: c.FormValue("name"), Location: c.FormValue("location"),
		Reader: c.FormValue("reader"), Printer: c.FormValue("printer"), Terminal: c.FormValue("terminal")}
	if in.Printer != "" && d.Printers[in.Printer] == nil {
		return d.renderKiosks(c, fiber.StatusUnprocessableEntity, fault.Invalid("printer", "kiosk_printer_unknown", "name", in.Printer), nil)
	}
	if in.Terminal != "" && d.Terminals[in.Terminal] == nil {
		return d.renderKiosks(c, fiber.StatusUnprocessableEntity, fault.Invalid("terminal", "kiosk_terminal_unknown", "name", in.Terminal), nil)
	}
	k, code, err := d.Kiosks.Register(c.UserContext(), in)
	if err != nil {
		if userError(err) {
			return d.renderKiosks(c, web.Status(err), err, nil)
		}
		return err
	}
	return d.renderKiosks(c, fiber.StatusOK, nil, fiber.Map{"Kiosk": k, "Code": code, "URL": c.BaseURL() + "/kiosk/enrol?code=" + code})
}

func (d *Desk) disableKiosk(c *fiber.Ctx) error { return d.kioskState(c, true) }
func (d *Desk) enableKiosk(c *fiber.Ctx) error  { return d.kioskState(c, false) }

func (d *Desk) kioskState(c *fiber.Ctx, disabled bool) error {
	if err := d.Kiosks.SetDisabled(c.UserContext(), c.Params("code"), disabled); err != nil {
		return err
	}
	return c.Redirect("/kiosks", fiber.StatusSeeOther)
}

// setPIN sets a unit's kiosk PIN, with the owner at the desk.
func (d *Desk) setPIN(c *fiber.Ctx) error {
	err := d.Kiosks.SetPIN(c.UserContext(), c.Params("code"), c.FormValue("pin"))
	if err == nil {
		return c.Redirect("/units/"+c.Params("code")+"?done=pin_set#pin", fiber.StatusSeeOther)
	}
	if !userError(err) {
		return err
	}
	u, uerr := d.Estate.Unit(c.UserContext(), c.Params("code"))
	if uerr != nil {
		return uerr
	}
	data := fiber.Map{"Unit": u, "Today": d.Estate.Today(), "PINError": message(c, err)}
	if err := d.unitCards(c, u.Code, data); err != nil {
		return err
	}
	return render(c, web.Status(err), "unit", "unit.title", data)
}

// unitPIN adds the unit's PIN state to the unit page.
func (d *Desk) unitPIN(c *fiber.Ctx, code string, data fiber.Map) error {
	if d.Kiosks == nil {
		return nil
	}
	st, err := d.Kiosks.PIN(c.UserContext(), code)
	if err != nil {
		return err
	}
	data["PIN"] = st
	return nil
}
