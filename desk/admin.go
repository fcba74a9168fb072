package desk

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"

	"onecard/auth"
	"onecard/estate"
	"onecard/fault"
	"onecard/web"
)

// rowMessage is one bad import row, translated.
type rowMessage struct {
	Line    int
	Field   string
	Message string
}

func (d *Desk) importPage(c *fiber.Ctx) error {
	return render(c, fiber.StatusOK, "import", "import.title", nil)
}

// MaxImportBytes caps an uploaded roll.
const MaxImportBytes = 10 << 20

func (d *Desk) importRoll(c *fiber.Ctx) error {
	res, err := d.runImport(c)
	if err == nil {
		return render(c, fiber.StatusOK, "import", "import.title", fiber.Map{"Result": res})
	}
	if !userError(err) {
		return err
	}
	data := fiber.Map{"Error": message(c, err)}
	var ie *estate.ImportError
	if errors.As(err, &ie) {
		lang := web.Lang(c)
		rows := make([]rowMessage, 0, len(ie.Rows))
		for _, r := range ie.Rows {
			rows = append(rows, rowMessage{Line: r.Line, Field: r.Field, Message: web.T(lang, "err."+r.Code, r.Args)})
		}
		data["Rows"] = rows
		data["Error"] = web.T(lang, "import.rejected", map[string]any{"count": len(rows)})
	}
	return render(c, web.Status(err), "import", "import.title", data)
}

func (d *Desk) runImport(c *fiber.Ctx) (estate.ImportResult, error) {
	fh, err := c.FormFile("file")
	if err != nil {
		return estate.ImportResult{}, fault.Invalid("file", "file_required")
	}
	if fh.Size > MaxImportBytes {
		return estate.ImportResult{}, fault.Invalid("file", "file_too_large")
	}
	format := strings.TrimPrefix(strings.ToLower(filepath.Ext(fh.Filename)), ".")
	if format != "csv" && format != "xlsx" {
		return estate.ImportResult{}, fault.Invalid("file", "file_format")
	}
	f, err := fh.Open()
	if err != nil {
		return estate.ImportResult{}, fmt.Errorf("desk: open upload: %w", err)
	}
	defer f.Close()
	rows, err := estate.ReadRoll(f, format)
	if err != nil {
		return estate.ImportResult{}, err
	}
	return d.Estate.ImportRoll(c.UserContext(), rows)
}

