package desk

import (
	"fmt"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"onecard/estate"
	"onecard/fault"
	"onecard/mailroom"
	"onecard/web"
)

// registerMail mounts the mail room's desk screens (SOP §3): the clerk
// registers a courier's drop, keeps it on a shelf or in the locker bank,
// hands items over against a signature and keeps the records.
func (d *Desk) registerMail(g *web.Group) {
	w := web.DirectoryWriters
	g.Get("/mail", w, d.mailPage)
	g.Post("/mail/reminders", w, d.mailReminders)
	g.Post("/mail/return", w, d.mailReturn)
	g.Get("/mail/new", w, d.newMail)
	g.Post("/mail/new", w, d.registerMailBatch)
	g.Get("/mail/units", w, d.mailUnits)
	g.Get("/mail/scans", w, d.mailScans)
	g.Get("/mail/items/:id", w, d.mailItem)
	g.Get("/mail/items/:id/signature.png", w, d.mailSignature)
	g.Post("/mail/items/:id/collect", w, d.collectMail)
	g.Post("/mail/items/:id/shelve", w, d.shelveMail)
	g.Post("/mail/items/:id/locker", w, d.placeMail)
	g.Post("/mail/items/:id/open", w, d.openMailDoor)
	g.Post("/mail/items/:id/code", w, d.reissueMailCode)
	g.Post("/mail/items/:id/hold", w, d.holdMail)
	g.Get("/mail/lockers", w, d.lockersPage)
	g.Post("/mail/doors/:door/flag", w, d.flagDoor)
	g.Post("/mail/doors/:door/unflag", w, d.unflagDoor)
	g.Post("/mail/doors/:door/open", w, d.openDoor)
	g.Get("/mail/commands/:id", w, d.mailCommand)
	g.Post("/mail/commands/:id/retry", w, d.retryMailCommand)
	g.Get("/mail/outgoing", w, d.outgoingPage)
	g.Post("/mail/outgoing", w, d.registerOutgoing)
	g.Get("/mail/register", w, d.mailRegister)
	g.Get("/mail/register.xlsx", w, d.mailRegisterXLSX)
	g.Get("/mail/history", w, d.mailHistory)
	g.Get("/mail/notifications", w, d.notificationsPage)
	g.Post("/mail/notifications/:id/retry", w, d.retryNotification)
	g.Get("/mail/settings", web.Managers, d.mailSettings)
	g.Post("/mail/settings", web.Managers, d.saveMailSettings)
}

// What the mail pages say after a step (their ?done=).
var mailDone = map[string]string{
	"reminded": "mail.done_reminded", "returned": "mail.done_returned", "collected": "mail.done_collected",
	"shelved": "mail.done_shelved", "placed": "mail.done_placed", "opened": "mail.done_opened", "code": "mail.done_code",
	"held": "mail.done_held", "flagged": "mail.done_flagged", "unflagged": "mail.done_unflagged", "retried": "mail.done_retried",
	"outgoing": "mail.done_outgoing", "saved": "mail.done_saved",
}

// doneFlash sets the page's flash from its ?done= (n and door filled in).
func doneFlash(c *fiber.Ctx, data fiber.Map) {
	if key, ok := mailDone[c.Query("done")]; ok {
		data["Flash"] = web.T(web.Lang(c), key, map[string]any{"n": c.QueryInt("n"), "door": c.QueryInt("door")})
	}
}

// carriers are offered for the batch's carrier (any other may be typed).
var carriers = []string{"顺丰速运", "中国邮政", "EMS", "京东物流", "中通快递", "圆通速递", "韵达快递", "申通快递", "极兔速递", "德邦快递"}

// mailRow is a listed item with how long it has waited.
type mailRow struct {
	mailroom.Item
	Days   int
	Remind bool // waiting past the reminder days
}

// daysSince counts the days from day to today (both YYYY-MM-DD).
func daysSince(day, today string) int {
	a, err1 := time.Parse(time.DateOnly, day)
	b, err2 := time.Parse(time.DateOnly, today)
	if err1 != nil || err2 != nil {
		return 0
	}
	return max(0, int(b.Sub(a).Hours()+12)/24)
}

// mailPage is the mail room at a glance: waiting items by age and in a
// list, those due a reminder or a return; a search by unit or tracking
// number.
func (d *Desk) mailPage(c *fiber.Ctx) error { return d.renderMail(c, fiber.StatusOK, nil) }

