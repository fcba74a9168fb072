package desk

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"onecard/fault"
	"onecard/mailroom"
	"onecard/web"
)

func (d *Desk) mailItemByParam(c *fiber.Ctx) (mailroom.Item, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return mailroom.Item{}, fault.NotFound("item_not_found")
	}
	return d.Mail.Item(c.UserContext(), id)
}

// mailItem is one item: where it is, its story, and what the desk can do
// with it (hand it over, move it, open its door, a new pickup code).
func (d *Desk) mailItem(c *fiber.Ctx) error { return d.renderMailItem(c, fiber.StatusOK, nil) }

func (d *Desk) renderMailItem(c *fiber.Ctx, status int, formErr error) error {
	ctx := c.UserContext()
	it, err := d.mailItemByParam(c)
	if err != nil {
		return err
	}
	events, err := d.Mail.Events(ctx, it.ID)
	if err != nil {
		return err
	}
	data := fiber.Map{"Item": it, "Events": events, "HasLocker": d.Mail.HasLocker(), "Sizes": mailroom.Sizes,
		"Form": fiber.Map{"collector_kind": c.FormValue("collector_kind", mailroom.CollectorRecipient), "collector_name": c.FormValue("collector_name"),
			"agent_id_last4": c.FormValue("agent_id_last4"), "signature": c.FormValue("signature"), "slot": c.FormValue("slot"),
			"reason": c.FormValue("reason"), "note": c.FormValue("note")},
		"Attention": attentionText(web.Lang(c), it)}
	if it.State == mailroom.StateWaiting {
		waiting, err := d.Mail.Waiting(ctx, it.Unit)
		if err != nil {
			return err
		}
		var others []mailroom.Item
		for _, o := range waiting {
			if o.ID != it.ID {
				others = append(others, o)
			}
		}
		data["Others"] = others
		if u, err := d.Estate.Unit(ctx, it.Unit); err == nil {
			var names []string
			for _, o := range u.Occupancies {
				if o.Current() {
					names = append(names, o.Name)
				}
			}
			data["Residents"] = names
		}
		if it.Door != nil {
			doors, err := d.Mail.Doors(ctx)
			if err != nil {
				return err
			}
			for _, dr := range doors {
				if dr.Number == *it.Door && dr.Command != nil {
					data["Command"] = dr.Command
				}
			}
		}
	}
	doneFlash(c, data)
	d.demoData(c, data)
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "mail_item", "mail.item", data)
}

// mailAction runs a change on the page's item and goes back to it, or
// shows the item with the reason it was refused.
func (d *Desk) mailAction(c *fiber.Ctx, done string, act func(it mailroom.Item) error) error {
	it, err := d.mailItemByParam(c)
	if err != nil {
		return err
	}
	if err := act(it); err != nil {
		if userError(err) {
			return d.renderMailItem(c, web.Status(err), err)
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/mail/items/%d?done=%s", it.ID, done), fiber.StatusSeeOther)
}

// signaturePNG decodes the pad's PNG data URL; empty when nothing was
// drawn.
func signaturePNG(s string) ([]byte, error) {
	if s = strings.TrimSpace(s); s == "" {
		return nil, nil
	}
	if len(s) > mailroom.MaxSignature*4/3+64 {
		return nil, fault.Invalid("signature", "signature_too_large", "max_kb", mailroom.MaxSignature>>10)
	}
	b64, ok := strings.CutPrefix(s, "data:image/png;base64,")
	if !ok {
		return nil, fault.Invalid("signature", "signature_not_png")
	}
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, fault.Invalid("signature", "signature_not_png")
	}
	return b, nil
}

// collectMail hands the item (and the unit's other items ticked) over at
// the desk: who took them, and the signature from the pad.
func (d *Desk) collectMail(c *fiber.Ctx) error {
	return d.mailAction(c, "collected", func(it mailroom.Item) error {
		sig, err := signaturePNG(c.FormValue("signature"))
		if err != nil {
			return err
		}
		ids := []int64{it.ID}
		for _, id := range formIDs(c, "item_ids") {
			if id != it.ID {
				ids = append(ids, id)
			}
		}
		_, err = d.Mail.Collect(c.UserContext(), mailroom.CollectInput{ItemIDs: ids, CollectorKind: c.FormValue("collector_kind"),
			CollectorName: c.FormValue("collector_name"), AgentIDLast4: c.FormValue("agent_id_last4"), SignaturePNG: sig})
		return err
	})
}

// mailSignature is the signature an item was collected with.
func (d *Desk) mailSignature(c *fiber.Ctx) error {
	it, err := d.mailItemByParam(c)
	if err != nil {
		return err
	}
	b, err := d.Mail.Signature(c.UserContext(), it.ID)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "private, no-store")
	c.Type("png")
	return c.Send(b)
}

func (d *Desk) shelveMail(c *fiber.Ctx) error {
	return d.mailAction(c, "shelved", func(it mailroom.Item) error {
		_, err := d.Mail.Shelve(c.UserContext(), it.ID, c.FormValue("slot"))
		return err
	})
}

// placeMail puts the item in a free locker door of the size chosen: the
// door opens for the clerk, and the page follows it.
func (d *Desk) placeMail(c *fiber.Ctx) error {
	return d.mailAction(c, "placed", func(it mailroom.Item) error {
		_, err := d.Mail.PlaceInLocker(c.UserContext(), it.ID, c.FormValue("size"))
		return err
	})
}

// openMailDoor opens the item's locker door again (to take it out for the
// desk, or to put it in properly).
func (d *Desk) openMailDoor(c *fiber.Ctx) error {
	return d.mailAction(c, "opened", func(it mailroom.Item) error {
		if it.Door == nil {
			return fault.Conflict("item", "item_not_in_locker")
		}
		_, err := d.Mail.OpenDoor(c.UserContext(), *it.Door, c.FormValue("reason"))
		return err
	})
}

func (d *Desk) reissueMailCode(c *fiber.Ctx) error {
	return d.mailAction(c, "code", func(it mailroom.Item) error {
		return d.Mail.ReissueCode(c.UserContext(), it.ID)
	})
}

// holdMail keeps the item for the consent hold period.
func (d *Desk) holdMail(c *fiber.Ctx) error {
	return d.mailAction(c, "held", func(it mailroom.Item) error {
		_, err := d.Mail.ConsentHold(c.UserContext(), it.ID, c.FormValue("note"))
		return err
	})
}
