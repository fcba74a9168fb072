package api

import (
	"errors"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"onecard/auth"
	"onecard/billing"
	"onecard/fault"
	"onecard/web"
)

// registerBilling mounts the books (SOP §4): accounts, payments, receipts,
// voids and refunds, the daily close, arrears, fee items, bills and print
// jobs.
func (a *API) registerBilling(g *web.Group) {
	g.Get("/units/:code/account", web.Cashiers, a.account)
	g.Post("/payments", web.Cashiers, a.pay)
	g.Get("/payments/:id", web.Cashiers, a.getPayment)
	g.Post("/payments/:id/check", web.Cashiers, a.checkPayment)
	g.Get("/receipts/:id", web.Cashiers, a.getReceipt)
	g.Post("/receipts/:id/reprint", web.Cashiers, a.reprint)
	g.Post("/receipts/:id/void", web.Cashiers, a.void)
	g.Post("/refunds", web.Cashiers, a.refund)
	g.Post("/days/close", web.Cashiers, a.closeDay)
	g.Get("/days/:day", web.Cashiers, a.day)
	g.Get("/days/:day/operators", web.Managers, a.dayOperators)
	g.Get("/arrears", web.Cashiers, a.arrears)
	g.Get("/fees", web.Cashiers, a.fees)
	g.Put("/fees/:code", web.Managers, a.saveFee)
	g.Post("/bills", web.Managers, a.addBill)
	g.Post("/bills/generate", web.Managers, a.generateBills)
	g.Get("/print-jobs", web.Cashiers, a.printJobs)
	g.Post("/print-jobs/:id/retry", web.Cashiers, a.retryPrint)
}

func (a *API) account(c *fiber.Ctx) error {
	acc, err := a.Billing.Account(c.UserContext(), c.Params("code"))
	if err != nil {
		return err
	}
	return c.JSON(acc)
}

// PendingPayment is the answer to POST /payments for a card payment the
// terminal has not settled yet (202): the payment is on the books with
// state sent, unknown or approved; the caller asks again with
// POST /payments/{id}/check (or the resolver settles it) and never takes
// the money a second way meanwhile.
type PendingPayment struct {
	Payment billing.Payment `json:"payment"`
	Pending bool            `json:"pending"`
	// Code is "outcome_unknown".
	Code string `json:"code"`
}

// waiting reports whether a payment still waits for the terminal.
func waiting(state string) bool {
	return slices.Contains([]string{"created", "sent", "unknown", "approved"}, state)
}

// pay takes a payment. A settled payment answers 201 with its receipt; a
// repeated request with the same idem_key answers as the first did (the
// same payment, no second receipt); a card payment whose outcome is not
// known yet answers 202 with a PendingPayment; a declined card is the
// card_declined error.
func (a *API) pay(c *fiber.Ctx) error {
	var in billing.PayInput
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	p, err := a.Billing.Pay(c.UserContext(), in)
	switch {
	case errors.Is(err, billing.ErrOutcomeUnknown), err == nil && waiting(p.State):
		return c.Status(fiber.StatusAccepted).JSON(PendingPayment{Payment: p, Pending: true, Code: "outcome_unknown"})
	case err != nil:
		return err
	case p.State == "declined": // the same key again, after a decline
		reason := p.Outcome
		if _, r, ok := strings.Cut(reason, ": "); ok {
			reason = r
		}
		return fault.Invalid("card", "card_declined", "reason", reason)
	}
	return c.Status(fiber.StatusCreated).JSON(p)
}

