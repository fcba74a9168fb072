package desk

import (
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	qrcode "github.com/skip2/go-qrcode"

	"onecard/auth"
	"onecard/fault"
	"onecard/passes"
	"onecard/web"
)

// registerPasses mounts the gate-pass screens: the desk issues and keeps
// the records, the guard checks and releases at the gate.
func (d *Desk) registerPasses(g *web.Group) {
	g.Get("/passes", web.PassReaders, d.passesPage)
	g.Get("/passes/new", web.DirectoryWriters, d.newPass)
	g.Post("/passes/new", web.DirectoryWriters, d.issuePass)
	g.Get("/passes/reconcile", web.Managers, d.reconcilePage)
	g.Get("/passes/export", web.Managers, d.exportPasses)
	g.Get("/passes/:id", web.PassReaders, d.passPage)
	g.Post("/passes/:id/reprint", web.DirectoryWriters, d.reprintPass)
	g.Post("/passes/:id/cancel", web.DirectoryWriters, d.cancelPass)
	g.Post("/passes/:id/follow-up", web.Managers, d.followUpPass)

	if d.Demo != nil {
		g.Post("/demo/passes/:id/scan", web.PassReaders, d.demoGateScan)
		g.Post("/demo/passes/:id/release", web.PassReaders, d.demoGateRelease)
	}
	g.Get("/gate", web.Guards, d.gatePage)
	g.Post("/gate/check", web.Guards, d.gateCheck)
	g.Post("/gate/release", web.Guards, d.gateRelease)
	g.Post("/gate/mismatch", web.Guards, d.gateMismatch)
	g.Post("/gate/duty", web.Guards, d.gateDuty)
}

// What the pass and gate pages say after a step (their ?done=).
var (
	passDone = map[string]string{"issued": "passes.done_issued", "reprinted": "passes.done_reprinted",
		"cancelled": "passes.done_cancelled", "followed_up": "passes.done_followed_up"}
	gateDone = map[string]string{"released": "gate.done_released", "mismatch": "gate.done_mismatch", "duty": "gate.done_duty"}
)

func (d *Desk) passesPage(c *fiber.Ctx) error {
	day := c.Query("day", d.Passes.Today())
	state := c.Query("state")
	data := fiber.Map{"Day": day, "State": state, "States": passes.States}
	list, err := d.Passes.List(c.UserContext(), day, day, state)
	if err != nil {
		if !userError(err) {
			return err
		}
		data["Error"] = message(c, err)
	}
	data["Passes"] = list
	return render(c, fiber.StatusOK, "passes", "passes.title", data)
}

// newPass is the application form, for the unit asked.
func (d *Desk) newPass(c *fiber.Ctx) error {
	return d.renderPassForm(c, fiber.StatusOK, passes.IssueInput{Unit: c.Query("unit"), Gate: d.Passes.Gates()[0]}, nil)
}

func (d *Desk) renderPassForm(c *fiber.Ctx, status int, in passes.IssueInput, formErr error) error {
	data := fiber.Map{"In": in, "Gates": d.Passes.Gates(), "Common": passes.CommonItems, "Consents": passes.Consents,
		"Today": d.Passes.Today()}
	for len(in.Items) < 6 {
		in.Items = append(in.Items, passes.Item{})
	}
	data["Items"] = in.Items
	if in.Unit != "" {
		u, err := d.Estate.Unit(c.UserContext(), in.Unit)
		switch {
		case err == nil:
			data["Unit"] = u
			arrears, err := d.Passes.Arrears(c.UserContext(), u.Code)
			if err != nil {
				return err
			}
			data["Arrears"] = arrears
		case userError(err):
			if formErr == nil {
				formErr = err
			}
		default:
			return err
		}
	}
	if formErr != nil {
		data["Error"] = message(c, formErr)
		if fe, ok := fault.As(formErr); ok {
			data["Field"] = fe.Field
		}
	}
	return render(c, status, "pass_form", "passes.new", data)
}

func (d *Desk) issuePass(c *fiber.Ctx) error {
	role, occ, _ := strings.Cut(c.FormValue("applicant"), ":")
	in := passes.IssueInput{Unit: strings.TrimSpace(c.FormValue("unit")), Role: role, Name: c.FormValue("name"),
		IDLast4: c.FormValue("id_last4"), Consent: c.FormValue("consent"), ConsentNote: c.FormValue("consent_note"),
		Plate: c.FormValue("plate"), Gate: c.FormValue("gate"), Date: c.FormValue("date"), From: c.FormValue("from"), To: c.FormValue("to"),
		ApprovalReason: c.FormValue("approval_reason")}
	in.OccupancyID, _ = strconv.ParseInt(occ, 10, 64)
	args := c.Request().PostArgs()
	names, qtys := args.PeekMulti("item"), args.PeekMulti("qty")
	for i, n := range names {
		it := passes.Item{Name: string(n)}
		if i < len(qtys) {
			it.Qty, _ = strconv.Atoi(strings.TrimSpace(string(qtys[i])))
		}
		in.Items = append(in.Items, it)
	}
	if c.FormValue("lookup") != "" { // "find the unit" on the form
		return d.renderPassForm(c, fiber.StatusOK, in, nil)
	}
	var approver *auth.Actor
	if user := strings.TrimSpace(c.FormValue("approver")); user != "" {
		a, err := d.Auth.Approve(c.UserContext(), user, c.FormValue("approver_password"), "pass.approve_arrears", auth.Supervisor, auth.Admin)
		if err != nil {
			if userError(err) {
				return d.renderPassForm(c, web.Status(err), in, err)
			}
			return err
		}
		approver = &a
	}
	p, err := d.Passes.Issue(c.UserContext(), in, approver)
	if err != nil {
		if userError(err) {
			return d.renderPassForm(c, web.Status(err), in, err)
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/passes/%d?done=issued", p.ID), fiber.StatusSeeOther)
}

func (d *Desk) passByParam(c *fiber.Ctx) (passes.Pass, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return passes.Pass{}, fault.NotFound("pass_not_found")
	}
	return d.Passes.Pass(c.UserContext(), id)
}

func (d *Desk) passPage(c *fiber.Ctx) error { return d.renderPass(c, fiber.StatusOK, nil) }

func (d *Desk) renderPass(c *fiber.Ctx, status int, formErr error) error {
	p, err := d.passByParam(c)
	if err != nil {
		return err
	}
	checks, err := d.Passes.Checks(c.UserContext(), p.ID)
	if err != nil {
		return err
	}
	png, err := qrcode.Encode(p.Code, qrcode.Medium, 320)
	if err != nil {
		return err
	}
	data := fiber.Map{"Pass": p, "Checks": checks, "QR": template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(png))}
	d.demoData(c, data)
	if key, ok := passDone[c.Query("done")]; ok {
		data["Flash"] = web.T(web.Lang(c), key, nil)
	}
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "pass", "passes.pass", data)
}

func (d *Desk) reprintPass(c *fiber.Ctx) error {
	p, err := d.passByParam(c)
	if err != nil {
		return err
	}
	if err := d.Passes.Reprint(c.UserContext(), p.ID); err != nil {
		if userError(err) {
			return d.renderPass(c, web.Status(err), err)
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/passes/%d?done=reprinted", p.ID), fiber.StatusSeeOther)
}

func (d *Desk) cancelPass(c *fiber.Ctx) error {
	p, err := d.passByParam(c)
	if err != nil {
		return err
	}
	if _, err := d.Passes.Cancel(c.UserContext(), p.ID, c.FormValue("reason")); err != nil {
		if userError(err) {
			return d.renderPass(c, web.Status(err), err)
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/passes/%d?done=cancelled", p.ID), fiber.StatusSeeOther)
}

func (d *Desk) followUpPass(c *fiber.Ctx) error {
	p, err := d.passByParam(c)
	if err != nil {
		return err
	}
	if err := d.Passes.FollowUp(c.UserContext(), p.ID, c.FormValue("note")); err != nil {
		if userError(err) {
			return d.renderPass(c, web.Status(err), err)
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/passes/%d?done=followed_up", p.ID), fiber.StatusSeeOther)
}

// week is the last seven days up to today, or the range asked.
func (d *Desk) week(c *fiber.Ctx) (string, string) {
	to := c.Query("to", d.Passes.Today())
	from := c.Query("from")
	if from == "" {
		if t, err := time.Parse(time.DateOnly, to); err == nil {
			from = t.AddDate(0, 0, -6).Format(time.DateOnly)
		}
	}
	return from, to
}

func (d *Desk) reconcilePage(c *fiber.Ctx) error {
	from, to := d.week(c)
	data := fiber.Map{"From": from, "To": to}
	r, err := d.Passes.Reconcile(c.UserContext(), from, to)
	if err != nil {
		if !userError(err) {
			return err
		}
		data["Error"] = message(c, err)
	} else {
		data["R"] = r
	}
	return render(c, fiber.StatusOK, "pass_reconcile", "passes.reconcile", data)
}

func (d *Desk) exportPasses(c *fiber.Ctx) error {
	from, to := d.week(c)
	b, err := d.Passes.ExportXLSX(c.UserContext(), from, to)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="passes-%s-%s.xlsx"`, from, to))
	c.Type("xlsx")
	return c.Send(b)
}

// gate is the guard's gate: the one chosen on the page (kept in a
// cookie), else the first.
func (d *Desk) gate(c *fiber.Ctx) string {
	gates := d.Passes.Gates()
	for _, g := range []string{c.FormValue("gate"), c.Query("gate"), c.Cookies("onecard_gate")} {
		for _, x := range gates {
			if g == x {
				return g
			}
		}
	}
	return gates[0]
}

func (d *Desk) gatePage(c *fiber.Ctx) error { return d.renderGate(c, fiber.StatusOK, nil, nil) }

func (d *Desk) renderGate(c *fiber.Ctx, status int, v *passes.Verdict, formErr error) error {
	gate := d.gate(c)
	c.Cookie(&fiber.Cookie{Name: "onecard_gate", Value: gate, Path: "/gate", HTTPOnly: true, SameSite: "Lax", MaxAge: 365 * 24 * 3600})
	duty, err := d.Passes.DutyLog(c.UserContext(), "")
	if err != nil {
		return err
	}
	data := fiber.Map{"Gate": gate, "Gates": d.Passes.Gates(), "Verdict": v, "Duty": duty, "Text": strings.TrimSpace(c.FormValue("text"))}
	if d.Fleet != nil {
		devs, err := d.Fleet.Devices(c.UserContext())
		if err != nil {
			return err
		}
		var terms []fiber.Map
		for _, dv := range devs {
			if dv.Kind == "gate-terminal" {
				terms = append(terms, fiber.Map{"Code": dv.Code, "Online": dv.Online})
			}
		}
		data["Terminals"] = terms
	}
	if key, ok := gateDone[c.Query("done")]; ok {
		data["Flash"] = web.T(web.Lang(c), key, nil)
	}
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "gate", "gate.title", data)
}

func guardName(c *fiber.Ctx) string {
	a, _ := web.ActorOf(c)
	return a.Name
}

// gateCheck checks what the scanner typed (or the guard).
func (d *Desk) gateCheck(c *fiber.Ctx) error {
	text := strings.TrimSpace(c.FormValue("text"))
	if text == "" {
		return d.renderGate(c, fiber.StatusUnprocessableEntity, nil, fault.Invalid("text", "gate_scan_required"))
	}
	v, err := d.Passes.Check(c.UserContext(), text, d.gate(c), guardName(c))
	if err != nil {
		return err
	}
	return d.renderGate(c, fiber.StatusOK, &v, nil)
}

func (d *Desk) gateRelease(c *fiber.Ctx) error {
	p, err := d.Passes.Release(c.UserContext(), passes.Release{Text: c.FormValue("text"), Gate: d.gate(c),
		MoverID: c.FormValue("mover_id_last4"), Plate: c.FormValue("plate")}, guardName(c))
	if err != nil {
		return d.gateRefused(c, err)
	}
	return c.Redirect("/gate?done=released&pass="+p.Number, fiber.StatusSeeOther)
}

func (d *Desk) gateMismatch(c *fiber.Ctx) error {
	if _, err := d.Passes.Mismatch(c.UserContext(), c.FormValue("text"), d.gate(c), c.FormValue("note"), guardName(c)); err != nil {
		return d.gateRefused(c, err)
	}
	return c.Redirect("/gate?done=mismatch", fiber.StatusSeeOther)
}

// gateRefused shows a refused release or mismatch with the pass's verdict.
func (d *Desk) gateRefused(c *fiber.Ctx, err error) error {
	var refused passes.ErrRefused
	if errors.As(err, &refused) {
		return d.renderGate(c, fiber.StatusConflict, &refused.Verdict, nil)
	}
	if userError(err) {
		v, verr := d.Passes.Check(c.UserContext(), c.FormValue("text"), d.gate(c), guardName(c))
		if verr != nil {
			return verr
		}
		return d.renderGate(c, web.Status(err), &v, err)
	}
	return err
}

func (d *Desk) gateDuty(c *fiber.Ctx) error {
	_, err := d.Passes.LogDuty(c.UserContext(), passes.DutyEntry{Gate: d.gate(c), Kind: c.FormValue("kind"), Unit: c.FormValue("unit"),
		Plate: c.FormValue("plate"), Leader: c.FormValue("leader"), Note: c.FormValue("note")})
	if err != nil {
		if userError(err) {
			return d.renderGate(c, web.Status(err), nil, err)
		}
		return err
	}
	return c.Redirect("/gate?done=duty", fiber.StatusSeeOther)
}
