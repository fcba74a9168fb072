package api

import (
	"strconv"
	"time"

	"github.com/gofiber/fiber/v2"

	"onecard/auth"
	"onecard/fault"
	"onecard/web"
)

func (a *API) audit(c *fiber.Ctx) error {
	f := auth.AuditFilter{Actor: c.Query("actor"), Action: c.Query("action"), Entity: c.Query("entity"), EntityID: c.Query("entity_id")}
	var err error
	if f.Limit, err = strconv.Atoi(c.Query("limit", "100")); err != nil || f.Limit < 1 || f.Limit > 500 {
		return fault.Invalid("limit", "limit_invalid", "max", 500)
	}
	if v := c.Query("before"); v != "" {
		if f.BeforeID, err = strconv.ParseInt(v, 10, 64); err != nil {
			return fault.Invalid("before", "id_invalid")
		}
	}
	for name, dst := range map[string]*time.Time{"from": &f.From, "to": &f.To} {
		if v := c.Query(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return fault.Invalid(name, "time_invalid")
			}
			*dst = t
		}
	}
	rows, err := a.Auth.Audit(c.UserContext(), f)
	if err != nil {
		return err
	}
	if rows == nil {
		rows = []auth.AuditRow{}
	}
	return c.JSON(list[auth.AuditRow]{Items: rows, Total: len(rows)})
}

func (a *API) listStaff(c *fiber.Ctx) error {
	s, err := a.Auth.ListStaff(c.UserContext())
	if err != nil {
		return err
	}
	return c.JSON(list[auth.Staff]{Items: s, Total: len(s)})
}

func (a *API) createStaff(c *fiber.Ctx) error {
	var in auth.NewStaff
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	s, err := a.Auth.CreateStaff(c.UserContext(), in)
	if err != nil {
		return err
	}
	return c.Status(fiber.StatusCreated).JSON(s)
}

func (a *API) resetPassword(c *fiber.Ctx) error {
	var in struct {
		Password string `json:"password"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	if err := a.Auth.ResetPassword(c.UserContext(), c.Params("username"), in.Password); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}

func (a *API) listTokens(c *fiber.Ctx) error {
	t, err := a.Auth.ListTokens(c.UserContext())
	if err != nil {
		return err
	}
	if t == nil {
		t = []auth.Token{}
	}
	return c.JSON(list[auth.Token]{Items: t, Total: len(t)})
}

func (a *API) createToken(c *fiber.Ctx) error {
	var in struct {
		Name string    `json:"name"`
		Role auth.Role `json:"role"`
	}
	if err := web.DecodeJSON(c, &in); err != nil {
		return err
	}
	t, value, err := a.Auth.CreateToken(c.UserContext(), in.Name, in.Role)
	if err != nil {
		return err
	}
	c.Set(fiber.HeaderCacheControl, "no-store")
	return c.Status(fiber.StatusCreated).JSON(fiber.Map{"token": t, "value": value})
}

func (a *API) revokeToken(c *fiber.Ctx) error {
	id, err := idParam(c, "id")
	if err != nil {
		return err
	}
	if err := a.Auth.RevokeToken(c.UserContext(), id); err != nil {
		return err
	}
	return c.SendStatus(fiber.StatusNoContent)
}