func (a *API) getPayment(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	p, err := a.Billing.Payment(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(p)
}

// checkPayment asks the terminal about card payments still waiting for
// its answer, then returns this one in whatever state it is now.
func (a *API) checkPayment(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	p, err := a.Billing.Payment(c.UserContext(), id)
	if err != nil {
		return err
	}
	if waiting(p.State) {
		if _, err := a.Billing.Resolve(c.UserContext()); err != nil {
			return err
		}
		if p, err = a.Billing.Payment(c.UserContext(), id); err != nil {
			return err
		}
	}
	return c.JSON(p)
}

func (a *API) getReceipt(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	rc, err := a.Billing.Receipt(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.JSON(rc)
}

// reprint queues a copy, marked as one, and returns the receipt.
func (a *API) reprint(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if err := a.Billing.Reprint(c.UserContext(), id); err != nil {
		return err
	}
	rc, err := a.Billing.Receipt(c.UserContext(), id)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusAccepted).JSON(rc)
}

// approval is a supervisor's credentials, given at the cashier's desk.
type approval struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// approve checks the approver of a void or refund. A disabled approver is
// an approval failure, not the caller's 401.
func (a *API) approve(c *fiber.Ctx, ap *approval, purpose string) (auth.Actor, error) {
	if ap == nil || strings.TrimSpace(ap.Username) == "" || ap.Password == "" {
		return auth.Actor{}, fault.Invalid("approver", "approval_required")
	}
	act, err := a.Auth.Approve(c.UserContext(), ap.Username, ap.Password, purpose, auth.Supervisor, auth.Admin)
	if errors.Is(err, fault.ErrAuth) {
		return auth.Actor{}, fault.Invalid("approver", "approval_failed")
	}
	return act, err
}

// void voids a receipt with a supervisor's approval. The receipt and the
// reason are checked before the supervisor is, so that nobody is asked to
// approve (and no approval is audited) for nothing.
func (a *API) void(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	var in struct {
		Reason   string    `json:"reason"`
		Approver *approval `json:"approver"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	rc, err := a.Billing.Receipt(c.UserContext(), id)
	if err != nil {
		return err
	}
	if strings.TrimSpace(in.Reason) == "" {
		return fault.Invalid("reason", "reason_required")
	}
	approver, err := a.approve(c, in.Approver, "void receipt "+rc.Number)
	if err != nil {
		return err
	}
	if rc, err = a.Billing.Void(c.UserContext(), id, in.Reason, approver); err != nil {
		return err
	}
	return c.JSON(rc)
}

// refund pays money back against a receipt with a supervisor's approval;
// it answers the refund's id and the receipt as it now stands.
func (a *API) refund(c *fiber.Ctx) error {
	var in struct {
		billing.RefundInput
		Approver *approval `json:"approver"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	if in.ReceiptID <= 0 {
		return fault.Invalid("receipt_id", "id_invalid")
	}
	rc, err := a.Billing.Receipt(c.UserContext(), in.ReceiptID)
	if err != nil {
		return err
	}
	if strings.TrimSpace(in.Reason) == "" {
		return fault.Invalid("reason", "reason_required")
	}
	approver, err := a.approve(c, in.Approver, "refund receipt "+rc.Number)
	if err != nil {
		return err
	}
	id, err := a.Billing.Refund(c.UserContext(), in.RefundInput, approver)
	if err != nil {
		return err
	}
	if rc, err = a.Billing.Receipt(c.UserContext(), in.ReceiptID); err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"id": id, "receipt": rc})
}

// dayParam reads :day, a date or "today" (the site's business day).
func (a *API) dayParam(c *fiber.Ctx) string {
	if d := c.Params("day"); d != "today" {
		return d
	}
	return a.Billing.Today()
}

