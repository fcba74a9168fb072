package payterm

import (
	"errors"
	"fmt"
)

// Errors the driver wraps in an *Error, besides devices.ErrTimeout (no ACK
// or no answer in time) and devices.ErrPortFailed.
var (
	// ErrUnknownOutcome: the sale was sent but its outcome could not be
	// learned, not even by querying its reference: money may or may not
	// have been taken. Resolve it later with Query; never sell again under
	// a new reference meanwhile.
	ErrUnknownOutcome = errors.New("outcome unknown: resolve it with Query")
	// ErrInProgress: the sale is still going on at the terminal (the
	// customer has not finished) when the driver stopped waiting. Query
	// again later, or Cancel.
	ErrInProgress = errors.New("sale still in progress at the terminal")
	// ErrNotTaken: the terminal never received the sale (its journal has no
	// such reference): nothing was charged, and selling again under the
	// same reference is safe.
	ErrNotTaken = errors.New("the terminal did not take the sale: nothing charged")
	// ErrBusy: the terminal refused the sale because another is in
	// progress. Nothing was charged.
	ErrBusy = errors.New("terminal busy with another sale")
	// ErrConflict: the reference was already used for another amount.
	ErrConflict = errors.New("reference already used for another amount")
	// ErrRejected: the terminal answered ERROR; Error.Code says why.
	ErrRejected = errors.New("terminal refused the request")
	// ErrBadResponse: the terminal answered with a message that does not
	// parse or does not fit the request (another reference, wrong type).
	ErrBadResponse = errors.New("malformed or unexpected response")
	// ErrClosed: the Terminal was closed.
	ErrClosed = errors.New("driver closed")
)

// Error is what every Terminal method returns on failure: the operation,
// the sale's reference, the terminal's error code when it sent one, and
// the cause.
type Error struct {
	// Op is "sale", "query", "cancel" or "status".
	Op string
	// Ref is the sale's reference ("" for status).
	Ref string
	// Code is the code of the terminal's ERROR message, 0 if none.
	Code Code
	// Err is the cause, often one of this package's sentinels.
	Err error
}

// Error reads "payterm: sale R-1: <cause>", with "(terminal error 0xNN)"
// when the terminal sent a code.
func (e *Error) Error() string {
	msg := "payterm: " + e.Op
	if e.Ref != "" {
		msg += " " + e.Ref
	}
	msg += ": " + e.Err.Error()
	if e.Code != 0 {
		msg += fmt.Sprintf(" (terminal error 0x%02X)", byte(e.Code))
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }
