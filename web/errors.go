package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strings"

	"github.com/gofiber/fiber/v2"

	"onecard/fault"
)

// Status maps an error to its HTTP status, in this one place.
func Status(err error) int {
	var fe *fiber.Error
	switch {
	case errors.As(err, &fe):
		return fe.Code
	case errors.Is(err, fault.ErrInvalid):
		return fiber.StatusUnprocessableEntity
	case errors.Is(err, fault.ErrNotFound):
		return fiber.StatusNotFound
	case errors.Is(err, fault.ErrConflict):
		return fiber.StatusConflict
	case errors.Is(err, fault.ErrForbidden):
		return fiber.StatusForbidden
	case errors.Is(err, fault.ErrAuth):
		return fiber.StatusUnauthorized
	case errors.Is(err, fault.ErrLocked):
		return fiber.StatusTooManyRequests
	}
	return fiber.StatusInternalServerError
}

// ErrorBody is the JSON shape of every API error.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail carries a stable code for programs and a translated message
// for people.
type ErrorDetail struct {
	Code      string         `json:"code"`
	Message   string         `json:"message"`
	Field     string         `json:"field,omitempty"`
	Args      map[string]any `json:"args,omitempty"`
	RequestID string         `json:"request_id,omitempty"`
	// Rows lists per-line problems of an import.
	Rows any `json:"rows,omitempty"`
}

// Detail builds the error body for err in lang.
func Detail(c *fiber.Ctx, err error) ErrorDetail {
	status := Status(err)
	code := fault.Code(err)
	var fe *fiber.Error
	if errors.As(err, &fe) {
		code = httpCode(fe.Code)
	}
	if status == fiber.StatusInternalServerError {
		code = "internal"
	}
	d := ErrorDetail{Code: code, RequestID: RequestID(c)}
	if e, ok := fault.As(err); ok && status != fiber.StatusInternalServerError {
		d.Field, d.Args = e.Field, e.Args
	}
	d.Message = T(Lang(c), "err."+code, d.Args)
	return d
}

func httpCode(status int) string {
	switch status {
	case fiber.StatusNotFound:
		return "not_found"
	case fiber.StatusMethodNotAllowed:
		return "method_not_allowed"
	case fiber.StatusRequestEntityTooLarge:
		return "too_large"
	case fiber.StatusTooManyRequests:
		return "too_many_requests"
	case fiber.StatusBadRequest:
		return "bad_request"
	case fiber.StatusUnsupportedMediaType:
		return "unsupported_media_type"
	}
	return "http_error"
}

// IsAPI reports whether the request is for the JSON API.
func IsAPI(c *fiber.Ctx) bool { return strings.HasPrefix(c.Path(), "/api/") }

// ErrorHandler renders errors: JSON under /api, an HTML page elsewhere.
// Internal errors are logged with their detail and shown without it.
func ErrorHandler(c *fiber.Ctx, err error) error {
	status := Status(err)
	if status >= 500 {
		slog.Error("request failed", "request_id", RequestID(c), "method", c.Method(), "path", c.Path(), "err", err)
	}
	d := Detail(c, err)
	if IsAPI(c) {
		return c.Status(status).JSON(ErrorBody{Error: d})
	}
	c.Status(status)
	return c.Render("error", Page(c, "err.title", fiber.Map{"Status": status, "Error": d}))
}

// DecodeJSON reads a JSON body strictly: one object, no unknown fields.
func DecodeJSON(c *fiber.Ctx, v any) error {
	ct := c.Get(fiber.HeaderContentType)
	if !strings.HasPrefix(ct, fiber.MIMEApplicationJSON) {
		return fault.Invalid("body", "json_required")
	}
	dec := json.NewDecoder(bytes.NewReader(c.Body()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var ute *json.UnmarshalTypeError
		var fe *fault.Error
		switch {
		case errors.As(err, &fe):
			return fe
		case errors.As(err, &ute):
			return fault.Invalid(ute.Field, "wrong_type", "field", ute.Field)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
			return fault.Invalid(name, "unknown_field", "field", name)
		case errors.Is(err, io.EOF):
			return fault.Invalid("body", "body_empty")
		}
		return fault.Invalid("body", "invalid_json")
	}
	if dec.More() {
		return fault.Invalid("body", "invalid_json")
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); err != io.EOF {
		return fault.Invalid("body", "invalid_json")
	}
	return nil
}
