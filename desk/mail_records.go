package desk

import (
	"bytes"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/gofiber/fiber/v2"

	"onecard/fault"
	"onecard/mailroom"
	"onecard/web"
)

// lockersPage is the locker bank: every door with its state, and the
// doors' openings, failed ones to retry.
func (d *Desk) lockersPage(c *fiber.Ctx) error { return d.renderLockers(c, fiber.StatusOK, nil) }

func (d *Desk) renderLockers(c *fiber.Ctx, status int, formErr error) error {
	doors, err := d.Mail.Doors(c.UserContext())
	if err != nil {
		return err
	}
	cmds, err := d.Mail.Commands(c.UserContext())
	if err != nil {
		return err
	}
	slices.Reverse(cmds) // newest first
	data := fiber.Map{"Doors": doors, "Commands": cmds, "HasLocker": d.Mail.HasLocker()}
	doneFlash(c, data)
	d.demoData(c, data)
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "mail_lockers", "mail.lockers", data)
}

// doorAction runs a change on the door in the path and goes back to the
// bank, or shows it with the reason it was refused.
func (d *Desk) doorAction(c *fiber.Ctx, done string, act func(door int) error) error {
	door, err := strconv.Atoi(c.Params("door"))
	if err != nil {
		return fault.NotFound("door_not_found")
	}
	if err := act(door); err != nil {
		if userError(err) {
			return d.renderLockers(c, web.Status(err), err)
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/mail/lockers?done=%s&door=%d", done, door), fiber.StatusSeeOther)
}

func (d *Desk) flagDoor(c *fiber.Ctx) error {
	return d.doorAction(c, "flagged", func(door int) error { return d.Mail.FlagDoor(c.UserContext(), door, c.FormValue("note")) })
}

func (d *Desk) unflagDoor(c *fiber.Ctx) error {
	return d.doorAction(c, "unflagged", func(door int) error { return d.Mail.UnflagDoor(c.UserContext(), door) })
}

func (d *Desk) openDoor(c *fiber.Ctx) error {
	return d.doorAction(c, "opened", func(door int) error {
		_, err := d.Mail.OpenDoor(c.UserContext(), door, c.FormValue("reason"))
		return err
	})
}

func (d *Desk) retryMailCommand(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fault.NotFound("command_not_found")
	}
	cmd, err := d.Mail.RetryCommand(c.UserContext(), id)
	if err != nil {
		if userError(err) {
			return d.renderLockers(c, web.Status(err), err)
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/mail/lockers?done=retried&door=%d", cmd.Door), fiber.StatusSeeOther)
}

// outgoingPage takes outgoing mail and lists a day's (today's).
func (d *Desk) outgoingPage(c *fiber.Ctx) error {
	return d.renderOutgoing(c, fiber.StatusOK, mailroom.OutgoingInput{Method: mailroom.Express}, nil)
}

func (d *Desk) renderOutgoing(c *fiber.Ctx, status int, in mailroom.OutgoingInput, formErr error) error {
	day := c.Query("day", d.Estate.Today())
	data := fiber.Map{"Day": day, "In": in, "Methods": mailroom.Methods}
	list, err := d.Mail.OutgoingOn(c.UserContext(), day)
	if err != nil {
		if !userError(err) {
			return err
		}
		formErr = err
	}
	data["Outgoing"] = list
	doneFlash(c, data)
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "mail_outgoing", "mail.outgoing", data)
}

func (d *Desk) registerOutgoing(c *fiber.Ctx) error {
	in := mailroom.OutgoingInput{Unit: strings.TrimSpace(c.FormValue("unit")), Sender: c.FormValue("sender"), Addressee: c.FormValue("addressee"),
		Method: c.FormValue("method"), Tracking: c.FormValue("tracking")}
	if _, err := d.Mail.RegisterOutgoing(c.UserContext(), in); err != nil {
		if userError(err) {
			return d.renderOutgoing(c, web.Status(err), in, err)
		}
		return err
	}
	return c.Redirect("/mail/outgoing?done=outgoing", fiber.StatusSeeOther)
}

// mailRegister is the day's register (SOP §3), to print or download.
func (d *Desk) mailRegister(c *fiber.Ctx) error {
	day := c.Query("day", d.Estate.Today())
	data := fiber.Map{"Day": day}
	status := fiber.StatusOK
	rows, err := d.Mail.DailyRegister(c.UserContext(), day)
	if err == nil {
		var out []mailroom.Outgoing
		if out, err = d.Mail.OutgoingOn(c.UserContext(), day); err == nil {
			data["Rows"], data["Outgoing"] = rows, out
		}
	}
	if err != nil {
		if !userError(err) {
			return err
		}
		data["Error"], status = message(c, err), web.Status(err)
	}
	return render(c, status, "mail_register", "mail.register", data)
}

func (d *Desk) mailRegisterXLSX(c *fiber.Ctx) error {
	day := c.Query("day", d.Estate.Today())
	var buf bytes.Buffer
	if err := d.Mail.DailyRegisterXLSX(c.UserContext(), day, &buf); err != nil {
		return err
	}
	c.Set(fiber.HeaderContentDisposition, fmt.Sprintf(`attachment; filename="mail-register-%s.xlsx"`, day))
	c.Type("xlsx")
	return c.Send(buf.Bytes())
}

// mailHistory is the story of a tracking number.
func (d *Desk) mailHistory(c *fiber.Ctx) error {
	tracking := strings.TrimSpace(c.Query("tracking"))
	data := fiber.Map{"Tracking": tracking}
	status := fiber.StatusOK
	if tracking != "" {
		events, err := d.Mail.History(c.UserContext(), tracking)
		if err != nil {
			if !userError(err) {
				return err
			}
			data["Error"], status = message(c, err), web.Status(err)
		}
		data["Events"] = events
	}
	return render(c, status, "mail_history", "mail.history", data)
}

// notificationsPage is the outbox of notices to residents.
func (d *Desk) notificationsPage(c *fiber.Ctx) error {
	return d.renderNotifications(c, fiber.StatusOK, nil)
}

func (d *Desk) renderNotifications(c *fiber.Ctx, status int, formErr error) error {
	list, err := d.Mail.Notifications(c.UserContext())
	if err != nil {
		return err
	}
	data := fiber.Map{"Notifications": list}
	doneFlash(c, data)
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "mail_notifications", "mail.notifications", data)
}

func (d *Desk) retryNotification(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fault.NotFound("notification_not_found")
	}
	if err := d.Mail.RetryNotification(c.UserContext(), id); err != nil {
		if userError(err) {
			return d.renderNotifications(c, web.Status(err), err)
		}
		return err
	}
	return c.Redirect("/mail/notifications?done=retried", fiber.StatusSeeOther)
}