func (d *Desk) export(c *fiber.Ctx) error {
	format := c.Query("format", "xlsx")
	if format != "csv" && format != "xlsx" {
		return fault.Invalid("format", "file_format")
	}
	var buf bytes.Buffer
	if err := d.Estate.ExportRoll(c.UserContext(), &buf, format); err != nil {
		return err
	}
	name := fmt.Sprintf("roll-%s-%s.%s", d.Estate.Site().Code, d.Estate.Today(), format)
	c.Set(fiber.HeaderContentDisposition, `attachment; filename="`+name+`"`)
	if format == "csv" {
		c.Type("csv", "utf-8")
	} else {
		c.Set(fiber.HeaderContentType, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
	}
	return c.Send(buf.Bytes())
}

func (d *Desk) audit(c *fiber.Ctx) error {
	f := auth.AuditFilter{Actor: c.Query("actor"), Action: c.Query("action"), Entity: c.Query("entity"),
		EntityID: c.Query("entity_id"), Limit: 50}
	f.BeforeID, _ = strconv.ParseInt(c.Query("before"), 10, 64)
	if t, err := time.ParseInLocation("2006-01-02", c.Query("from"), d.loc); err == nil {
		f.From = t
	}
	if t, err := time.ParseInLocation("2006-01-02", c.Query("to"), d.loc); err == nil {
		f.To = t.AddDate(0, 0, 1)
	}
	rows, err := d.Auth.Audit(c.UserContext(), f)
	if err != nil {
		return err
	}
	data := fiber.Map{"Rows": rows, "F": f, "From": c.Query("from"), "To": c.Query("to")}
	if len(rows) == f.Limit {
		q := url.Values{}
		for _, k := range []string{"actor", "action", "entity", "entity_id", "from", "to"} {
			if v := c.Query(k); v != "" {
				q.Set(k, v)
			}
		}
		q.Set("before", strconv.FormatInt(rows[len(rows)-1].ID, 10))
		data["Next"] = "/audit?" + q.Encode()
	}
	return render(c, fiber.StatusOK, "audit", "audit.title", data)
}

func (d *Desk) staff(c *fiber.Ctx) error { return d.renderStaff(c, fiber.StatusOK, "", nil, nil) }

func (d *Desk) renderStaff(c *fiber.Ctx, status int, flash string, form map[string]string, err error) error {
	list, lerr := d.Auth.ListStaff(c.UserContext())
	if lerr != nil {
		return lerr
	}
	data := fiber.Map{"Staff": list, "Roles": auth.Roles, "Flash": flash, "Form": form}
	if err != nil {
		data["Error"] = message(c, err)
	}
	return render(c, status, "staff", "staff.title", data)
}

func (d *Desk) addStaff(c *fiber.Ctx) error {
	form := map[string]string{"username": c.FormValue("username"), "display_name": c.FormValue("display_name")}
	_, err := d.Auth.CreateStaff(c.UserContext(), auth.NewStaff{Username: form["username"], DisplayName: form["display_name"],
		Role: auth.Role(c.FormValue("role")), Password: c.FormValue("password")})
	return d.afterStaff(c, err, "flash.staff_added", form)
}

func (d *Desk) afterStaff(c *fiber.Ctx, err error, okKey string, form map[string]string) error {
	if err != nil && !userError(err) {
		return err
	}
	if err != nil {
		return d.renderStaff(c, web.Status(err), "", form, err)
	}
	return d.renderStaff(c, fiber.StatusOK, web.T(web.Lang(c), okKey, nil), nil, nil)
}

func (d *Desk) resetPassword(c *fiber.Ctx) error {
	err := d.Auth.ResetPassword(c.UserContext(), c.Params("username"), c.FormValue("password"))
	return d.afterStaff(c, err, "flash.password_reset", nil)
}

func (d *Desk) disableStaff(c *fiber.Ctx) error {
	return d.afterStaff(c, d.Auth.SetDisabled(c.UserContext(), c.Params("username"), true), "flash.staff_disabled", nil)
}

func (d *Desk) enableStaff(c *fiber.Ctx) error {
	return d.afterStaff(c, d.Auth.SetDisabled(c.UserContext(), c.Params("username"), false), "flash.staff_enabled", nil)
}

func (d *Desk) tokens(c *fiber.Ctx) error { return d.renderTokens(c, fiber.StatusOK, "", nil) }

func (d *Desk) renderTokens(c *fiber.Ctx, status int, newToken string, err error) error {
	list, lerr := d.Auth.ListTokens(c.UserContext())
	if lerr != nil {
		return lerr
	}
	data := fiber.Map{"Tokens": list, "Roles": auth.Roles, "NewToken": newToken}
	if err != nil {
		data["Error"] = message(c, err)
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return render(c, status, "tokens", "tokens.title", data)
}

func (d *Desk) createToken(c *fiber.Ctx) error {
	_, value, err := d.Auth.CreateToken(c.UserContext(), c.FormValue("name"), auth.Role(c.FormValue("role")))
	if err != nil {
		if !userError(err) {
			return err
		}
		return d.renderTokens(c, web.Status(err), "", err)
	}
	return d.renderTokens(c, fiber.StatusOK, value, nil)
}

func (d *Desk) revokeToken(c *fiber.Ctx) error {
	id, _ := strconv.ParseInt(c.Params("id"), 10, 64)
	if err := d.Auth.RevokeToken(c.UserContext(), id); err != nil {
		return err
	}
	return c.Redirect("/tokens", fiber.StatusSeeOther)
}
