package desk

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"golang.org/x/text/unicode/norm"

	"onecard/auth"
	"onecard/billing"
	"onecard/estate"
	"onecard/fault"
	"onecard/printing"
	"onecard/terminal"
	"onecard/web"
)

// parseYuan reads an amount typed in yuan ("120", "120.5", "1,200.05",
// full-width digits too) into fen.
func parseYuan(s string) (int64, error) {
	s = strings.ReplaceAll(strings.TrimSpace(norm.NFKC.String(s)), ",", "")
	s = strings.TrimPrefix(s, "¥")
	if s == "" {
		return 0, fault.Invalid("amount", "amount_invalid")
	}
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" || len(whole) > 7 || len(frac) > 2 || strings.Trim(whole, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" {
		return 0, fault.Invalid("amount", "amount_invalid")
	}
	w, _ := strconv.ParseInt(whole, 10, 64)
	f, _ := strconv.ParseInt(frac+strings.Repeat("0", 2-len(frac)), 10, 64)
	return w*100 + f, nil
}

func newKey() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// cashier is the cashier's start: find a unit.
func (d *Desk) cashier(c *fiber.Ctx) error {
	q := c.Query("q")
	data := fiber.Map{"Q": q, "Terminal": d.terminalState(d.Terminal), "Printer": d.printerState(c.UserContext(), d.Printer)}
	if q != "" {
		units, _, err := d.Estate.Search(c.UserContext(), estate.Query{Q: q, Limit: 20})
		if err != nil && !userError(err) {
			return err
		}
		if err != nil {
			data["Error"] = message(c, err)
		}
		if len(units) == 1 {
			return c.Redirect("/cashier/"+units[0].Code, fiber.StatusSeeOther)
		}
		data["Units"] = units
	}
	return render(c, fiber.StatusOK, "cashier", "cashier.title", data)
}

func (d *Desk) terminalState(t *terminal.Terminal) string {
	switch {
	case t == nil:
		return "none"
	case t.Ready():
		return "ready"
	}
	return "offline"
}

func (d *Desk) printerState(ctx context.Context, p *printing.Printer) string {
	if p == nil {
		return "none"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st, err := p.Status(ctx)
	if err != nil {
		return "offline"
	}
	if err := st.Ready(); err != nil {
		if st.PaperOut {
			return "paper_out"
		}
		if st.CoverOpen {
			return "cover_open"
		}
		return "offline"
	}
	return "ready"
}

// account is a unit's account with the payment form.
func (d *Desk) account(c *fiber.Ctx) error {
	return d.renderAccount(c, fiber.StatusOK, nil)
}

func (d *Desk) renderAccount(c *fiber.Ctx, status int, formErr error) error {
	a, err := d.Billing.Account(c.UserContext(), c.Params("code"))
	if err != nil {
		return err
	}
	data := fiber.Map{"Account": a, "Key": newKey(), "Terminal": d.terminalState(d.Terminal), "Method": "cash"}
	if formErr != nil {
		data["Error"] = message(c, formErr)
		data["Method"] = c.FormValue("method")
		data["Amount"] = c.FormValue("amount")
		data["Tendered"] = c.FormValue("tendered")
		data["TransferRef"] = c.FormValue("transfer_ref")
		checked := map[string]bool{}
		for _, id := range strings.Split(string(c.Request().PostArgs().Peek("bill")), ",") {
			checked[id] = true
		}
		for _, v := range c.Request().PostArgs().PeekMulti("bill") {
			checked[string(v)] = true
		}
		data["Checked"] = checked
	}
	return render(c, status, "account", "cashier.account", data)
}

// pay takes a payment from the account page's form.
func (d *Desk) pay(c *fiber.Ctx) error {
	in := billing.PayInput{IdemKey: c.FormValue("key"), Unit: c.Params("code"), Method: c.FormValue("method"), TransferRef: c.FormValue("transfer_ref")}
	for _, v := range c.Request().PostArgs().PeekMulti("bill") {
		id, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return d.renderAccount(c, fiber.StatusUnprocessableEntity, fault.Invalid("bill_ids", "bill_not_open"))
		}
		in.BillIDs = append(in.BillIDs, id)
	}
	if len(in.BillIDs) == 0 {
		return d.renderAccount(c, fiber.StatusUnprocessableEntity, fault.Invalid("bill_ids", "nothing_due"))
	}
	var err error
	if in.AmountFen, err = parseYuan(c.FormValue("amount")); err != nil {
		return d.renderAccount(c, fiber.StatusUnprocessableEntity, err)
	}
	if in.Method == "cash" {
		if in.TenderedFen, err = parseYuan(c.FormValue("tendered")); err != nil {
			return d.renderAccount(c, fiber.StatusUnprocessableEntity, fault.Invalid("tendered", "tendered_short"))
		}
	}
	p, err := d.Billing.Pay(c.UserContext(), in)
	switch {
	case err == nil:
		return c.Redirect(fmt.Sprintf("/receipts/%d?done=paid", p.Receipt.ID), fiber.StatusSeeOther)
	case errors.Is(err, billing.ErrOutcomeUnknown) || p.State == "declined":
		return c.Redirect(fmt.Sprintf("/payments/%d", p.ID), fiber.StatusSeeOther)
	case userError(err):
		return d.renderAccount(c, web.Status(err), err)
	}
	return err
}