// day returns the caller's business day, or with operator_kind and
// operator_id another operator's (supervisors and admins only). The caller
// is booked as billing books them: a staff member as "staff", an API token
// as "token".
func (a *API) day(c *fiber.Ctx) error {
	act, _ := web.ActorOf(c)
	kind, id := act.Kind, act.ID
	if k, v := c.Query("operator_kind"), c.Query("operator_id"); k != "" || v != "" {
		if k != "" {
			kind = k
		}
		if kind != "staff" && kind != "kiosk" && kind != "token" {
			return fault.Invalid("operator_kind", "invalid")
		}
		if v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 {
				return fault.Invalid("operator_id", "id_invalid")
			}
			id = n
		} else if kind != "staff" {
			return fault.Invalid("operator_id", "id_invalid")
		}
		if (kind != act.Kind || id != act.ID) && act.Role != auth.Supervisor && act.Role != auth.Admin {
			return fault.Forbidden("role_forbidden")
		}
	}
	d, err := a.Billing.Day(c.UserContext(), a.dayParam(c), kind, id)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (a *API) dayOperators(c *fiber.Ctx) error {
	days, err := a.Billing.Operators(c.UserContext(), a.dayParam(c))
	if err != nil {
		return err
	}
	if days == nil {
		days = []billing.Day{}
	}
	return c.JSON(list[billing.Day]{Items: days, Total: len(days)})
}

func (a *API) closeDay(c *fiber.Ctx) error {
	var in billing.CloseInput
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	d, err := a.Billing.CloseDay(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.JSON(d)
}

func (a *API) arrears(c *fiber.Ctx) error {
	building := 0
	if v := c.Query("building"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fault.Invalid("building", "invalid")
		}
		building = n
	}
	rows, err := a.Billing.Arrears(c.UserContext(), building)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []billing.Arrear{}
	}
	return c.JSON(list[billing.Arrear]{Items: rows, Total: len(rows)})
}

func (a *API) fees(c *fiber.Ctx) error {
	items, err := a.Billing.FeeItems(c.UserContext())
	if err != nil {
		return err
	}
	if items == nil {
		items = []billing.FeeItem{}
	}
	return c.JSON(list[billing.FeeItem]{Items: items, Total: len(items)})
}

// saveFee creates the fee item :code (201) or changes it (200; version
// must match, the kind never changes). Without "active" an item keeps its
// flag (a new one is active).
func (a *API) saveFee(c *fiber.Ctx) error {
	var in struct {
		Name     string `json:"name"`
		Kind     string `json:"kind"`
		PriceFen int64  `json:"price_fen"`
		Active   *bool  `json:"active"`
		Version  int    `json:"version"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	it := billing.FeeItem{Code: c.Params("code"), Name: in.Name, Kind: in.Kind, PriceFen: in.PriceFen, Active: true, Version: in.Version}
	if in.Active != nil {
		it.Active = *in.Active
	} else {
		items, err := a.Billing.FeeItems(c.UserContext())
		if err != nil {
			return err
		}
		if i := slices.IndexFunc(items, func(f billing.FeeItem) bool { return f.Code == strings.TrimSpace(it.Code) }); i >= 0 {
			it.Active = items[i].Active
		}
	}
	out, err := a.Billing.SaveFeeItem(c.UserContext(), it)
	if err != nil {
		return err
	}
	status := fiber.StatusOK
	if out.Version == 1 { // a change always makes version 2 or more
		status = fiber.StatusCreated
	}
	return c.Status(status).JSON(out)
}

func (a *API) addBill(c *fiber.Ctx) error {
	var in billing.BillInput
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	b, err := a.Billing.AddBill(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(b)
}

// generateBills makes a period's bills; running it again creates none.
func (a *API) generateBills(c *fiber.Ctx) error {
	var in struct {
		Period string `json:"period"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	g, err := a.Billing.Generate(c.UserContext(), in.Period)
	if err != nil {
		return err
	}
	return c.JSON(g)
}

func (a *API) printJobs(c *fiber.Ctx) error {
	jobs, err := a.Billing.PrintJobs(c.UserContext())
	if err != nil {
		return err
	}
	if jobs == nil {
		jobs = []billing.PrintJob{}
	}
	return c.JSON(list[billing.PrintJob]{Items: jobs, Total: len(jobs)})
}

func (a *API) retryPrint(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if err := a.Billing.RetryPrint(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusAccepted)
}
