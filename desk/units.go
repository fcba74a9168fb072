package desk

import (
	"net/url"
	"slices"
	"strconv"

	"github.com/gofiber/fiber/v2"

	"onecard/auth"
	"onecard/estate"
	"onecard/fault"
	"onecard/web"
)

func abilityOf(r auth.Role, ability string) bool { return slices.Contains(abilities[ability], r) }

const pageSize = 50

func (d *Desk) units(c *fiber.Ctx) error {
	q := c.Query("q")
	page, _ := strconv.Atoi(c.Query("page", "1"))
	if page < 1 {
		page = 1
	}
	units, total, err := d.Estate.Search(c.UserContext(), estate.Query{Q: q, Limit: pageSize, Offset: (page - 1) * pageSize})
	if err != nil {
		return err
	}
	link := func(p int) string { return "/units?" + url.Values{"q": {q}, "page": {strconv.Itoa(p)}}.Encode() }
	data := fiber.Map{"Q": q, "Units": units, "Total": total, "From": min((page-1)*pageSize+1, total), "To": (page-1)*pageSize + len(units)}
	if page > 1 {
		data["Prev"] = link(page - 1)
	}
	if page*pageSize < total {
		data["Next"] = link(page + 1)
	}
	return render(c, fiber.StatusOK, "units", "units.title", data)
}

func (d *Desk) unit(c *fiber.Ctx) error {
	u, err := d.Estate.Unit(c.UserContext(), c.Params("code"))
	if err != nil {
		return err
	}
	data := fiber.Map{"Unit": u, "Today": d.Estate.Today()}
	if err := d.unitCards(c, u.Code, data); err != nil {
		return err
	}
	if err := d.unitPIN(c, u.Code, data); err != nil {
		return err
	}
	switch c.Query("done") {
	case "saved", "moved_in", "moved_out", "pin_set":
		data["Flash"] = web.T(web.Lang(c), "flash."+c.Query("done"), nil)
	}
	return render(c, fiber.StatusOK, "unit", "unit.title", data)
}

func (d *Desk) newUnit(c *fiber.Ctx) error {
	return render(c, fiber.StatusOK, "unit_form", "units.new", fiber.Map{})
}

func unitInput(c *fiber.Ctx) (estate.UnitInput, error) {
	area, err := estate.ParseArea(c.FormValue("area_m2"))
	if err != nil {
		return estate.UnitInput{}, err
	}
	v, _ := strconv.Atoi(c.FormValue("version"))
	return estate.UnitInput{Code: c.FormValue("code"), Area: area, HandoverDate: c.FormValue("handover_date"), Version: v}, nil
}

func (d *Desk) createUnit(c *fiber.Ctx) error {
	in, err := unitInput(c)
	if err == nil {
		var u estate.Unit
		if u, err = d.Estate.CreateUnit(c.UserContext(), in); err == nil {
			return c.Redirect("/units/"+u.Code+"?done=saved", fiber.StatusSeeOther)
		}
	}
	if !userError(err) {
		return err
	}
	return render(c, web.Status(err), "unit_form", "units.new", fiber.Map{
		"Error": message(c, err), "Code": c.FormValue("code"), "Area": c.FormValue("area_m2"), "HandoverDate": c.FormValue("handover_date"),
	})
}

func (d *Desk) editUnit(c *fiber.Ctx) error {
	u, err := d.Estate.Unit(c.UserContext(), c.Params("code"))
	if err != nil {
		return err
	}
	hd := ""
	if u.HandoverDate != nil {
		hd = *u.HandoverDate
	}
	return render(c, fiber.StatusOK, "unit_form", "unit.edit", fiber.Map{
		"Editing": true, "Code": u.Code, "Area": u.Area.String(), "HandoverDate": hd, "Version": u.Version,
	})
}

func (d *Desk) updateUnit(c *fiber.Ctx) error {
	in, err := unitInput(c)
	if err == nil {
		var u estate.Unit
		if u, err = d.Estate.UpdateUnit(c.UserContext(), c.Params("code"), in); err == nil {
			return c.Redirect("/units/"+u.Code+"?done=saved", fiber.StatusSeeOther)
		}
	}
	if !userError(err) {
		return err
	}
	return render(c, web.Status(err), "unit_form", "unit.edit", fiber.Map{
		"Editing": true, "Error": message(c, err), "Code": c.Params("code"), "Area": c.FormValue("area_m2"),
		"HandoverDate": c.FormValue("handover_date"), "Version": c.FormValue("version"),
	})
}

var moveInFields = []string{"name", "phone", "id_type", "id_last4", "role", "moved_in_on", "confirmed_by",
	"lease_start", "lease_end", "consent_method", "consent_note"}

func (d *Desk) moveInPage(c *fiber.Ctx) error {
	u, err := d.Estate.Unit(c.UserContext(), c.Params("code"))
	if err != nil {
		return err
	}
	return d.renderMoveIn(c, fiber.StatusOK, u, map[string]string{"role": estate.Owner, "id_type": "resident_id",
		"moved_in_on": d.Estate.Today()}, "")
}