func (d *Desk) renderMail(c *fiber.Ctx, status int, formErr error) error {
	ctx := c.UserContext()
	q := strings.TrimSpace(c.Query("q"))
	if q != "" {
		if _, err := estate.ParseUnitCode(q); err != nil {
			return c.Redirect("/mail/history?"+url.Values{"tracking": {q}}.Encode(), fiber.StatusSeeOther)
		}
	}
	now := time.Now()
	st, err := d.Mail.Settings(ctx)
	if err != nil {
		return err
	}
	buckets, err := d.Mail.WaitingByAge(ctx, now)
	if err != nil {
		return err
	}
	due, err := d.Mail.DueForReturn(ctx, now)
	if err != nil {
		return err
	}
	data := fiber.Map{"Q": q, "Buckets": buckets, "Due": due, "Settings": st}
	query := mailroom.Query{State: mailroom.StateWaiting, Limit: 500}
	if q != "" {
		query = mailroom.Query{Unit: q, Limit: 200}
	}
	items, err := d.Mail.Find(ctx, query)
	if err != nil && !userError(err) {
		return err
	}
	if err != nil {
		data["Error"] = message(c, err)
	}
	if q == "" {
		slices.Reverse(items) // oldest first: they need the clerk most
	}
	today := d.Estate.Today()
	rows := make([]mailRow, len(items))
	reminders := 0
	for i, it := range items {
		rows[i] = mailRow{Item: it, Days: daysSince(it.RegisteredOn, today)}
		rows[i].Remind = it.State == mailroom.StateWaiting && rows[i].Days >= st.ReminderDays
		if rows[i].Remind {
			reminders++
		}
	}
	data["Items"], data["Reminders"] = rows, reminders
	doneFlash(c, data)
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "mail", "mail.title", data)
}

// mailReminders queues today's reminders (once per item and day).
func (d *Desk) mailReminders(c *fiber.Ctx) error {
	items, err := d.Mail.Reminders(c.UserContext(), time.Now())
	if err != nil {
		return err
	}
	return c.Redirect(fmt.Sprintf("/mail?done=reminded&n=%d", len(items)), fiber.StatusSeeOther)
}

// mailReturn records the items ticked as returned to the courier.
func (d *Desk) mailReturn(c *fiber.Ctx) error {
	items, err := d.Mail.ReturnToCourier(c.UserContext(), formIDs(c, "item_ids"), c.FormValue("note"))
	if err != nil {
		if userError(err) {
			return d.renderMail(c, web.Status(err), err)
		}
		return err
	}
	return c.Redirect(fmt.Sprintf("/mail?done=returned&n=%d", len(items)), fiber.StatusSeeOther)
}

