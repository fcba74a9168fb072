package desk

import (
	"strings"

	"github.com/gofiber/fiber/v2"

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
}

func (d *Desk) demoPlace(c *fiber.Ctx) error {
	uid, err := d.Demo.Place(strings.TrimSpace(c.FormValue("uid")))
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
	granted, reason, err := d.Demo.Tap(c.FormValue("reader"), c.FormValue("uid"))
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
	data["Demo"] = fiber.Map{"Cards": d.Demo.Cards(), "Readers": d.Demo.Readers(), "Tap": tap}
}
