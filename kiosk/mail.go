package kiosk

import (
	"fmt"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"onecard/fault"
	"onecard/mailroom"
	"onecard/web"
)

// registerMail mounts the kiosk's mail pickup: a pickup code, or the
// identified owner's own items; locker doors opened for them.
func (s *Screens) registerMail(g *web.Group) {
	g.Kiosk("GET", "/pickup", s.pickupPage)
	g.Kiosk("POST", "/pickup", s.pickup)
	g.Kiosk("GET", "/mail", s.mailPage)
	g.Kiosk("POST", "/mail/:id/open", s.openDoor)
	g.Kiosk("GET", "/mail/doors/:id", s.doorPage)
}

// pickupPage asks for the pickup code sent to the resident.
func (s *Screens) pickupPage(c *fiber.Ctx) error {
	return s.render(c, fiber.StatusOK, "pickup", nil)
}

// pickup checks a pickup code and lists what it opens.
func (s *Screens) pickup(c *fiber.Ctx) error {
	items, err := s.Mail.PickupByCode(c.UserContext(), s.kiosk(c).Code, c.FormValue("code"))
	if err != nil {
		if web.Status(err) < 500 {
			return s.render(c, web.Status(err), "pickup", fiber.Map{"Error": web.Detail(c, err).Message})
		}
		return err
	}
	return s.render(c, fiber.StatusOK, "mail", fiber.Map{"Items": items, "ByCode": true})
}

// mailPage lists the identified owner's unit's waiting items.
func (s *Screens) mailPage(c *fiber.Ctx) error {
	se := s.session(c)
	if se == nil {
		return c.Redirect("/kiosk/pickup", fiber.StatusSeeOther)
	}
	items, err := s.Mail.Waiting(c.UserContext(), se.Unit)
	if err != nil {
		return err
	}
	return s.render(c, fiber.StatusOK, "mail", fiber.Map{"Items": items, "Session": true, "Unit": se.Unit})
}

// openDoor opens the locker door of an item: the identified owner's own,
// or one whose code was entered here moments ago.
func (s *Screens) openDoor(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fault.NotFound("item_not_found")
	}
	k := s.kiosk(c)
	var cmd mailroom.Command
	if se := s.session(c); se != nil {
		cmd, err = s.Mail.OpenForOwner(c.UserContext(), id, k.Code, se.Unit)
	} else {
		cmd, err = s.Mail.OpenForPickup(c.UserContext(), id, k.Code)
	}
	if err != nil {
		if web.Status(err) < 500 {
			return s.render(c, web.Status(err), "pickup", fiber.Map{"Error": web.Detail(c, err).Message, "Session": s.session(c) != nil})
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/kiosk/mail/doors/%d", cmd.ID), fiber.StatusSeeOther)
}

// doorPage follows a door opened for this kiosk until the item is taken
// and the door closed (or it failed: what to do).
func (s *Screens) doorPage(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fault.NotFound("command_not_found")
	}
	cmd, err := s.Mail.Command(c.UserContext(), id)
	if err != nil {
		return err
	}
	if cmd.Source != s.kiosk(c).Code || cmd.Purpose != "pickup" {
		return fault.NotFound("command_not_found")
	}
	data := fiber.Map{"Command": cmd, "Session": s.session(c) != nil}
	if cmd.State != "done" && cmd.State != "failed" {
		data["Reload"] = 1000
	}
	return s.render(c, fiber.StatusOK, "door", data)
}