// formIDs reads the ids a form posted under name (ticked boxes).
func formIDs(c *fiber.Ctx, name string) []int64 {
	var out []int64
	for _, v := range c.Request().PostArgs().PeekMulti(name) {
		if id, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// batchRow is one row of the batch form as typed, with what became of it.
type batchRow struct {
	Index int
	mailroom.RegisterInput
	Size string
	Err  string
}

func (r batchRow) blank() bool {
	return strings.TrimSpace(r.Tracking+r.Unit+r.Recipient+r.DamageNote) == ""
}

// batchDone is a registered item of the batch, with its door's opening.
type batchDone struct {
	Item    mailroom.Item
	Command *mailroom.Command
	Err     string
}

// nextRow is an empty row that keeps the type and the place of prev,
// as the clerk often files a drop's items alike.
func nextRow(index int, prev *batchRow) batchRow {
	r := batchRow{Index: index, RegisterInput: mailroom.RegisterInput{Type: mailroom.Express, Condition: mailroom.ConditionOK,
		Storage: mailroom.StorageShelf}, Size: "S"}
	if prev != nil {
		r.Type, r.Storage, r.Slot, r.Size = prev.Type, prev.Storage, prev.Slot, prev.Size
	}
	return r
}

// batchRows reads the rows of the batch form: fields named tracking-N,
// type-N, unit-N … (a select is always posted, so type-N numbers them).
func batchRows(c *fiber.Ctx) []batchRow {
	var idx []int
	c.Request().PostArgs().VisitAll(func(k, _ []byte) {
		if n, ok := strings.CutPrefix(string(k), "type-"); ok {
			if i, err := strconv.Atoi(n); err == nil && i >= 0 && i < 1000 && !slices.Contains(idx, i) {
				idx = append(idx, i)
			}
		}
	})
	sort.Ints(idx)
	if len(idx) > 100 {
		idx = idx[:100]
	}
	carrier := c.FormValue("carrier")
	out := make([]batchRow, 0, len(idx))
	for _, i := range idx {
		f := func(name string) string { return c.FormValue(name + "-" + strconv.Itoa(i)) }
		out = append(out, batchRow{Index: i, Size: f("size"), RegisterInput: mailroom.RegisterInput{
			Type: f("type"), Carrier: carrier, Tracking: strings.TrimSpace(f("tracking")), Unit: strings.TrimSpace(f("unit")),
			Recipient: f("recipient"), Condition: f("condition"), DamageNote: f("damage_note"), Countersigned: f("countersigned") != "",
			Storage: f("storage"), Slot: f("slot")}})
	}
	return out
}

// newMail is the batch form; after a batch, the items just registered.
func (d *Desk) newMail(c *fiber.Ctx) error {
	var done []batchDone
	if ids := c.Query("done"); ids != "" {
		cmds, err := d.Mail.Commands(c.UserContext())
		if err != nil {
			return err
		}
		for _, s := range strings.Split(ids, ",") {
			id, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				continue
			}
			it, err := d.Mail.Item(c.UserContext(), id)
			if err != nil {
				continue
			}
			b := batchDone{Item: it}
			for i := range cmds {
				if cmds[i].ItemID != nil && *cmds[i].ItemID == id && cmds[i].Purpose == "store" {
					b.Command = &cmds[i]
				}
			}
			done = append(done, b)
		}
	}
	return d.renderBatch(c, fiber.StatusOK, c.Query("carrier"), []batchRow{nextRow(0, nil)}, done, nil)
}

func (d *Desk) renderBatch(c *fiber.Ctx, status int, carrier string, rows []batchRow, done []batchDone, formErr error) error {
	data := fiber.Map{"Carrier": carrier, "Carriers": carriers, "Rows": rows, "Done": done, "Types": mailroom.Types,
		"Sizes": mailroom.Sizes, "HasLocker": d.Mail.HasLocker(), "Scans": d.Scans != nil}
	d.demoData(c, data)
	if formErr != nil {
		data["Error"] = message(c, formErr)
	}
	return render(c, status, "mail_new", "mail.new", data)
}

// registerMailBatch registers the rows filled in, each on its own: good
// rows are registered (and their locker doors opened), refused rows stay
// in the form with the reason beside them.
func (d *Desk) registerMailBatch(c *fiber.Ctx) error {
	ctx := c.UserContext()
	carrier := strings.TrimSpace(c.FormValue("carrier"))
	rows := batchRows(c)
	if c.FormValue("action") == "add" { // "next" without the script
		var last *batchRow
		next := 0
		if len(rows) > 0 {
			last = &rows[len(rows)-1]
			next = last.Index + 1
		}
		return d.renderBatch(c, fiber.StatusOK, carrier, append(rows, nextRow(next, last)), nil, nil)
	}
	var todo []batchRow
	for _, r := range rows {
		if !r.blank() {
			todo = append(todo, r)
		}
	}
	if len(todo) == 0 {
		if len(rows) == 0 {
			rows = []batchRow{nextRow(0, nil)}
		}
		return d.renderBatch(c, fiber.StatusUnprocessableEntity, carrier, rows, nil, fault.Invalid("rows", "mail_rows_required"))
	}
	in := make([]mailroom.RegisterInput, len(todo))
	for i, r := range todo {
		in[i] = r.RegisterInput
	}
	var done []batchDone
	var failed []batchRow
	placeFailed := false
	for i, res := range d.Mail.RegisterBatch(ctx, in) {
		if res.Err != nil {
			if !userError(res.Err) {
				return res.Err
			}
			r := todo[i]
			r.Err = message(c, res.Err)
			failed = append(failed, r)
			continue
		}
		b := batchDone{Item: res.Item}
		if res.Item.Storage == mailroom.StorageLocker {
			cmd, err := d.Mail.PlaceInLocker(ctx, res.Item.ID, todo[i].Size)
			switch {
			case err == nil:
				b.Command = &cmd
			case userError(err):
				b.Err, placeFailed = message(c, err), true
			default:
				return err
			}
		}
		done = append(done, b)
	}
	if len(failed) == 0 && !placeFailed {
		ids := make([]string, len(done))
		for i, b := range done {
			ids[i] = strconv.FormatInt(b.Item.ID, 10)
		}
		return c.Redirect("/mail/new?"+url.Values{"carrier": {carrier}, "done": {strings.Join(ids, ",")}}.Encode(), fiber.StatusSeeOther)
	}
	status := fiber.StatusOK
	if len(failed) > 0 {
		status = fiber.StatusUnprocessableEntity
	} else {
		failed = []batchRow{nextRow(todo[len(todo)-1].Index+1, &todo[len(todo)-1])}
	}
	return d.renderBatch(c, status, carrier, failed, done, nil)
}

// unitHint is a unit offered as the clerk types.
type unitHint struct {
	Code      string   `json:"code"`
	Residents []string `json:"residents"`
}

// mailUnits is the unit type-ahead: units whose code starts with q, or
// whose current residents' names or phones contain it.
func (d *Desk) mailUnits(c *fiber.Ctx) error {
	out := []unitHint{}
	q := strings.TrimSpace(c.Query("q"))
	if q == "" {
		return c.JSON(out)
	}
	units, _, err := d.Estate.Search(c.UserContext(), estate.Query{Q: q, Limit: 8})
	if err != nil {
		if userError(err) {
			return c.JSON(out)
		}
		return err
	}
	for _, u := range units {
		h := unitHint{Code: u.Code, Residents: []string{}}
		for _, o := range u.Residents {
			h.Residents = append(h.Residents, o.Name)
		}
		out = append(out, h)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}

// mailScans streams the desk scanner's codes to the batch form
// (server-sent events), with a comment every 15 s so proxies keep the
// connection open.
func (d *Desk) mailScans(c *fiber.Ctx) error {
	if d.Scans == nil {
		return fault.NotFound("scanner_not_connected")
	}
	codes, stop := d.Scans()
	return web.Stream(c, codes, stop, d.Stopping, func(code string) (any, bool) {
		return map[string]string{"code": code}, true
	})
}

// Labels of a locker command's states and failure reasons.
var (
	cmdStateKeys = map[string]string{mailroom.CmdQueued: "mail_cmd.queued", mailroom.CmdSent: "mail_cmd.sent",
		mailroom.CmdOpen: "mail_cmd.open", mailroom.CmdDone: "mail_cmd.done", mailroom.CmdFailed: "mail_cmd.failed"}
	cmdReasonKeys = map[string]string{"not_opened": "mail_reason.not_opened", "no_answer": "mail_reason.no_answer",
		"port_failed": "mail_reason.port_failed", "interrupted": "mail_reason.interrupted", "error": "mail_reason.error"}
)

// attentionKeys put an item's Attention in words, by the failed
// command's purpose.
var attentionKeys = map[string]string{"store": "mail_attention.store", "pickup": "mail_attention.pickup", "service": "mail_attention.service"}

// attentionText is what staff should do about an item, or "".
func attentionText(lang string, it mailroom.Item) string {
	if it.Attention == "" {
		return ""
	}
	purpose, reason, door := it.AttentionParts()
	key, ok := attentionKeys[purpose]
	if !ok {
		return it.Attention
	}
	why := reason
	if k, ok := cmdReasonKeys[reason]; ok {
		why = web.T(lang, k, nil)
	}
	return web.T(lang, key, map[string]any{"door": door, "reason": why})
}

// mailCommand is a locker door's opening, for a page following it.
func (d *Desk) mailCommand(c *fiber.Ctx) error {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	if err != nil {
		return fault.NotFound("command_not_found")
	}
	cmd, err := d.Mail.Command(c.UserContext(), id)
	if err != nil {
		return err
	}
	lang := web.Lang(c)
	out := fiber.Map{"id": cmd.ID, "door": cmd.Door, "state": cmd.State, "state_label": web.T(lang, cmdStateKeys[cmd.State], nil)}
	if key, ok := cmdReasonKeys[cmd.Reason]; ok {
		out["reason_label"] = web.T(lang, key, nil)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.JSON(out)
}
