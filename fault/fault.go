// Package fault holds the error kinds every domain package returns, so that
// HTTP packages can map them to status codes and translated messages in one
// place.
package fault

import (
	"errors"
	"fmt"
)

// The kinds. Domain errors wrap one of these.
var (
	ErrNotFound  = errors.New("not found")
	ErrConflict  = errors.New("conflict")
	ErrForbidden = errors.New("forbidden")
	ErrInvalid   = errors.New("invalid")
	ErrLocked    = errors.New("locked")
	ErrAuth      = errors.New("unauthenticated")
)

// Error is a domain error with a stable code for clients and translation.
// Code is a short snake_case word ("unit_code_taken"); Field names the
// offending input where there is one; Args fill the translated message.
type Error struct {
	Kind  error
	Code  string
	Field string
	Args  map[string]any
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s (%s)", e.Kind, e.Code, e.Field)
	}
	return fmt.Sprintf("%s: %s", e.Kind, e.Code)
}

// Unwrap lets errors.Is match the kind.
func (e *Error) Unwrap() error { return e.Kind }

// Invalid returns a validation error for field with code.
func Invalid(field, code string, args ...any) *Error {
	return &Error{Kind: ErrInvalid, Code: code, Field: field, Args: pairs(args)}
}

// NotFound returns a not-found error with code.
func NotFound(code string) *Error { return &Error{Kind: ErrNotFound, Code: code} }

// Conflict returns a conflict error with code.
func Conflict(field, code string, args ...any) *Error {
	return &Error{Kind: ErrConflict, Code: code, Field: field, Args: pairs(args)}
}

// Forbidden returns a forbidden error with code.
func Forbidden(code string) *Error { return &Error{Kind: ErrForbidden, Code: code} }

func pairs(args []any) map[string]any {
	if len(args) == 0 {
		return nil
	}
	m := make(map[string]any, len(args)/2)
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok {
			m[k] = args[i+1]
		}
	}
	return m
}

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// Code returns the stable code of err: the *Error's own, or one derived
// from its kind.
func Code(err error) string {
	if e, ok := As(err); ok {
		return e.Code
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return "not_found"
	case errors.Is(err, ErrConflict):
		return "conflict"
	case errors.Is(err, ErrForbidden):
		return "forbidden"
	case errors.Is(err, ErrInvalid):
		return "invalid"
	case errors.Is(err, ErrLocked):
		return "locked"
	case errors.Is(err, ErrAuth):
		return "unauthenticated"
	}
	return "internal"
}
