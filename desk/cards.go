package desk

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"onecard/cards"
	"onecard/estate"
	"onecard/web"
)

// unitCards adds the unit's cards to the unit page's data.
func (d *Desk) unitCards(c *fiber.Ctx, code string, data fiber.Map) error {
	if d.Cards == nil {
		return nil
	}
	list, err := d.Cards.UnitCards(c.UserContext(), code)
	if err != nil {
		return err
	}
	data["Cards"] = list
	groups, err := d.Cards.Groups(c.UserContext())
	if err != nil {
		return err
	}
	data["Groups"] = groups
	if d.Billing != nil {
		// A household renting a parking space gets the car park.
		parks, err := d.Billing.Subscribed(c.UserContext(), code, "parking")
		if err != nil {
			return err
		}
		data["RentsParking"] = parks
	}
	return nil
}

// formList is every value of a repeated form field.
func formList(c *fiber.Ctx, key string) []string {
	var out []string
	for _, v := range c.Request().PostArgs().PeekMulti(key) {
		out = append(out, string(v))
	}
	return out
}

// applyCard applies for a card for a resident, from the unit page.
func (d *Desk) applyCard(c *fiber.Ctx) error {
	pid, _ := strconv.ParseInt(c.FormValue("person_id"), 10, 64)
	card, err := d.Cards.Apply(c.UserContext(), cards.ApplyInput{Unit: c.Params("code"), PersonID: pid,
		Carpark: c.FormValue("carpark") != "", Note: c.FormValue("note"), Groups: formList(c, "group")})
	if err == nil {
		return c.Redirect(fmt.Sprintf("/cards/%d?done=applied", card.ID), fiber.StatusSeeOther)
	}
	if !userError(err) {
		return err
	}
	u, uerr := d.Estate.Unit(c.UserContext(), c.Params("code"))
	if uerr != nil {
		return uerr
	}
	data := fiber.Map{"Unit": u, "Today": d.Estate.Today(), "Error": message(c, err)}
	if err := d.unitCards(c, u.Code, data); err != nil {
		return err
	}
	return render(c, web.Status(err), "unit", "unit.title", data)
}

func (d *Desk) cardPage(c *fiber.Ctx) error { return d.renderCard(c, fiber.StatusOK, nil) }

func (d *Desk) renderCard(c *fiber.Ctx, status int, formErr error) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	card, err := d.Cards.Card(c.UserContext(), id)
	if err != nil {
		return err
	}
	events, err := d.Cards.Events(c.UserContext(), id)
	if err != nil {
		return err
	}
	data := fiber.Map{"Card": card, "Events": events, "Encoder": d.Encoder != nil}
	if card.DepositBillID != nil && card.State == "returned" && d.Billing != nil {
		// The deposit goes back through the cashier, against its receipt.
		rc, err := d.Billing.BillReceipt(c.UserContext(), *card.DepositBillID)
		if err != nil {
			return err
		}
		data["DepositReceipt"] = rc
	}
	if d.Encoder != nil {
		data["Station"] = d.Encoder.Status()
	}
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	if done := c.Query("done"); done != "" {
		data["Flash"] = web.T(web.Lang(c), "flash.card."+done, nil)
	}
	d.demoData(c, data)
	return render(c, status, "card", "card.title", data)
}

// cardAction runs one step of a card's life from the card page.
func (d *Desk) cardAction(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ctx, note := c.UserContext(), c.FormValue("note")
	var card cards.Record
	action := c.Params("action")
	switch action {
	case "issue":
		card, err = d.Cards.Issue(ctx, id)
	case "lost":
		card, err = d.Cards.ReportLost(ctx, id, note)
	case "unblock":
		card, err = d.Cards.Unblock(ctx, id, note)
	case "replace":
		card, err = d.Cards.Replace(ctx, id, false, true, note)
	case "damaged":
		card, err = d.Cards.Replace(ctx, id, true, c.FormValue("fee") != "", note)
	case "return":
		card, err = d.Cards.Return(ctx, id, note)
	case "cancel":
		card, err = d.Cards.Cancel(ctx, id, note)
	default:
		return fiber.ErrNotFound
	}
	if err == nil {
		return c.Redirect(fmt.Sprintf("/cards/%d?done=%s", card.ID, action), fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderCard(c, web.Status(err), err)
	}
	return err
}

// cardsPage is the card office: expiring cards, the reconciliation, cards
// for contractors and staff, and the policy.
func (d *Desk) cardsPage(c *fiber.Ctx) error { return d.renderCards(c, fiber.StatusOK, nil) }

func (d *Desk) renderCards(c *fiber.Ctx, status int, formErr error) error {
	ctx := c.UserContext()
	exp, err := d.Cards.Expiring(ctx, 30)
	if err != nil {
		return err
	}
	rec, err := d.Cards.Reconcile(ctx)
	if err != nil {
		return err
	}
	pol, err := d.Cards.Policy(ctx)
	if err != nil {
		return err
	}
	groups, err := d.Cards.Groups(ctx)
	if err != nil {
		return err
	}
	data := fiber.Map{"Expiring": exp, "Rec": rec, "Policy": pol, "IDTypes": estate.IDTypes, "Groups": groups}
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	if c.Query("done") == "saved" {
		data["Flash"] = web.T(web.Lang(c), "flash.saved", nil)
	}
	return render(c, status, "cards", "cards.title", data)
}

func (d *Desk) applyOther(c *fiber.Ctx) error {
	var zones []string
	for _, z := range strings.Split(c.FormValue("zones"), ",") {
		if z = strings.TrimSpace(z); z != "" {
			zones = append(zones, z)
		}
	}
	card, err := d.Cards.ApplyOther(c.UserContext(), cards.OtherInput{Type: c.FormValue("type"), Unit: c.FormValue("unit"),
		Zones: zones, Until: c.FormValue("until"), Note: c.FormValue("note"), Groups: formList(c, "group"),
		Person: estate.PersonInput{Name: c.FormValue("name"), Phone: c.FormValue("phone"), IDType: c.FormValue("id_type"), IDLast4: c.FormValue("id_last4")}})
	if err == nil {
		return c.Redirect(fmt.Sprintf("/cards/%d?done=applied", card.ID), fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderCards(c, web.Status(err), err)
	}
	return err
}

func (d *Desk) savePolicy(c *fiber.Ctx) error {
	num := func(k string) int { n, _ := strconv.Atoi(strings.TrimSpace(c.FormValue(k))); return n }
	fee, err := parseYuan(c.FormValue("fee"))
	var dep int64
	if err == nil {
		dep, err = parseYuan(c.FormValue("deposit"))
	}
	if err == nil {
		err = d.Cards.SavePolicy(c.UserContext(), cards.Policy{FreePerHousehold: num("free"), MaxPerHousehold: num("max"), FeeFen: fee,
			DepositOn: c.FormValue("deposit_on") != "", DepositFen: dep, OwnerMonths: num("months")})
	}
	if err == nil {
		return c.Redirect("/cards?done=saved", fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderCards(c, web.Status(err), err)
	}
	return err
}

func (d *Desk) saveGroup(c *fiber.Ctx) error {
	rights, err := cards.ParseRights(c.FormValue("rights"))
	if err == nil {
		v, _ := strconv.Atoi(c.FormValue("version"))
		_, err = d.Cards.SaveGroup(c.UserContext(), cards.Group{Code: c.FormValue("code"), Name: c.FormValue("name"), Version: v, Rights: rights})
	}
	if err == nil {
		return c.Redirect("/cards?done=saved#groups", fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderCards(c, web.Status(err), err)
	}
	return err
}
