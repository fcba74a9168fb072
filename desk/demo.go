package desk

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"onecard/fault"
	"onecard/web"
)

// Demo is what the demo lets a visitor do with its simulated hardware, in
// place of touching real cards: put a blank card (or a card given back
// before) on the desk encoder, take it off, and hold a card to a
// simulated reader.
type Demo interface {
	// Cards are the UIDs of the cards the demo has (on the encoder or put
	// aside).
	Cards() []string
	// Place puts the card with uid on the encoder (a new blank card if
	// uid is empty), taking off what lay there.
	Place(uid string) (string, error)
	// Readers are the simulated readers: id and name.
	Readers() [][2]string
	// Tap holds card uid to reader id and says what the reader decided.
	Tap(reader, uid string) (granted bool, reason string, err error)
	// GateTerminals are the simulated gate terminals: id and name.
	GateTerminals() [][2]string
	// ScanPass scans a pass's code at a gate terminal and returns what
	// its screen shows: ok, or the reason; offline when the terminal
	// decided alone.
	ScanPass(terminal, code string) (ok bool, reason string, offline bool, err error)
	// ReleasePass confirms the release on the terminal (mover's ID digits).
	ReleasePass(terminal, code, mover string) error
	// OpenDoors are the numbers of the locker doors standing open;
	// CloseDoor pushes one shut.
	OpenDoors() []int
	CloseDoor(n int) error
	// HasScanner reports whether the desk's barcode scanner is simulated;
	// Scan has it read a code.
	HasScanner() bool
	Scan(code string) error
}

// demoScan has the simulated desk scanner read a code: it reaches the
// mail room's pages the way a real scan does, through the serial port.
func (d *Desk) demoScan(c *fiber.Ctx) error {
	code := strings.TrimSpace(demoValue(c, "code"))
	if code == "" || len(code) > 64 {
		return fault.Invalid("code", "demo_code_invalid")
	}
	if err := d.Demo.Scan(code); err != nil {
		return err
	}
	if c.Get("X-Demo-Fetch") == "1" { // the batch form stays as it is
		return c.SendStatus(fiber.StatusNoContent)
	}
	return d.demoBack(c, safeBack(c.FormValue("back"), "/mail/new"), web.T(web.Lang(c), "demo.scanned", nil)+": "+code)
}

// demoCloseDoor pushes a simulated locker door shut.
func (d *Desk) demoCloseDoor(c *fiber.Ctx) error {
	n, err := strconv.Atoi(c.FormValue("door"))
	if err != nil {
		return fault.Invalid("door", "demo_door_invalid")
	}
	if err := d.Demo.CloseDoor(n); err != nil {
		return fault.Invalid("door", "demo_door_invalid")
	}
	return d.demoBack(c, safeBack(c.FormValue("back"), "/mail/lockers"), web.T(web.Lang(c), "demo.door_closed", nil))
}

// demoValue is a form value copied out of the request's buffer, which
// is reused once the request is answered: the simulated hardware keeps
// what it is given (a scanner's queue, a reader's events).
func demoValue(c *fiber.Ctx, name string) string { return strings.Clone(c.FormValue(name)) }

// safeBack is back if it is a path on this site, else def.
func safeBack(back, def string) string {
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
		return def
	}
	return back
}

// demoGateScan scans the pass at a simulated gate terminal.
func (d *Desk) demoGateScan(c *fiber.Ctx) error {
	p, err := d.passByParam(c)
	if err != nil {
		return err
	}
	ok, reason, offline, err := d.Demo.ScanPass(demoValue(c, "terminal"), p.Code)
	if err != nil {
		return err
	}
	lang := web.Lang(c)
	msg := web.T(lang, "gate.ok", nil)
	if !ok {
		msg = web.T(lang, "gate.refused", nil) + ": " + web.T(lang, "verdict."+reason, nil)
	}
	if offline {
		msg += " (" + web.T(lang, "demo.offline_check", nil) + ")"
	}
	return d.demoBack(c, fmt.Sprintf("/passes/%d", p.ID), c.FormValue("terminal")+": "+msg)
}

// demoGateRelease confirms the release at a simulated gate terminal.
func (d *Desk) demoGateRelease(c *fiber.Ctx) error {
	p, err := d.passByParam(c)
	if err != nil {
		return err
	}
	if err := d.Demo.ReleasePass(demoValue(c, "terminal"), p.Code, demoValue(c, "mover")); err != nil {
		return err
	}
	return d.demoBack(c, fmt.Sprintf("/passes/%d", p.ID), c.FormValue("terminal")+": "+web.T(web.Lang(c), "demo.released_at_terminal", nil))
}

// demoBack shows msg once on the page at back.
func (d *Desk) demoBack(c *fiber.Ctx, back, msg string) error {
	c.Cookie(&fiber.Cookie{Name: "demo_tap", Value: msg, Path: "/", MaxAge: 10, HTTPOnly: true, SameSite: "Lax"})
	return c.Redirect(back, fiber.StatusSeeOther)
}

func (d *Desk) demoPlace(c *fiber.Ctx) error {
	uid, err := d.Demo.Place(strings.TrimSpace(demoValue(c, "uid")))
	if err != nil {
		return err
	}
	back := c.FormValue("back")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
		back = "/encoder"
	}
	return c.Redirect(back+"?placed="+uid, fiber.StatusSeeOther)
}

func (d *Desk) demoTap(c *fiber.Ctx) error {
	granted, reason, err := d.Demo.Tap(demoValue(c, "reader"), demoValue(c, "uid"))
	if err != nil {
		return err
	}
	lang := web.Lang(c)
	msg := web.T(lang, "demo.granted", nil)
	if !granted {
		msg = web.T(lang, "demo.denied", nil) + ": " + web.T(lang, "evreason."+reason, nil)
	}
	back := c.FormValue("back")
	if !strings.HasPrefix(back, "/") || strings.HasPrefix(back, "//") {
		back = "/"
	}
	c.Cookie(&fiber.Cookie{Name: "demo_tap", Value: c.FormValue("reader") + ": " + msg, Path: "/", MaxAge: 10, HTTPOnly: true, SameSite: "Lax"})
	return c.Redirect(back, fiber.StatusSeeOther)
}

// demoData adds the demo's controls to a page's data.
func (d *Desk) demoData(c *fiber.Ctx, data fiber.Map) {
	if d.Demo == nil {
		return
	}
	tap := c.Cookies("demo_tap")
	if tap != "" { // shown once
		c.Cookie(&fiber.Cookie{Name: "demo_tap", Value: "", Path: "/", MaxAge: -1, HTTPOnly: true, SameSite: "Lax"})
	}
	data["Demo"] = fiber.Map{"Cards": d.Demo.Cards(), "Readers": d.Demo.Readers(), "Tap": tap, "Terminals": d.Demo.GateTerminals(),
		"OpenDoors": d.Demo.OpenDoors(), "Scanner": d.Demo.HasScanner(), "Code": demoTracking(), "Back": c.OriginalURL()}
}

// demoTracking is a made-up courier tracking number for the demo scanner.
func demoTracking() string {
	return fmt.Sprintf("SF%013d", rand.Int64N(1e13))
}
