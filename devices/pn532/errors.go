package pn532

import (
	"errors"
	"fmt"

	"onecard/devices"
)

// Errors the driver wraps in an *Error, besides the devices sentinels
// (devices.ErrTimeout, ErrNoCard, ErrAuth, ErrCardLost, ErrPortFailed).
var (
	// ErrClosed: the Dev was closed.
	ErrClosed = errors.New("driver closed")
	// ErrNotSelected: a card operation came without a selected card. Select
	// first; a failed Auth, ReadBlock or WriteBlock ends the card's session
	// (a MIFARE Classic card halts after an error), so Select again after
	// one.
	ErrNotSelected = errors.New("no card selected (call Select; a failed card operation ends the session)")
	// ErrRejected: the PN532 answered with its application error frame: it
	// did not understand the command or its parameters.
	ErrRejected = errors.New("the PN532 rejected the command (error frame)")
	// ErrBadResponse: a response frame too short or malformed for its
	// command.
	ErrBadResponse = errors.New("malformed response")
)

// Error is what every Dev method returns on failure: the step that failed,
// the PN532's status byte when it reported one, and the cause.
type Error struct {
	// Step names what the driver was doing, e.g. "read block 4".
	Step string
	// Status is the error code of the PN532's status byte (0 when the PN532
	// reported none), e.g. 0x14 for a MIFARE authentication error.
	Status byte
	// Err is the cause, often a devices sentinel; nil when Status says all.
	Err error
}

// Error reads "pn532: <step>: <cause> (status 0xNN)", the status only when
// the PN532 reported one.
func (e *Error) Error() string {
	msg := "pn532: " + e.Step + ": "
	switch {
	case e.Err != nil:
		msg += e.Err.Error()
	case e.Status != 0:
		msg += statusText(e.Status)
	default:
		msg += "failed"
	}
	if e.Status != 0 {
		msg += fmt.Sprintf(" (status 0x%02X)", e.Status)
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// statusErr maps the PN532 status codes a caller should act on to the
// devices sentinels.
func statusErr(status byte) error {
	switch status {
	case 0x14:
		return devices.ErrAuth
	case 0x01, 0x2B:
		return devices.ErrCardLost
	}
	return nil
}

// statusText describes the error codes of the PN532 user manual (UM0701-02
// §7.1).
func statusText(status byte) string {
	switch status {
	case 0x01:
		return "the target did not answer (time out)"
	case 0x02:
		return "CRC error on the RF link"
	case 0x03:
		return "parity error on the RF link"
	case 0x04:
		return "erroneous bit count in anticollision"
	case 0x05:
		return "framing error during a MIFARE operation"
	case 0x06:
		return "abnormal bit collision in anticollision"
	case 0x07:
		return "communication buffer too small"
	case 0x09:
		return "RF buffer overflow"
	case 0x0A:
		return "RF field not switched on in time"
	case 0x0B:
		return "RF protocol error"
	case 0x0D:
		return "overheating"
	case 0x0E:
		return "internal buffer overflow"
	case 0x10:
		return "invalid parameter"
	case 0x12:
		return "command not supported by the target"
	case 0x13:
		return "data format does not match the specification"
	case 0x14:
		return "MIFARE authentication error"
	case 0x23:
		return "wrong UID check byte"
	case 0x25:
		return "invalid device state"
	case 0x26:
		return "operation not allowed in this configuration"
	case 0x27:
		return "command not acceptable in the current context"
	case 0x29:
		return "target released by the initiator"
	case 0x2A:
		return "card ID does not match (card swapped)"
	case 0x2B:
		return "the activated card disappeared"
	case 0x2C:
		return "NFCID3 mismatch"
	case 0x2D:
		return "over-current"
	case 0x2E:
		return "NAD missing"
	}
	return "error"
}
