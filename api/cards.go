package api

import (
	"bytes"
	"context"

	"github.com/gofiber/fiber/v2"

	"onecard/cards"
	"onecard/fault"
	"onecard/web"
)

// registerCards mounts the one-card register (SOP §1): a unit's cards,
// applications, issuing on the desk encoder, loss, unblocking,
// replacement, cancellation and return, each card's register entries, and
// the site's card policy.
func (a *API) registerCards(g *web.Group) {
	g.Get("/units/:code/cards", web.DirectoryReaders, a.unitCards)
	g.Post("/units/:code/cards", web.DirectoryWriters, a.applyCard)
	g.Get("/cards/:id", web.DirectoryReaders, a.getCard)
	g.Get("/cards/:id/events", web.DirectoryReaders, a.cardEvents)
	g.Post("/cards/:id/issue", web.DirectoryWriters, a.issueCard)
	g.Post("/cards/:id/lost", web.DirectoryWriters, a.cardStep((*cards.Register).ReportLost))
	g.Post("/cards/:id/unblock", web.DirectoryWriters, a.cardStep((*cards.Register).Unblock))
	g.Post("/cards/:id/cancel", web.DirectoryWriters, a.cardStep((*cards.Register).Cancel))
	g.Post("/cards/:id/return", web.DirectoryWriters, a.cardStep((*cards.Register).Return))
	g.Post("/cards/:id/replace", web.DirectoryWriters, a.replaceCard)
	g.Get("/card-policy", web.DirectoryReaders, a.cardPolicy)
	g.Put("/card-policy", web.Managers, a.saveCardPolicy)
	g.Get("/access-groups", web.DirectoryReaders, a.accessGroups)
	g.Put("/access-groups/:code", web.Managers, a.saveAccessGroup)
}

// register returns the card register, or cards_not_configured when this
// app runs without one.
func (a *API) register() (*cards.Register, error) {
	if a.Cards == nil {
		return nil, fault.NotFound("cards_not_configured")
	}
	return a.Cards, nil
}

// decodeOptional decodes a JSON body strictly, or leaves v as it is when
// the body is empty (the body of a card step only carries a note).
func decodeOptional(c *fiber.Ctx, v any) error {
	if len(bytes.TrimSpace(c.Body())) == 0 {
		return nil
	}
	return web.DecodeJSON(c, v)
}

// unitCards lists a unit's cards, those in use first. An unknown unit is
// unit_not_found, not an empty list.
func (a *API) unitCards(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	u, err := a.Estate.Unit(c.UserContext(), c.Params("code"))
	if err != nil {
		return err
	}
	rows, err := reg.UnitCards(c.UserContext(), u.Code)
	if err != nil {
		return err
	}
	return c.JSON(list[cards.Record]{Items: rows, Total: len(rows)})
}

// applyCard records an application for a card for a resident of the unit
// (201, state applied). The unit comes from the path, never the body.
func (a *API) applyCard(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	var in struct {
		PersonID int64    `json:"person_id"`
		Carpark  bool     `json:"carpark"`
		Groups   []string `json:"groups"`
		Note     string   `json:"note"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	if in.PersonID <= 0 {
		return fault.Invalid("person_id", "id_invalid")
	}
	card, err := reg.Apply(c.UserContext(), cards.ApplyInput{Unit: c.Params("code"), PersonID: in.PersonID, Carpark: in.Carpark,
		Groups: in.Groups, Note: in.Note})
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(card)
}

func (a *API) getCard(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	card, err := reg.Card(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(card)
}

// cardEvents lists a card's register entries, oldest first; the card is
// looked up first so that an unknown card (or another site's) is
// card_not_found.
func (a *API) cardEvents(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if _, err := reg.Card(c.UserContext(), id); err != nil {
		return err
	}
	events, err := reg.Events(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(list[cards.Event]{Items: events, Total: len(events)})
}

// issueCard encodes an applied card on the blank card lying on the desk
// encoder. It takes no body.
func (a *API) issueCard(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	card, err := reg.Issue(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(card)
}

// noteInput is the body of a card step; it and the note are optional.
type noteInput struct {
	Note string `json:"note"`
}

// cardStep answers a step that moves a card to another state with a note
// (lost, unblock, cancel, return) and returns the card as it now is.
func (a *API) cardStep(step func(*cards.Register, context.Context, int64, string) (cards.Record, error)) fiber.Handler {
	return func(c *fiber.Ctx) error {
		reg, err := a.register()
		if err != nil {
			return err
		}
		id, err := idParam(c, "id")
		if err != nil {
			return err
		}
		var in noteInput
		if err := decodeOptional(c, &in); err != nil {
			return err
		}
		card, err := step(reg, c.UserContext(), id, in.Note)
		if err != nil {
			return err
		}
		return c.JSON(card)
	}
}

// replaceCard makes a new card for a lost or damaged one (201, the new
// card, state applied; issue it next). Without "fee" the card fee is
// charged for a replacement (damaged false) and not for a damaged card
// swapped for natural wear (damaged true).
func (a *API) replaceCard(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Damaged bool   `json:"damaged"`
		Fee     *bool  `json:"fee"`
		Note    string `json:"note"`
	}
	if err := decodeOptional(c, &in); err != nil {
		return err
	}
	fee := !in.Damaged
	if in.Fee != nil {
		fee = *in.Fee
	}
	card, err := reg.Replace(c.UserContext(), id, in.Damaged, fee, in.Note)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(card)
}

func (a *API) cardPolicy(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	p, err := reg.Policy(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// saveCardPolicy changes the site's card policy. Fields left out keep
// their current values; the policy saved is returned.
func (a *API) saveCardPolicy(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	p, err := reg.Policy(c.UserContext())
	if err != nil {
		return err
	}
	if err := web.DecodeJSON(c, &p); err != nil {
		return err
	}
	if err := reg.SavePolicy(c.UserContext(), p); err != nil {
		return err
	}
	if p, err = reg.Policy(c.UserContext()); err != nil {
		return err
	}
	return c.JSON(p)
}

func (a *API) accessGroups(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	gs, err := reg.Groups(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(list[cards.Group]{Items: gs, Total: len(gs)})
}

// saveAccessGroup creates or changes an access group; the code comes from
// the path; version must match for a change.
func (a *API) saveAccessGroup(c *fiber.Ctx) error {
	reg, err := a.register()
	if err != nil {
		return err
	}
	var in struct {
		Name    string        `json:"name"`
		Version int           `json:"version"`
		Rights  []cards.Right `json:"rights"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	g, err := reg.SaveGroup(c.UserContext(), cards.Group{Code: c.Params("code"), Name: in.Name, Version: in.Version, Rights: in.Rights})
	if err != nil {
		return err
	}
	return c.JSON(g)
}