func idParam(c *fiber.Ctx) (int64, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, fault.Invalid("id", "id_invalid")
	}
	return id, nil
}

// paymentPage shows a payment still waiting for the terminal, or declined.
func (d *Desk) paymentPage(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	p, err := d.Billing.Payment(c.UserContext(), id)
	if err != nil {
		return err
	}
	if p.Receipt != nil {
		return c.Redirect(fmt.Sprintf("/receipts/%d", p.Receipt.ID), fiber.StatusSeeOther)
	}
	data := fiber.Map{"Payment": p}
	if p.State == "unknown" || p.State == "sent" || p.State == "approved" {
		data["Refresh"] = 5
	}
	return render(c, fiber.StatusOK, "payment", "payment.title", data)
}

// checkPayment asks the terminal now about payments left waiting.
func (d *Desk) checkPayment(c *fiber.Ctx) error {
	if _, err := d.Billing.Resolve(c.UserContext()); err != nil {
		return err
	}
	return c.Redirect("/payments/"+c.Params("id"), fiber.StatusSeeOther)
}

func (d *Desk) receiptPage(c *fiber.Ctx) error {
	return d.renderReceipt(c, fiber.StatusOK, "", nil)
}

func (d *Desk) renderReceipt(c *fiber.Ctx, status int, form string, formErr error) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	rc, err := d.Billing.Receipt(c.UserContext(), id)
	if err != nil {
		return err
	}
	data := fiber.Map{"Receipt": rc, "Form": form}
	if formErr != nil {
		data["Error"] = message(c, formErr)
		data["Reason"] = c.FormValue("reason")
		data["RefundAmount"] = c.FormValue("amount")
	}
	switch c.Query("done") {
	case "paid", "reprinted", "voided", "refunded":
		data["Flash"] = web.T(web.Lang(c), "flash."+c.Query("done"), nil)
	}
	return render(c, status, "receipt", "receipt.title", data)
}

func (d *Desk) reprint(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	if err := d.Billing.Reprint(c.UserContext(), id); err != nil {
		return err
	}
	return c.Redirect(fmt.Sprintf("/receipts/%d?done=reprinted", id), fiber.StatusSeeOther)
}

// approver checks the supervisor's name and password typed at the desk.
func (d *Desk) approver(c *fiber.Ctx, purpose string) (auth.Actor, error) {
	name := strings.TrimSpace(c.FormValue("approver"))
	if name == "" {
		return auth.Actor{}, fault.Invalid("approver", "approval_required")
	}
	return d.Auth.Approve(c.UserContext(), name, c.FormValue("approver_password"), purpose, auth.Supervisor, auth.Admin)
}