// mailSettings are the site's hold periods, reminders, locker and
// signature rules.
func (d *Desk) mailSettings(c *fiber.Ctx) error {
	st, err := d.Mail.Settings(c.UserContext())
	if err != nil {
		return err
	}
	return d.renderMailSettings(c, fiber.StatusOK, st, nil)
}

func (d *Desk) renderMailSettings(c *fiber.Ctx, status int, st mailroom.Settings, formErr error) error {
	data := fiber.Map{"S": st, "Types": mailroom.Types}
	doneFlash(c, data)
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "mail_settings", "mail.settings", data)
}

func (d *Desk) saveMailSettings(c *fiber.Ctx) error {
	n := func(name string) int {
		v, _ := strconv.Atoi(strings.TrimSpace(c.FormValue(name)))
		return v
	}
	st := mailroom.Settings{ReminderDays: n("reminder_days"), HoldDays: n("hold_days"), MovedOutHoldDays: n("moved_out_hold_days"),
		ConsentHoldDays: n("consent_hold_days"), DoorOpenAlertSeconds: n("door_open_alert_seconds"), CodeAttempts: n("code_attempts"),
		CodeLockMinutes: n("code_lock_minutes"), SignatureRetentionDays: n("signature_retention_days"), SignatureTypes: []string{}}
	for _, t := range c.Request().PostArgs().PeekMulti("signature_types") {
		st.SignatureTypes = append(st.SignatureTypes, string(t))
	}
	if err := d.Mail.SaveSettings(c.UserContext(), st); err != nil {
		if userError(err) {
			return d.renderMailSettings(c, web.Status(err), st, err)
		}
		return err
	}
	return c.Redirect("/mail/settings?done=saved", fiber.StatusSeeOther)
}