func (d *Desk) renderMoveIn(c *fiber.Ctx, status int, u estate.UnitDetail, form map[string]string, errMsg string) error {
	var owners []estate.Occupancy
	for _, o := range u.Occupancies {
		if o.Current() && o.Role == estate.Owner {
			owners = append(owners, o)
		}
	}
	return render(c, status, "movein", "unit.move_in", fiber.Map{
		"Unit": u, "Form": form, "Error": errMsg, "Owners": owners, "IDTypes": estate.IDTypes,
		"Roles": []string{estate.Owner, estate.Family, estate.Tenant}, "Consents": estate.ConsentMethods,
	})
}

func (d *Desk) moveIn(c *fiber.Ctx) error {
	form := map[string]string{}
	for _, f := range moveInFields {
		form[f] = c.FormValue(f)
	}
	confirmed, _ := strconv.ParseInt(form["confirmed_by"], 10, 64)
	in := estate.MoveIn{
		Person:    &estate.PersonInput{Name: form["name"], Phone: form["phone"], IDType: form["id_type"], IDLast4: form["id_last4"]},
		Role:      form["role"],
		MovedInOn: form["moved_in_on"], LeaseStart: form["lease_start"], LeaseEnd: form["lease_end"],
		ConsentMethod: form["consent_method"], ConsentNote: form["consent_note"],
	}
	if in.Role == estate.Family {
		in.ConfirmedBy = confirmed
	}
	if in.Role != estate.Tenant {
		in.LeaseStart, in.LeaseEnd, in.ConsentMethod = "", "", ""
	}
	_, err := d.Estate.MoveIn(c.UserContext(), c.Params("code"), in)
	if err == nil {
		return c.Redirect("/units/"+url.PathEscape(c.Params("code"))+"?done=moved_in", fiber.StatusSeeOther)
	}
	if !userError(err) {
		return err
	}
	u, uerr := d.Estate.Unit(c.UserContext(), c.Params("code"))
	if uerr != nil {
		return uerr
	}
	return d.renderMoveIn(c, web.Status(err), u, form, message(c, err))
}

// moveOutPage asks the clerk to confirm a move-out and its date: one
// stray click on the unit page must not end someone's residence.
func (d *Desk) moveOutPage(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fault.NotFound("occupancy_not_found")
	}
	o, err := d.Estate.Occupancy(c.UserContext(), id)
	if err != nil {
		return err
	}
	if !o.Current() {
		return c.Redirect("/units/"+o.UnitCode, fiber.StatusSeeOther)
	}
	data := fiber.Map{"Occ": o, "Date": d.Estate.Today()}
	if d.Cards != nil {
		// The cards this person holds: each to be returned or cancelled.
		list, err := d.Cards.PersonCards(c.UserContext(), o.PersonID)
		if err != nil {
			return err
		}
		data["Cards"] = list
	}
	return render(c, fiber.StatusOK, "moveout", "occ.move_out", data)
}

func (d *Desk) moveOut(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fault.NotFound("occupancy_not_found")
	}
	o, err := d.Estate.MoveOut(c.UserContext(), id, c.FormValue("moved_out_on"))
	if err == nil {
		return c.Redirect("/units/"+o.UnitCode+"?done=moved_out", fiber.StatusSeeOther)
	}
	if !userError(err) {
		return err
	}
	o, oerr := d.Estate.Occupancy(c.UserContext(), id)
	if oerr != nil {
		return oerr
	}
	return render(c, web.Status(err), "moveout", "occ.move_out", fiber.Map{"Occ": o, "Date": c.FormValue("moved_out_on"), "Error": message(c, err)})
}

func (d *Desk) editPerson(c *fiber.Ctx) error {
	id, _ := strconv.ParseInt(c.Params("id"), 10, 64)
	p, occ, err := d.Estate.Person(c.UserContext(), id)
	if err != nil {
		return err
	}
	form := map[string]string{"name": p.Name, "phone": p.Phone, "id_type": p.IDType, "id_last4": p.IDLast4,
		"version": strconv.Itoa(p.Version)}
	return render(c, fiber.StatusOK, "person_form", "person.edit", fiber.Map{"Form": form, "IDTypes": estate.IDTypes, "Back": backTo(occ)})
}

func backTo(occ []estate.Occupancy) string {
	if len(occ) > 0 {
		return "/units/" + occ[0].UnitCode
	}
	return "/units"
}

func (d *Desk) updatePerson(c *fiber.Ctx) error {
	id, _ := strconv.ParseInt(c.Params("id"), 10, 64)
	form := map[string]string{}
	for _, f := range []string{"name", "phone", "id_type", "id_last4", "version"} {
		form[f] = c.FormValue(f)
	}
	v, _ := strconv.Atoi(form["version"])
	_, err := d.Estate.UpdatePerson(c.UserContext(), id, estate.PersonInput{Name: form["name"], Phone: form["phone"],
		IDType: form["id_type"], IDLast4: form["id_last4"], Version: v})
	_, occ, perr := d.Estate.Person(c.UserContext(), id)
	if perr != nil {
		return perr
	}
	if err == nil {
		return c.Redirect(backTo(occ)+"?done=saved", fiber.StatusSeeOther)
	}
	if !userError(err) {
		return err
	}
	return render(c, web.Status(err), "person_form", "person.edit", fiber.Map{"Form": form, "IDTypes": estate.IDTypes,
		"Back": backTo(occ), "Error": message(c, err)})
}