func (d *Desk) void(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	ap, err := d.approver(c, fmt.Sprintf("void receipt %d", id))
	if err == nil {
		_, err = d.Billing.Void(c.UserContext(), id, c.FormValue("reason"), ap)
	}
	if err == nil {
		return c.Redirect(fmt.Sprintf("/receipts/%d?done=voided", id), fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderReceipt(c, web.Status(err), "void", err)
	}
	return err
}

func (d *Desk) refund(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	in := billing.RefundInput{ReceiptID: id, Method: c.FormValue("method"), Reason: c.FormValue("reason")}
	in.AmountFen, err = parseYuan(c.FormValue("amount"))
	var ap auth.Actor
	if err == nil {
		ap, err = d.approver(c, fmt.Sprintf("refund on receipt %d", id))
	}
	if err == nil {
		_, err = d.Billing.Refund(c.UserContext(), in, ap)
	}
	if err == nil {
		return c.Redirect(fmt.Sprintf("/receipts/%d?done=refunded", id), fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderReceipt(c, web.Status(err), "refund", err)
	}
	return err
}

// dayPage is the cashier's day: totals by method and the close form;
// supervisors see every operator of the day.
func (d *Desk) dayPage(c *fiber.Ctx) error { return d.renderDay(c, fiber.StatusOK, nil) }

func (d *Desk) renderDay(c *fiber.Ctx, status int, formErr error) error {
	a, _ := web.ActorOf(c)
	day := c.Query("day", d.Billing.Today())
	if formErr != nil {
		day = c.FormValue("day")
	}
	mine, err := d.Billing.Day(c.UserContext(), day, "staff", a.ID)
	if err != nil {
		if userError(err) {
			mine, err = d.Billing.Day(c.UserContext(), d.Billing.Today(), "staff", a.ID)
			day = d.Billing.Today()
		}
		if err != nil {
			return err
		}
	}
	data := fiber.Map{"Day": day, "Mine": mine, "Methods": []string{"cash", "card", "transfer", "qr"}, "Today": d.Billing.Today()}
	if abilityOf(a.Role, "manage") {
		ops, err := d.Billing.Operators(c.UserContext(), day)
		if err != nil {
			return err
		}
		data["Operators"] = ops
	}
	if formErr != nil {
		data["Error"] = message(c, formErr)
		data["Counted"] = c.FormValue("counted")
		data["Note"] = c.FormValue("note")
	}
	if c.Query("done") == "closed" {
		data["Flash"] = web.T(web.Lang(c), "flash.closed", nil)
	}
	return render(c, status, "day", "day.title", data)
}

func (d *Desk) closeDay(c *fiber.Ctx) error {
	in := billing.CloseInput{Day: c.FormValue("day"), OperatorKind: c.FormValue("operator_kind"), Note: c.FormValue("note")}
	in.OperatorID, _ = strconv.ParseInt(c.FormValue("operator_id"), 10, 64)
	counted, err := parseYuan(c.FormValue("counted"))
	if strings.TrimSpace(c.FormValue("counted")) == "" {
		counted, err = 0, nil
	}
	in.CountedFen = counted
	if err == nil {
		_, err = d.Billing.CloseDay(c.UserContext(), in)
	}
	if err == nil {
		return c.Redirect("/cashier/day?done=closed&day="+in.Day, fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderDay(c, web.Status(err), err)
	}
	return err
}

// dayReport downloads a day's books as XLSX (for finance).
func (d *Desk) dayReport(c *fiber.Ctx) error {
	day := c.Query("day", d.Billing.Today())
	var buf bytes.Buffer
	if err := d.Billing.DayReport(c.UserContext(), day, &buf); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="day-`+d.Estate.Site().Code+"-"+day+`.xlsx"`)
	c.Set(fiber.HeaderContentType, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	return c.Send(buf.Bytes())
}

func (d *Desk) printJobs(c *fiber.Ctx) error {
	jobs, err := d.Billing.PrintJobs(c.UserContext())
	if err != nil {
		return err
	}
	data := fiber.Map{"Jobs": jobs, "Printer": d.printerState(c.UserContext(), d.Printer)}
	if c.Query("done") == "retried" {
		data["Flash"] = web.T(web.Lang(c), "flash.retried", nil)
	}
	return render(c, fiber.StatusOK, "print_jobs", "print.title", data)
}

func (d *Desk) retryPrint(c *fiber.Ctx) error {
	id, err := idParam(c)
	if err != nil {
		return err
	}
	if err := d.Billing.RetryPrint(c.UserContext(), id); err != nil {
		return err
	}
	return c.Redirect("/print-jobs?done=retried", fiber.StatusSeeOther)
}

func (d *Desk) arrears(c *fiber.Ctx) error {
	building, _ := strconv.Atoi(c.Query("building"))
	list, err := d.Billing.Arrears(c.UserContext(), building)
	if err != nil {
		return err
	}
	var total int64
	for _, a := range list {
		total += a.OverdueFen
	}
	return render(c, fiber.StatusOK, "arrears", "arrears.title", fiber.Map{"Arrears": list, "Building": building, "Total": total})
}

// notice is a printable reminder for one unit (催缴通知单).
func (d *Desk) notice(c *fiber.Ctx) error {
	a, err := d.Billing.Account(c.UserContext(), c.Params("code"))
	if err != nil {
		return err
	}
	var overdue []billing.Bill
	for _, b := range a.Open {
		if b.DaysOverdue > 0 {
			overdue = append(overdue, b)
		}
	}
	return render(c, fiber.StatusOK, "notice", "notice.title", fiber.Map{"Account": a, "Overdue": overdue,
		"Capital": billing.Capital(a.OverdueFen), "Today": d.Billing.Today()})
}

func (d *Desk) fees(c *fiber.Ctx) error { return d.renderFees(c, fiber.StatusOK, nil, nil) }

func (d *Desk) renderFees(c *fiber.Ctx, status int, formErr error, gen *billing.Generated) error {
	items, err := d.Billing.FeeItems(c.UserContext())
	if err != nil {
		return err
	}
	st, err := d.Billing.Settings(c.UserContext())
	if err != nil {
		return err
	}
	data := fiber.Map{"Items": items, "Kinds": billing.Kinds, "Period": d.Billing.Today()[:7], "Generated": gen, "Settings": st,
		"LateRate": fmt.Sprintf("%.3f", float64(st.LateRatePerDayE5)/1000)}
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	if c.Query("done") == "saved" {
		data["Flash"] = web.T(web.Lang(c), "flash.saved", nil)
	}
	return render(c, status, "fees", "fees.title", data)
}

func (d *Desk) saveFee(c *fiber.Ctx) error {
	price, err := parseYuan(c.FormValue("price"))
	if err == nil {
		v, _ := strconv.Atoi(c.FormValue("version"))
		_, err = d.Billing.SaveFeeItem(c.UserContext(), billing.FeeItem{Code: c.FormValue("code"), Name: c.FormValue("name"),
			Kind: c.FormValue("kind"), PriceFen: price, Active: c.FormValue("active") != "", Version: v})
	}
	if err == nil {
		return c.Redirect("/fees?done=saved", fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderFees(c, web.Status(err), err, nil)
	}
	return err
}

// saveSettings changes the due day and the contractual late charge
// (entered in percent a day, e.g. 0.05).
func (d *Desk) saveSettings(c *fiber.Ctx) error {
	due, err := strconv.Atoi(strings.TrimSpace(c.FormValue("due_days")))
	if err != nil {
		return d.renderFees(c, fiber.StatusUnprocessableEntity, fault.Invalid("due_days", "due_days_invalid"), nil)
	}
	rate, err := strconv.ParseFloat(strings.TrimSpace(norm.NFKC.String(c.FormValue("late_rate"))), 64)
	if err != nil || rate < 0 || rate > 1 {
		return d.renderFees(c, fiber.StatusUnprocessableEntity, fault.Invalid("late_rate", "late_rate_invalid"), nil)
	}
	err = d.Billing.SaveSettings(c.UserContext(), billing.Settings{DueDays: due, LateRatePerDayE5: int(rate*1000 + 0.5)})
	if err == nil {
		return c.Redirect("/fees?done=saved", fiber.StatusSeeOther)
	}
	if userError(err) {
		return d.renderFees(c, web.Status(err), err, nil)
	}
	return err
}

func (d *Desk) generate(c *fiber.Ctx) error {
	g, err := d.Billing.Generate(c.UserContext(), strings.TrimSpace(c.FormValue("period")))
	if err != nil && !userError(err) {
		return err
	}
	if err != nil {
		return d.renderFees(c, web.Status(err), err, nil)
	}
	return d.renderFees(c, fiber.StatusOK, nil, &g)
}
